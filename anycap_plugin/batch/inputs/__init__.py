"""What `anycap caption` reads: files, folders, globs, JSONL manifests, LLaVA/InternVL conversation
JSON, WebDataset shards, Parquet tables and Hugging Face datasets, all as one stream of `WorkItem`s.

Reading has two steps, so both engines read the same way: `plan_inputs` turns the command's inputs
into `Source`s and refuses, before any work, inputs that name nothing or tables without the named
columns; `read_source` streams one source's items (the local engine in-process, the Ray engine in
read tasks on the cluster).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal, Sequence

from ...errors import ManifestError, NoInputsError
from ...media import MEDIA_EXTENSIONS, media_files_in
from .conversations import conversation_file
from .files import manifest, paths
from .hf_datasets import dataset_items
from .items import WorkItem, bad_item
from .parquet import table_columns, table_items, table_rows
from .webdataset import count_samples, shard_items

__all__ = ["InputPlan", "ManifestError", "NoInputsError", "Source", "WorkItem", "bad_item", "expand_inputs",
           "plan_inputs", "read_source"]

Kind = Literal["media", "folder", "shard", "table", "manifest", "conversations", "dataset"]
_MEDIA_EXTS = set().union(*MEDIA_EXTENSIONS.values())


@dataclass(frozen=True)
class Source:
    """One file (or folder, or dataset) an input names, spelled as the user wrote it (a glob's match
    as the glob wrote it), so that keys stay the same from run to run."""

    path: str
    kind: Kind
    matched: bool = False


@dataclass(frozen=True)
class InputPlan:
    sources: tuple[Source, ...]
    instruction: str | None = None
    media_root: Path | None = None
    columns: dict[str, str | None] = field(default_factory=dict)

    def items(self) -> Iterator[WorkItem]:
        """Every source's items, lazily, in order: a shard or table streams through, never held whole."""
        for source in self.sources:
            yield from read_source(source, self.instruction, self.media_root, self.columns)

    def count(self) -> int | None:
        """How many items the sources hold, from listings, footers and headers (no media is read);
        None when a source cannot tell (a Hugging Face dataset)."""
        total = 0
        for source in self.sources:
            n = _count(source)
            if n is None:
                return None
            total += n
        return total


def plan_inputs(inputs: Sequence[str], instruction: str | None = None, *, media_root: str | os.PathLike | None = None,
                columns: dict[str, str | None] | None = None) -> InputPlan:
    """The sources the inputs name, checked: `NoInputsError` names every input that names nothing,
    `OptionsError` a table without the media, id or instruction column asked for."""
    columns = columns or {}
    sources: list[Source] = []
    empty: list[str] = []
    for raw in inputs:
        found = [Source(raw, "dataset")] if raw.startswith("hf:") else _sources_of(raw)
        for source in found:
            if source.kind == "table" and os.path.isfile(source.path):
                table_columns(Path(source.path).expanduser(), columns)  # raises for a missing column
        if not any(_holds_something(s) for s in found):
            empty.append(raw)
        sources += found
    if empty:
        raise NoInputsError("Nothing to caption in " + ", ".join(repr(e) for e in empty) + ".",
                            hint="Check the paths and globs; an empty folder, manifest, shard or table names nothing.")
    root = Path(media_root).expanduser() if media_root else None
    return InputPlan(tuple(sources), instruction, root, dict(columns))


def expand_inputs(inputs: Sequence[str], instruction: str | None = None, *, media_root: str | None = None,
                  columns: dict[str, str | None] | None = None) -> Iterator[WorkItem]:
    """Items from each input, lazily, in order (inputs are checked first: `plan_inputs`)."""
    return plan_inputs(inputs, instruction, media_root=media_root, columns=columns).items()


def read_source(source: Source, instruction: str | None, media_root: Path | None,
                columns: dict[str, str | None]) -> Iterator[WorkItem]:
    p = Path(source.path).expanduser()
    if source.kind == "dataset":
        return dataset_items(source.path, instruction, columns)
    if source.kind == "shard":
        return shard_items(p, instruction)
    if source.kind == "table":
        return table_items(p, instruction, columns)
    if source.kind == "manifest":
        return manifest(p, instruction, media_root)
    if source.kind == "conversations":
        return conversation_file(p, instruction, media_root)
    return paths(source.path, instruction, source.matched)


def _sources_of(raw: str) -> list[Source]:
    if glob.has_magic(raw):  # a glob's matches, sorted
        return [Source(m, kind_of(Path(m)), True) for m in sorted(glob.glob(os.path.expanduser(raw), recursive=True))]
    return [Source(raw, kind_of(Path(raw).expanduser()))]


def kind_of(p: Path) -> Kind:
    name = p.name.lower()
    if p.is_dir():
        return "folder"
    if p.is_file() and (name.endswith(".tar") or name.endswith(".tar.gz") or name.endswith(".tgz")):
        return "shard"
    if p.is_file() and name.endswith(".parquet"):
        return "table"
    if p.is_file() and name.endswith(".jsonl"):
        return "manifest"
    if p.is_file() and name.endswith(".json"):
        return "conversations"
    return "media"  # a missing file is that item's error


def _holds_something(source: Source) -> bool:
    """Whether a source names at least one item, looked up cheaply (a listing, a header, a footer)."""
    p = Path(source.path).expanduser()
    try:
        if source.kind == "folder":
            return any(os.path.splitext(f)[1].lower() in _MEDIA_EXTS for _, _, files in os.walk(p) for f in files)
        if source.kind == "manifest":
            with open(p, encoding="utf-8", errors="replace") as f:
                return any(line.strip() for line in f)
        if source.kind == "conversations":
            return p.stat().st_size > 64 or p.read_text(encoding="utf-8", errors="replace").strip() not in ("", "[]")
        if source.kind == "table":
            return table_rows(p) > 0
        if source.kind == "shard":
            import tarfile

            with tarfile.open(p, "r|*") as tar:
                return next(iter(tar), None) is not None
    except Exception:
        return True  # unreadable: that is the source's own item error, reported when it is read
    return True


def _count(source: Source) -> int | None:
    p = Path(source.path).expanduser()
    try:
        if source.kind == "dataset":
            return None
        if source.kind == "folder":
            return len(media_files_in(p))
        if source.kind == "shard":
            return count_samples(p)
        if source.kind == "table":
            return table_rows(p)
        if source.kind == "manifest":
            with open(p, encoding="utf-8", errors="replace") as f:
                return sum(1 for line in f if line.strip())
        if source.kind == "conversations":
            import json

            rows = json.loads(p.read_text(encoding="utf-8"))
            return len(rows) if isinstance(rows, list) else 1
    except Exception:
        return 1  # an unreadable source is one error item
    return 1
