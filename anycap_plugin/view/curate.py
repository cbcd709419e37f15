"""`anycap export`: a run with its reviews applied (`view.reviews`), streamed to a file, as records
or as ACD training lines that `anycap train --acd` reads as they are.

- `records`: every record of the run, `caption` replaced by the reviewed caption where one was
  edited, plus a `review` field (`status`, `tags`, `note`, `edited`, `original_caption`).
- `acd`: one line per item, the base caption as the draft and the reviewed caption as the target,
  in `synth.records.acd_record`'s format (`_sample_type` q-8b-c, a weaker caption corrected; q-c-c
  when the reviewer kept it). Media paths are written relative to the output's folder, so
  `anycap train --acd OUT --media-root OUT_FOLDER` opens them; media inside a WebDataset shard, a
  table or a dataset, or behind a URL, are written to `OUT.media/` first (`view.export_media`).
  Items without an instruction, without a caption, or whose media cannot be found are skipped and
  counted.

Items without a review, or whose review is stale (the record changed since), count as `pending`.
The run is read a line (a Parquet row group) at a time; only the reviews (and the places whose
media an ACD export fetches) are held.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ReviewError
from ..storage import Storage
from ..synth.records import acd_record
from .display import key_of
from .export_media import ExportMedia, place_of
from .reviews import STATUSES, Review, read_reviews

AS = ("records", "acd")


def run_records(run: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(line, record) for each line of a JSONL run or row of a Parquet one; None: unreadable."""
    if run.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        from ..batch.records import from_arrow_row

        n = 0
        for batch in pq.ParquetFile(run).iter_batches(batch_size=10_000):
            for row in batch.to_pylist():
                yield n, from_arrow_row(row) if "key" in row and "error" in row else row
                n += 1
        return
    with open(run, "rb") as f:
        n = 0
        for raw in f:
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                record = None
            yield n, record if isinstance(record, dict) else None
            n += 1


def _review_field(record: dict[str, Any], review: Review | None) -> dict[str, Any]:
    applies = review is not None and review.applies_to(record)
    edited = applies and review is not None and review.caption is not None
    return {
        "status": review.status if applies and review is not None else "pending",
        "tags": list(review.tags) if applies and review is not None else [],
        "note": review.note if applies and review is not None else "",
        "edited": edited,
        "original_caption": record.get("caption"),
        "stale": review is not None and not applies,
    }


def _media_path(record: dict[str, Any], run: Path, target: Path) -> str | None:
    """The record's media as a path relative to `target`'s folder, if it is a local file."""
    ref = record.get("media")
    if not isinstance(ref, str) or not ref or "://" in ref:
        return None
    candidates = [Path(ref)] if Path(ref).is_absolute() else [run.parent / ref, Path.cwd() / ref]
    found = next((c.resolve() for c in candidates if c.is_file()), None)
    return None if found is None else os.path.relpath(found, target.resolve().parent)


