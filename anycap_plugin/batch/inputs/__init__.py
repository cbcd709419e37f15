"""What `anycap caption` reads: files, folders, globs, JSONL manifests, LLaVA/InternVL conversation
JSON, WebDataset shards, Parquet tables and Hugging Face datasets, local or in object storage
(`s3://`, `gs://`, `az://`, `hf://`, `https://`), all as one stream of `WorkItem`s.

Each format is an `InputFormat` (`base.py`) in a module of its own; `FORMATS` is the one list both
engines go through. Reading has two steps: `plan_inputs` turns the command's inputs into `Source`s
and refuses, before any work, inputs that name nothing or do not exist, stores that cannot be read,
tables without the named columns, and inputs that name the run's own output (`run_files`);
`read_source` streams one source's items (the local engine in-process, the Ray engine in read tasks
on the cluster).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ...errors import AnyCapError, ManifestError, NoInputsError, OutputIsInputError, StorageError
from ...storage import Storage, canonical, is_url
from .base import InputFormat, ReadContext, Source
from .conversations import ConversationFile
from .files import Folder, MediaFile
from .hf_datasets import Dataset, is_dataset
from .items import WorkItem, bad_item
from .manifest import Manifest
from .parquet import Table
from .webdataset import Shard, sidecar_path

__all__ = [
    "FORMATS",
    "InputFormat",
    "InputPlan",
    "ManifestError",
    "NoInputsError",
    "ReadContext",
    "Source",
    "WorkItem",
    "bad_item",
    "expand_inputs",
    "format_of",
    "plan_inputs",
    "read_source",
]

# the first format that claims a location reads it: the catch-all (one media file) comes last
FORMATS: tuple[InputFormat, ...] = (
    Dataset(),
    Folder(),
    Shard(),
    Table(),
    Manifest(),
    ConversationFile(),
    MediaFile(),
)
_BY_KIND = {f.kind: f for f in FORMATS}


def format_of(kind: str) -> InputFormat:
    return _BY_KIND[kind]


@dataclass(frozen=True)
class InputPlan:
    sources: tuple[Source, ...]
    context: ReadContext = field(default_factory=ReadContext)

    @property
    def instruction(self) -> str | None:
        return self.context.instruction

    def items(self) -> Iterator[WorkItem]:
        """Every source's items, lazily, in order: a shard or table streams through, never held whole."""
        for source in self.sources:
            yield from read_source(source, self.context)

    def count(self) -> int | None:
        """How many items the sources hold, from listings, footers and headers (no media is read);
        None when a source cannot tell (a Hugging Face dataset, a shard in a bucket)."""
        total = 0
        for source in self.sources:
            try:
                n = format_of(source.kind).count(source, self.context)
            except Exception:
                n = 1  # an unreadable source is one error item
            if n is None:
                return None
            total += n
        return total


