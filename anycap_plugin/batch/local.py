"""Batch runs: inputs in, one JSON line per input out, resumable and crash-safe.

Each finished line is appended with a single `write()` on an O_APPEND descriptor, so a run
killed at any moment (SIGKILL included) leaves only whole lines and loses only the items
in flight. Re-running with the same output skips items already captioned and retries the
failed ones. One bad item is recorded with its reason; the rest go on.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .captioner import BaseCaptioner, Caption, _validate_options
from .errors import AnyCapError
from .inputs import ManifestError, WorkItem, expand_inputs, record_key
from .media import Media

__all__ = ["ManifestError", "OutputLog", "RunSummary", "WorkItem", "expand_inputs", "run"]


def _error_of(e: BaseException) -> dict[str, str]:
    return {"type": type(e).__name__, "message": str(e)}


def _item_fields(item: WorkItem) -> dict[str, Any]:
    return {"key": item.key, "input": item.input, "id": item.id, "instruction": item.instruction,
            **(item.origin or {})}


def success_record(item: WorkItem, caption: Caption) -> dict[str, Any]:
    c = caption.to_dict()
    record = {**_item_fields(item), "caption": c.pop("text"), "error": None}
    c.pop("instruction", None)
    c["base_caption"] = c.pop("base_text")
    record.update(c)
    return record


def failure_record(item: WorkItem, error: BaseException) -> dict[str, Any]:
    return {**_item_fields(item), "caption": None, "error": _error_of(error)}


def key_of(record: dict[str, Any]) -> str:
    """A record's item key; records written before keys were stored rebuild it from id or input."""
    if record.get("key") is not None:
        return str(record["key"])
    return str(record["id"]) if record.get("id") is not None else record_key(record["input"], record.get("instruction"))


def captioned(row: dict[str, Any]) -> bool:
    return row.get("error") is None and row.get("caption") is not None


