"""Where records go besides JSONL: a Parquet table, and caption sidecars beside WebDataset shards.

The run always appends to a JSONL journal (crash-safe, resumable: `journal.Journal`). For a
`.parquet` output the journal is `OUTPUT.journal.jsonl`, and the table is rewritten from it
(written aside, then renamed) when the run ends, so a crash loses nothing and the next run
finishes the table. Sidecars are `SHARD.captions.jsonl`, one line per sample, joinable on
`__key__`. Both stream the journal: neither holds the records whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import OptionsError, StorageError
from ..jsonl import read_jsonl
from ..storage import canonical, is_url
from .inputs.webdataset import sidecar_path
from .records import arrow_schema, to_arrow_row

_OPEN_SIDECARS = 64  # sidecar files open at once while streaming the journal


def journal_for(output: Path) -> Path:
    """The JSONL file a run appends to for `output`."""
    return (
        output
        if output.suffix.lower() != ".parquet"
        else output.with_name(output.name + ".journal.jsonl")
    )


def state_prefix(output: str) -> str:
    """Where a run on a remote output keeps its state in the store (`remote.RemoteRun`)."""
    return output.rstrip("/") + ".state"


def reviews_for(output: str) -> str:
    """Where reviews of a run are kept: `captions.jsonl` -> `captions.reviews.jsonl`,
    `x.parquet` -> `x.parquet.reviews.jsonl`."""
    return (
        output[: -len(".jsonl")] + ".reviews.jsonl"
        if output.lower().endswith(".jsonl")
        else output + ".reviews.jsonl"
    )


def run_files(output: str) -> frozenset[str]:
    """Every location a run on `output` writes or keeps state in, canonical (a folder of state ends
    with `/`): the output, its journal, lock, rejected lines, reviews, files written aside, and the
    state in the store of a remote output. No input of the run may be one of them."""
    if is_url(output):
        return frozenset(
            {
                canonical(output),
                canonical(output) + ".tmp",
                reviews_for(canonical(output)),
                state_prefix(canonical(output)) + "/",
            }
        )
    out = Path(canonical(output))
    journal = journal_for(out)
    names = {
        out,
        out.with_name(out.name + ".tmp"),
        *_journal_files(journal),
        *_journal_files(Path(reviews_for(str(out)))),
    }
    return frozenset(str(n) for n in names)


def _journal_files(journal: Path) -> tuple[Path, ...]:
    """A journal and the files `batch.journal.Journal` keeps beside it."""
    return (
        journal,
        journal.with_name(journal.name + ".lock"),
        journal.with_name(journal.stem + ".rejected.jsonl"),
        journal.with_name(journal.name + ".tmp"),
    )


def probe_writable(journal: Path) -> None:
    """Refuse, before any model loads, an output whose folder or journal cannot be written."""
    try:
        journal.parent.mkdir(parents=True, exist_ok=True)
        for path in (journal, journal.with_name(journal.name + ".lock")):
            if path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
        probe = journal.with_name(f".{journal.name}.probe-{os.getpid()}")
        os.close(
            os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        )  # a new file can be made there
        os.unlink(probe)
    except OSError as e:
        raise StorageError(
            f"Cannot write the output {journal}: {e.strerror or e}.",
            hint="Choose a folder you can write to with -o.",
        ) from None


def finish_outputs(
    output: Path, sidecars: bool = False, sidecar_dir: Path | None = None
) -> list[Path]:
    """Write what the journal of `output` implies: the Parquet table, sidecars. Returns the files written."""
    journal = journal_for(output)
    written = []
    if journal != output:
        written.append(write_parquet(journal, output))
    if sidecars:
        written += write_sidecars(journal, sidecar_dir)
    return written


def _records(journal: Path) -> Iterator[dict[str, Any]]:
    if not journal.exists():
        return
    for _, row in read_jsonl(journal):
        if isinstance(row, dict):
            yield row


def write_parquet(journal: Path, target: Path, rows_per_group: int = 10_000) -> Path:
    """One row per record, the same fields as the JSONL (nested ones as JSON text)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise OptionsError("Writing Parquet needs pyarrow.", hint="pip install pyarrow") from None
    schema = arrow_schema()
    tmp = target.with_name(target.name + ".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        buffer: list[dict[str, Any]] = []
        for record in _records(journal):
            buffer.append(to_arrow_row(record))
            if len(buffer) >= rows_per_group:
                writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
                buffer = []
        writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
    os.replace(tmp, target)
    return target


def write_sidecars(journal: Path, directory: Path | None = None) -> list[Path]:
    """`SHARD.captions.jsonl` per shard (beside it, or in `directory`), one line per sample."""
    open_files: dict[str, IO[str]] = {}
    targets: dict[str, Path] = {}
    try:
        for record in _records(journal):
            shard = record.get("shard")
            if shard is None:
                continue
            if shard not in targets:
                targets[shard] = sidecar_path(shard, directory)
                targets[shard].parent.mkdir(parents=True, exist_ok=True)
                _tmp(targets[shard]).write_text("", encoding="utf-8")
            if shard not in open_files:
                if len(open_files) >= _OPEN_SIDECARS:
                    open_files.pop(next(iter(open_files))).close()
                open_files[shard] = open(  # noqa: SIM115 - kept open across records, closed below
                    _tmp(targets[shard]), "a", encoding="utf-8"
                )
            line = {
                "__key__": record["__key__"],
                **{k: v for k, v in record.items() if k != "__key__"},
            }
            open_files[shard].write(json.dumps(line, ensure_ascii=False) + "\n")
    finally:
        for f in open_files.values():
            f.close()
    for target in targets.values():
        os.replace(_tmp(target), target)
    return list(targets.values())


def _tmp(target: Path) -> Path:
    return target.with_name(target.name + ".tmp")
