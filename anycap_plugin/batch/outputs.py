"""Where records go besides JSONL: a Parquet table, and caption sidecars beside WebDataset shards.

The run always appends to a JSONL journal (crash-safe, resumable: `runner.OutputLog`). For a
`.parquet` output the journal is `OUTPUT.journal.jsonl`, and the table is rewritten from it
(written aside, then renamed) when the run ends, so a crash loses nothing and the next run
finishes the table. Sidecars are `SHARD.captions.jsonl`, one line per sample, joinable on
`__key__`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from .errors import OptionsError
from .jsonl import read_jsonl

# scalar columns, in order; the nested ones are stored as JSON text (their keys differ row to row)
SCALARS = ("key", "input", "id", "instruction", "caption", "base_caption", "media", "modality", "shard", "__key__")
NESTED = ("error", "models", "timings", "usage", "meta")


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
    schema = record_schema()
    tmp = target.with_name(target.name + ".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        buffer: list[dict[str, Any]] = []
        for record in _records(journal):
            buffer.append(flat_record(record))
            if len(buffer) >= rows_per_group:
                writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
                buffer = []
        writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
    os.replace(tmp, target)
    return target


def record_schema() -> Any:
    """The Arrow schema of a record: Parquet output and the Ray engine's blocks."""
    import pyarrow as pa

    return pa.schema([(c, pa.string()) for c in SCALARS] + [("row", pa.int64())] + [(c, pa.string()) for c in NESTED])


def flat_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record as one Arrow row of `record_schema` (nested fields as JSON text)."""
    row: dict[str, Any] = {c: None if record.get(c) is None else str(record[c]) for c in SCALARS}
    row["row"] = record.get("row")
    for c in NESTED:
        row[c] = None if record.get(c) is None else json.dumps(record[c], ensure_ascii=False)
    return row


def write_sidecars(journal: Path, directory: Path | None = None) -> list[Path]:
    """`SHARD.captions.jsonl` per shard (beside it, or in `directory`), one line per sample."""
    by_shard: dict[str, list[dict[str, Any]]] = {}
    for record in _records(journal):
        if record.get("shard") is not None:
            by_shard.setdefault(record["shard"], []).append(record)
    written = []
    for shard, records in by_shard.items():
        name = Path(shard).name
        for ext in (".tar.gz", ".tgz", ".tar"):
            if name.endswith(ext):
                name = name[: -len(ext)]
                break
        target = (directory or Path(shard).parent) / f"{name}.captions.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps({"__key__": r["__key__"], **{k: v for k, v in r.items() if k != "__key__"}},
                                   ensure_ascii=False) + "\n")
        os.replace(tmp, target)
        written.append(target)
    return written