class OutputLog:
    """The JSONL output: what is already done, and an append-only writer of whole lines.

    `key` and `finished` say how a line is keyed and whether it counts as done (default: a
    captioned record); other lines are dropped on open, so their items are done again. With
    `grouped`, lines sharing a key are one item's records (`write_group`), all kept."""

    def __init__(self, path: Path, key: Callable[[dict[str, Any]], str] = key_of,
                 finished: Callable[[dict[str, Any]], bool] = captioned, grouped: bool = False) -> None:
        self.path, self._key_of, self._finished, self._grouped = path, key, finished, grouped
        self.done: set[str] = set()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._recover()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _recover(self) -> None:
        """Read finished items; drop failed lines (they are retried) and any torn tail."""
        if not self.path.exists():
            return
        kept: list[bytes] = []
        dropped = False
        with open(self.path, "rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    dropped = True  # torn last line: that item was in flight
                    continue
                try:
                    row = json.loads(raw)
                    key = self._key_of(row)
                except (ValueError, KeyError, TypeError):
                    dropped = True
                    continue
                if self._finished(row) and (self._grouped or key not in self.done):
                    self.done.add(key)
                    kept.append(raw)
                else:
                    dropped = True
        if dropped:
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "wb") as f:
                f.writelines(kept)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)

    def write(self, record: dict[str, Any]) -> None:
        self.write_group([record])

    def write_group(self, records: list[dict[str, Any]]) -> None:
        """Lines that belong together (one item's records) in a single append."""
        os.write(self._fd, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8"))

    def close(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)


@dataclass
class RunSummary:
    total: int = 0
    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def count(self, record: dict[str, Any]) -> None:
        """Tally one written record (the local and the Ray engine alike)."""
        if record["error"] is None:
            self.succeeded += 1
        else:
            self.failed += 1
            self.errors[record["error"]["type"]] = self.errors.get(record["error"]["type"], 0) + 1


def media_of(item: WorkItem) -> Any:
    """What `caption_each` takes for an item: its path, its bytes as `Media`, or why it cannot be read."""
    if item.problem is not None:
        return item.problem
    if item.data is None:
        return item.input
    try:
        return Media.from_bytes(item.data, name=item.input)
    except AnyCapError as e:
        return e


def loaded_media(item: WorkItem, decode: bool) -> Any:
    """`media_of`, opened now (and images decoded, when `decode`): what the runner prepares for the
    next batch while the model works on this one. An error is that item's outcome, as it would be later."""
    media = media_of(item)
    if isinstance(media, Exception):
        return media
    try:
        media = Media.load(media)
        if decode and media.modality == "image":
            media.image()
        return media
    except Exception as e:
        return e


def _decodes_images(media: list[Any]) -> bool:
    """Whether the captioner decoded this batch's images (API captioners send the file as it is)."""
    return any(isinstance(m, Media) and m.modality == "image" and m._image is not None for m in media)


def caption_records(captioner: BaseCaptioner, batch: list[WorkItem], options: dict[str, Any],
                    media: list[Any] | None = None) -> list[dict[str, Any]]:
    """Caption one batch into records; each failure is its own item's record (`caption_each`).
    `media`: the batch's media already loaded (`loaded_media`), else they are loaded by the captioner."""
    outcomes = captioner.caption_each(media if media is not None else [media_of(item) for item in batch],
                                      [item.instruction for item in batch], **options)
    return [failure_record(item, o) if isinstance(o, Exception) else success_record(item, o)
            for item, o in zip(batch, outcomes)]


def run(captioner: BaseCaptioner, items: Iterable[WorkItem], output: str | os.PathLike, *,
        batch_size: int = 1, concurrency: int = 1, options: dict[str, Any] | None = None,
        progress: bool | None = None, on_record: Callable[[dict[str, Any]], None] | None = None,
        prefetch: bool = True) -> RunSummary:
    """Caption `items` into `output` (JSONL), skipping those a previous run finished.

    With `concurrency=1` (a local model), `prefetch` opens the next batch in a thread while the
    model captions this one, and decodes its images once the captioner was seen decoding images
    (decoders and torch release the GIL). With more, the batches already overlap each other."""
    if batch_size < 1 or concurrency < 1:
        raise ValueError("batch_size and concurrency must be at least 1")
    options = options or {}
    _validate_options(captioner.Options, captioner.id, options)  # bad options fail before any work
    started = time.perf_counter()
    log = OutputLog(Path(output))
    summary = RunSummary()

    def todo() -> Iterator[WorkItem]:  # lazily: a shard or a table streams through, never held whole
        for item in items:
            summary.total += 1
            if item.key in log.done:
                summary.skipped += 1
            else:
                yield item

    bar = _progress_bar(sum(i.key not in log.done for i in items) if isinstance(items, list) else None, progress)

    def record(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            log.write(row)
            summary.count(row)
            if on_record is not None:
                on_record(row)
        if bar is not None:
            bar.update(len(rows))

    try:
        batches = _batched(todo(), batch_size)
        if concurrency == 1 and prefetch:
            with ThreadPoolExecutor(1, thread_name_prefix="anycap-prefetch") as loader:
                decode = False
                ahead = loader.submit(_load_next, batches, decode)
                while (ready := ahead.result()) is not None:
                    ahead = loader.submit(_load_next, batches, decode)
                    batch, media = ready
                    record(caption_records(captioner, batch, options, media))
                    decode = decode or _decodes_images(media)
        elif concurrency == 1:
            for batch in batches:
                record(caption_records(captioner, batch, options))
        else:
            with ThreadPoolExecutor(concurrency, thread_name_prefix="anycap") as pool:
                in_flight: set[Future[list[dict[str, Any]]]] = set()
                try:
                    for batch in batches:
                        if len(in_flight) >= 2 * concurrency:
                            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                            for fut in finished:
                                record(fut.result())
                        in_flight.add(pool.submit(caption_records, captioner, batch, options))
                    for fut in as_completed(in_flight):
                        record(fut.result())
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        log.close()
        if bar is not None:
            bar.close()
        summary.seconds = time.perf_counter() - started
    return summary


def _load_next(batches: Iterator[list[WorkItem]], decode: bool) -> tuple[list[WorkItem], list[Any]] | None:
    """The next batch and its loaded media (the input stream is read in the loader thread too)."""
    batch = next(batches, None)
    return None if batch is None else (batch, [loaded_media(item, decode) for item in batch])


def _batched(items: Iterator[WorkItem], size: int) -> Iterator[list[WorkItem]]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def _progress_bar(total: int | None, progress: bool | None) -> Any:
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="item", dynamic_ncols=True, smoothing=0.1)


