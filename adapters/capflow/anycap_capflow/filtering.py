"""The quality filter on captions already written (`anycap capflow-filter`): JSONL records in
(the output of `anycap caption`, or any JSONL with a media path and a caption), the same records
out with `filter` (scores per dimension, reason, kept) added. Resumable; a record that cannot be
judged is written with its error and retried by the next run.

Each input record keeps its own `key` (to join with the captions); the filter's journal names
what it judged in `judged_key` (`caption:sha1:...` of the media and the caption, or the line of
a record that cannot be judged), so every line is judged once, whatever keys it carries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from anycap_plugin.batch import (
    SEP,
    BatchRun,
    Layout,
    RunSummary,
    error_of,
    is_success,
    item_key,
    record_key,
)
from anycap_plugin.call_engine import bounded
from anycap_plugin.jsonl import read_jsonl
from anycap_plugin.media import Media

from .flow import CapFlow

# earlier versions keyed the filter's output by the record's `key`, else MEDIA\x1fCAPTION, else the line
JUDGED = Layout(
    key=lambda r: r.get("judged_key") or record_key(r),
    finished=is_success,
    identity=lambda r: str(r.get("key")),
)


def _records(path: Path, media_field: str, caption_field: str) -> Iterator[dict[str, Any]]:
    for where, row in read_jsonl(path):
        line = item_key(f"manifest:{where}", None)
        if isinstance(row, ValueError) or not isinstance(row, dict):
            yield {
                "key": where,
                "judged_key": line,
                "input": where,
                "caption": None,
                "_problem": f"{where}: not a JSON object ({row})",
            }
        elif not isinstance(row.get(caption_field), str) or not row.get(media_field):
            yield {
                **row,
                "key": row.get("key") or where,
                "judged_key": line,
                "caption": row.get(caption_field),
                "_problem": f"{where}: no {caption_field!r} text or no {media_field!r} path",
            }
        else:
            judged = f"{row[media_field]}{SEP}{row[caption_field]}"
            yield {
                **row,
                "key": row.get("key") or judged,
                "caption": row[caption_field],
                "judged_key": item_key(
                    "caption:sha1:" + hashlib.sha1(judged.encode()).hexdigest(), None
                ),
            }


def filter_file(
    flow: CapFlow,
    source: Path,
    output: Path,
    *,
    media_field: str = "input",
    caption_field: str = "caption",
    media_root: Path | None = None,
    num_frames: int = 8,
) -> RunSummary:
    endpoint = flow.workflow.roles[flow.workflow.filter_role].endpoint
    limit = 2 * flow.workflow.endpoints[endpoint].concurrency

    async def judge(record: dict[str, Any]) -> dict[str, Any]:
        if "_problem" in record:
            raise ValueError(record["_problem"])
        path = Path(record[media_field])
        media = Media.load(path if path.is_absolute() or media_root is None else media_root / path)
        return await flow.judge(media, record["caption"], num_frames=num_frames)

    with BatchRun(output, layout=JUDGED) as batch:
        todo = (
            r
            for r in _records(source, media_field, caption_field)
            if batch.take(r["judged_key"], str(r["key"]))
        )

        async def run_all() -> None:
            async for record, outcome in bounded(todo, judge, limit):
                record.pop("_problem", None)
                if isinstance(outcome, Exception):
                    batch.write([{**record, "error": error_of(outcome)}])
                else:
                    batch.write([{**record, "error": None, "filter": outcome}])

        flow.engine.run(run_all())
    return batch.summary
