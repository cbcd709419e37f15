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
from pathlib import Path
from typing import IO, Any, Iterator

from ..errors import OptionsError
from ..jsonl import read_jsonl
from .records import arrow_schema, to_arrow_row

_OPEN_SIDECARS = 64  # sidecar files open at once while streaming the journal


def journal_for(output: Path) -> Path:
    """The JSONL file a run appends to for `output`."""
    return output if output.suffix.lower() != ".parquet" else output.with_name(output.name + ".journal.jsonl")


def finish_outputs(output: Path, sidecars: bool = False, sidecar_dir: Path | None = None) -> list[Path]:
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


def sidecar_path(shard: str, directory: Path | None = None) -> Path:
    name = Path(shard).name
    for ext in (".tar.gz", ".tgz", ".tar"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return (directory or Path(shard).parent) / f"{name}.captions.jsonl"


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
                open_files[shard] = open(_tmp(targets[shard]), "a", encoding="utf-8")
            line = {"__key__": record["__key__"], **{k: v for k, v in record.items() if k != "__key__"}}
            open_files[shard].write(json.dumps(line, ensure_ascii=False) + "\n")
    finally:
        for f in open_files.values():
            f.close()
    for target in targets.values():
        os.replace(_tmp(target), target)
    return list(targets.values())


def _tmp(target: Path) -> Path:
    return target.with_name(target.name + ".tmp")
