"""The batch record: one per input, the same from every engine, and its Arrow form.

A record holds where the item came from (`key`, `input`, `id`, `instruction`, and `shard` /
`__key__` or `row` where they apply), then either the caption (`caption`, `base_caption`, `media`,
`modality`, `models`, `timings`, `usage`, `meta`) or why there is none (`error`: `{"type", "message"}`).
"""

from __future__ import annotations

import json
from typing import Any

from ..captioner import Caption
from .inputs import WorkItem

# scalar columns, in order; the nested ones are JSON text in Arrow (their keys differ row to row)
SCALARS = (
    "key",
    "input",
    "id",
    "instruction",
    "caption",
    "base_caption",
    "media",
    "modality",
    "shard",
    "__key__",
)
NESTED = ("error", "models", "timings", "usage", "meta")
ORIGIN = ("shard", "__key__", "row")
_CAPTION_FIELDS = ("media", "modality", "models", "timings", "usage", "meta")


def error_of(e: BaseException) -> dict[str, str]:
    return {"type": type(e).__name__, "message": str(e)}


def _item_fields(item: WorkItem) -> dict[str, Any]:
    return {
        "key": item.key,
        "input": item.input,
        "id": item.id,
        "instruction": item.instruction,
        **(item.origin or {}),
    }


def success_record(item: WorkItem, caption: Caption) -> dict[str, Any]:
    c = caption.to_dict()
    record = {**_item_fields(item), "caption": c["text"], "error": None}
    record.update({k: c[k] for k in _CAPTION_FIELDS}, base_caption=c["base_text"])
    return record


def failure_record(item: WorkItem, error: BaseException) -> dict[str, Any]:
    return {**_item_fields(item), "caption": None, "error": error_of(error)}


def is_success(record: dict[str, Any]) -> bool:
    return record.get("error") is None and record.get("caption") is not None


def arrow_schema() -> Any:
    """A record as an Arrow row: Parquet output and the Ray engine's blocks."""
    import pyarrow as pa

    return pa.schema(
        [(c, pa.string()) for c in SCALARS]
        + [("row", pa.int64())]
        + [(c, pa.string()) for c in NESTED]
    )


def to_arrow_row(record: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {c: None if record.get(c) is None else str(record[c]) for c in SCALARS}
    row["row"] = record.get("row")
    for c in NESTED:
        row[c] = None if record.get(c) is None else json.dumps(record[c], ensure_ascii=False)
    return row


def from_arrow_row(row: dict[str, Any]) -> dict[str, Any]:
    """The record exactly as `success_record` / `failure_record` wrote it."""
    nested = {k: json.loads(row[k]) if row[k] is not None else None for k in NESTED}
    record = {k: row[k] for k in ("key", "input", "id", "instruction")}
    record.update({k: row[k] for k in ORIGIN if row.get(k) is not None})
    record.update(caption=row["caption"], error=nested["error"])
    if nested["error"] is None:
        record.update({k: row[k] for k in ("media", "modality")})
        record.update(
            {k: nested[k] for k in ("models", "timings", "usage", "meta")},
            base_caption=row["base_caption"],
        )
    return record