def export_reviewed(
    run: Path,
    target: Path,
    *,
    reviews: Path | None = None,
    statuses: tuple[str, ...] = (),
    kind: str = "records",
    storage: Storage | None = None,
    columns: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Write `target` (JSONL; Parquet for records); returns what was written and what was skipped.
    `storage` and `columns` read the media back as the run read them (`--storage-option`,
    `--media-column`)."""
    from ..batch.outputs import reviews_for

    if kind not in AS:
        raise ReviewError(f"Unknown export kind {kind!r}.", hint="Use records or acd.")
    wanted = set(statuses or (("accepted",) if kind == "acd" else ("any",)))
    if "any" in wanted:
        wanted = set(STATUSES)
    parquet = target.suffix.lower() == ".parquet"
    if kind == "acd" and parquet:
        raise ReviewError("ACD training lines are JSONL.", hint="Write -o OUT.jsonl for --as acd.")
    journal = Path(reviews) if reviews is not None else Path(reviews_for(str(run)))
    latest, unreadable = read_reviews(journal)
    counts: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    tmp = target.with_name(target.name + ".tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = _parquet_sink(tmp) if parquet else _jsonl_sink(tmp)
    next(lines)
    fetched = ExportMedia(target, storage, columns)
    try:
        for n, record in run_records(run):
            if record is None:
                skipped["unreadable line"] += 1
                continue
            key = key_of(record, n)
            review = _review_field(record, latest.get(key))
            if review["status"] not in wanted:
                continue
            if kind == "records":
                out = dict(record, review=review)
                if review["edited"]:
                    out["caption"] = latest[key].caption
                lines.send(out)
            else:
                line, why = _acd_line(record, key, review, latest.get(key), run, target, fetched)
                if line is None:
                    skipped[why] += 1
                    continue
                lines.send(line)
            counts[review["status"]] += 1
        lines.close()
        if fetched.wanted:
            skipped.update(fetched.fetch())
            _fill_media(tmp, fetched, counts)
    except BaseException:
        lines.close()
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)
    return {
        "written": sum(counts.values()),
        "by_status": dict(counts),
        "skipped": dict(skipped),
        "reviews": str(journal),
        "unreadable_reviews": unreadable,
    }


def _acd_line(
    record: dict[str, Any],
    key: str,
    review: dict[str, Any],
    latest: Review | None,
    run: Path,
    target: Path,
    fetched: ExportMedia,
) -> tuple[dict[str, Any] | None, str]:
    instruction = record.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        return None, "no instruction"
    caption = latest.caption if review["edited"] and latest is not None else record.get("caption")
    if record.get("error") is not None or not isinstance(caption, str) or not caption.strip():
        return None, "no caption"
    modality = record.get("modality")
    if modality not in ("image", "video", "audio"):
        return None, "no media"
    media = _media_path(record, run, target)
    if media is None:
        if not fetched.want(key, record.get("media")):
            return None, "media not found"
        media = ""  # filled in by `_fill_media` once fetched
    draft = str(record.get("base_caption") or record.get("caption") or caption)
    return (
        acd_record(
            record_id=key,
            modality=modality,
            media=media,
            question=instruction,
            existing=draft,
            target=caption,
            kind="weaker" if caption != draft else "correct",
            dimension="review",
            key=key,
            extra={"_review": {"status": review["status"], "tags": review["tags"]}},
            source="anycap export",
        ),
        "",
    )


def _fill_media(path: Path, fetched: ExportMedia, counts: Counter[str]) -> None:
    """Point each line whose media was fetched at its file; drop (and uncount) those not found."""
    filled = path.with_name(path.name + ".media")
    with open(path, encoding="utf-8") as src, open(filled, "w", encoding="utf-8") as dst:
        for raw in src:
            line = json.loads(raw)
            modality = next(m for m in ("image", "video", "audio") if m in line)
            if line[modality] == "":
                written = fetched.written.get(place_of(line["_key"]))
                if written is None:
                    counts[line["_review"]["status"]] -= 1
                    continue
                line[modality] = written
            dst.write(json.dumps(line, ensure_ascii=False) + "\n")
    os.replace(filled, path)
    counts += Counter()  # drops statuses left at zero


def _jsonl_sink(path: Path) -> Any:
    """A generator that writes each record sent to it as a JSONL line."""
    with open(path, "w", encoding="utf-8") as f:
        while True:
            try:
                record = yield
            except GeneratorExit:
                return
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _parquet_sink(path: Path, rows_per_group: int = 10_000) -> Any:
    """Records sent in, a Parquet table out: the run's columns plus `review` (JSON text)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..batch.records import arrow_schema, to_arrow_row

    schema = arrow_schema().append(pa.field("review", pa.string()))
    buffer: list[dict[str, Any]] = []
    with pq.ParquetWriter(path, schema) as writer:
        while True:
            try:
                record = yield
            except GeneratorExit:
                writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
                return
            buffer.append(
                {**to_arrow_row(record), "review": json.dumps(record["review"], ensure_ascii=False)}
            )
            if len(buffer) >= rows_per_group:
                writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
                buffer = []
