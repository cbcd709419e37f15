"""The quality filter on captions already written (`anycap capflow-filter`): JSONL records in
(the output of `anycap caption`, or any JSONL with a media path and a caption), the same records
out with `filter` (scores per dimension, reason, kept) added. Resumable; a record that cannot be
judged is written with its error and retried by the next run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from anycap_plugin.call_engine import bounded
from anycap_plugin.jsonl import read_jsonl
from anycap_plugin.media import Media
from anycap_plugin.runner import OutputLog, RunSummary

from .flow import CapFlow


def _records(path: Path, media_field: str, caption_field: str) -> Iterator[dict[str, Any]]:
    for where, row in read_jsonl(path):
        if isinstance(row, ValueError) or not isinstance(row, dict):
            yield {"key": where, "input": where, "caption": None, "_problem": f"{where}: not a JSON object ({row})"}
        elif not isinstance(row.get(caption_field), str) or not row.get(media_field):
            yield {**row, "key": row.get("key") or where, "caption": row.get(caption_field),
                   "_problem": f"{where}: no {caption_field!r} text or no {media_field!r} path"}
        else:
            yield {**row, "key": row.get("key") or f"{row[media_field]}\x1f{row[caption_field]}",
                   "caption": row[caption_field]}


def filter_file(flow: CapFlow, source: Path, output: Path, *, media_field: str = "input",
                caption_field: str = "caption", media_root: Path | None = None, num_frames: int = 8) -> RunSummary:
    log = OutputLog(output)
    summary = RunSummary()
    endpoint = flow.workflow.roles[flow.workflow.filter_role].endpoint
    limit = 2 * flow.workflow.endpoints[endpoint].concurrency

    def todo() -> Iterator[dict[str, Any]]:
        for record in _records(source, media_field, caption_field):
            summary.total += 1
            if record["key"] in log.done:
                summary.skipped += 1
            else:
                yield record

    async def judge(record: dict[str, Any]) -> dict[str, Any]:
        if "_problem" in record:
            raise ValueError(record["_problem"])
        path = Path(record[media_field])
        media = Media.load(path if path.is_absolute() or media_root is None else media_root / path)
        return await flow.judge(media, record["caption"], num_frames=num_frames)

    async def run_all() -> None:
        async for record, outcome in bounded(todo(), judge, limit):
            record.pop("_problem", None)
            if isinstance(outcome, Exception):
                out = {**record, "error": {"type": type(outcome).__name__, "message": str(outcome)}}
            else:
                out = {**record, "error": None, "filter": outcome}
            log.write(out)
            summary.count(out)

    try:
        flow.engine.run(run_all())
    finally:
        log.close()
    return summary