def plan_inputs(
    inputs: Sequence[str],
    instruction: str | None = None,
    *,
    media_root: str | os.PathLike | None = None,
    columns: dict[str, str | None] | None = None,
    storage: Storage | None = None,
    run_files: frozenset[str] | set[str] = frozenset(),
) -> InputPlan:
    """The sources the inputs name, checked: `NoInputsError` names every input that names nothing
    or does not exist, `StorageError` a store that cannot be read, `OptionsError` a table without
    the media, id or instruction column asked for, `OutputIsInputError` an input that is the run's
    own output or state (`run_files`, canonical; a glob's or folder's match of one is left out)."""
    root = None if media_root is None else str(media_root)
    ctx = ReadContext(
        instruction,
        root if root is None or is_url(root) else os.path.expanduser(root),
        dict(columns or {}),
        storage or Storage(),
        frozenset(run_files),
    )
    sources: list[Source] = []
    empty: list[str] = []
    missing: list[str] = []
    globbed: set[str] = set()
    for raw in inputs:
        try:
            found = _sources_of(raw, ctx)
        except FileNotFoundError:
            missing.append(raw)
            continue
        except AnyCapError:
            raise
        except (
            Exception
        ) as e:  # no credentials, a refused endpoint, access denied: the store's own errors
            raise StorageError(
                f"Cannot read {raw}: {ctx.storage.describe(raw, e)}.",
                hint="Check the URL, the credentials (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, "
                "AZURE_STORAGE_*) and the endpoint (AWS_ENDPOINT_URL or --storage-option).",
            ) from None
        if glob.has_magic(raw.split("://", 1)[-1]):
            globbed.update(s.location for s in found)
        for source in found:
            format_of(source.kind).check(source, ctx)
        if not any(_holds_something(s, ctx) for s in found):
            empty.append(raw)
        sources += found
    sources = _without_sidecars(sources, globbed)
    if missing:
        raise NoInputsError(
            ", ".join(repr(m) for m in missing)
            + (" does not exist." if len(missing) == 1 else " do not exist."),
            hint="Check the paths, URLs, buckets and prefixes.",
        )
    if empty:
        raise NoInputsError(
            "Nothing to caption in " + ", ".join(repr(e) for e in empty) + ".",
            hint="Check the paths and globs; an empty folder, manifest, shard or table names nothing.",
        )
    return InputPlan(tuple(sources), ctx)


def expand_inputs(
    inputs: Sequence[str],
    instruction: str | None = None,
    *,
    media_root: str | None = None,
    columns: dict[str, str | None] | None = None,
) -> Iterator[WorkItem]:
    """Items from each input, lazily, in order (inputs are checked first: `plan_inputs`)."""
    return plan_inputs(inputs, instruction, media_root=media_root, columns=columns).items()


def read_source(source: Source, ctx: ReadContext) -> Iterator[WorkItem]:
    return format_of(source.kind).items(source, ctx)


def _sources_of(raw: str, ctx: ReadContext) -> list[Source]:
    """What one input names: a dataset, a glob's matches (sorted; the run's own files left out), or
    one file or folder, looked up with one request (FileNotFoundError when nothing is there)."""
    if is_dataset(raw):
        return [Source(raw, "dataset")]
    if glob.has_magic(raw.split("://", 1)[-1]):
        out = []
        for location, is_dir in ctx.storage.glob(raw):
            if not ctx.is_run_file(location):
                out.append(_source(location, is_dir, spelled=location))
        return out
    is_dir = ctx.storage.info(raw)["type"] == "directory"
    source = _source(raw, is_dir, spelled=raw if is_url(raw) else str(os.path.expanduser(raw)))
    if ctx.is_run_file(source.location):
        raise OutputIsInputError(
            f"{raw} is this run's own output (or its journal, lock or state): a run never reads "
            "what it writes.",
            hint="Write the captions to another file with -o.",
        )
    return [source]


def _source(location: str, is_dir: bool, spelled: str) -> Source:
    kind = next(
        f.kind for f in FORMATS if not isinstance(f, Dataset) and f.claims(location, is_dir)
    )
    return Source(canonical(location), kind, spelled)


def _without_sidecars(sources: list[Source], globbed: set[str]) -> list[Source]:
    """A glob's match that is the caption sidecar of a shard in the same run (`SHARD.captions.jsonl`,
    what `--sidecars` writes) is an output, not a manifest: left out."""
    shards = [s.location for s in sources if s.kind == "shard" and not is_url(s.location)]
    sidecars = {str(sidecar_path(shard)) for shard in shards}
    return [s for s in sources if not (s.location in globbed and s.location in sidecars)]


def _holds_something(source: Source, ctx: ReadContext) -> bool:
    """Whether a source names at least one item, looked up cheaply (a listing, a header, a footer)."""
    try:
        return format_of(source.kind).holds_something(source, ctx)
    except Exception:
        return True  # unreadable: that is the source's own item error, reported when it is read
