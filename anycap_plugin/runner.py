"""Batch runs: inputs in, one JSON line per input out, resumable and crash-safe.

Each finished line is appended with a single `write()` on an O_APPEND descriptor, so a run
killed at any moment (SIGKILL included) leaves only whole lines and loses only the items
in flight. Re-running with the same output skips items already captioned and retries the
failed ones. One bad item is recorded with its reason; the rest go on.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .captioner import BaseCaptioner, Caption, _validate_options
from .errors import AnyCapError
from .jsonl import read_jsonl
from .media import media_files_in


class ManifestError(AnyCapError):
    """A manifest line that cannot be read as an item."""


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One input to caption. `key` identifies it across runs (for resume)."""

    input: str
    instruction: str | None = None
    id: str | None = None
    problem: AnyCapError | None = None

    @property
    def key(self) -> str:
        return self.id if self.id is not None else f"{self.input}\x1f{self.instruction or ''}"


def expand_inputs(inputs: Sequence[str], instruction: str | None = None) -> Iterator[WorkItem]:
    """Files, folders (recursively, known media extensions), globs and `.jsonl` manifests."""
    for raw in inputs:
        p = Path(raw).expanduser()
        if p.is_file() and p.suffix.lower() == ".jsonl":
            yield from _read_manifest(p, instruction)
        elif p.is_dir():
            for f in media_files_in(p):
                yield WorkItem(str(f), instruction)
        elif glob.has_magic(raw):
            for f in sorted(glob.glob(os.path.expanduser(raw), recursive=True)):
                if Path(f).is_dir():
                    yield from (WorkItem(str(g), instruction) for g in media_files_in(Path(f)))
                else:
                    yield WorkItem(f, instruction)
        else:
            yield WorkItem(str(p), instruction)  # a missing file becomes that item's error


def _read_manifest(path: Path, default_instruction: str | None) -> Iterator[WorkItem]:
    for where, row in read_jsonl(path):
        if not isinstance(row, dict) or not isinstance(row.get("media"), str):
            reason = row if isinstance(row, ValueError) else "each line must be an object whose 'media' is a path string"
            yield WorkItem(where, default_instruction, id=where,
                           problem=ManifestError(f"Bad manifest line {where}: {reason}.",
                                                 hint='Each line needs {"media": PATH, "instruction": TEXT}.'))
            continue
        media_path = Path(row["media"]).expanduser()
        if not media_path.is_absolute():
            media_path = path.parent / media_path
        item_id = row.get("id")
        yield WorkItem(str(media_path), row.get("instruction", default_instruction),
                       id=None if item_id is None else str(item_id))


def _error_of(e: BaseException) -> dict[str, str]:
    return {"type": type(e).__name__, "message": str(e)}


def success_record(item: WorkItem, caption: Caption) -> dict[str, Any]:
    c = caption.to_dict()
    record = {"input": item.input, "id": item.id, "instruction": item.instruction,
              "caption": c.pop("text"), "error": None}
    c.pop("instruction", None)
    c["base_caption"] = c.pop("base_text")
    record.update(c)
    return record


def failure_record(item: WorkItem, error: BaseException) -> dict[str, Any]:
    return {"input": item.input, "id": item.id, "instruction": item.instruction,
            "caption": None, "error": _error_of(error)}


class OutputLog:
    """The JSONL output: what is already done, and an append-only writer of whole lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
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
                    key = row["id"] if row.get("id") is not None else f"{row['input']}\x1f{row.get('instruction') or ''}"
                except (ValueError, KeyError, TypeError):
                    dropped = True
                    continue
                if row.get("error") is None and row.get("caption") is not None and key not in self.done:
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
        os.write(self._fd, (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))

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


def _caption_batch(captioner: BaseCaptioner, batch: list[WorkItem], options: dict[str, Any]) -> list[dict[str, Any]]:
    """Caption one batch into records; each failure is its own item's record (`caption_each`)."""
    outcomes = captioner.caption_each([item.problem or item.input for item in batch],
                                      [item.instruction for item in batch], **options)
    return [failure_record(item, o) if isinstance(o, Exception) else success_record(item, o)
            for item, o in zip(batch, outcomes)]


def run(captioner: BaseCaptioner, items: Iterable[WorkItem], output: str | os.PathLike, *,
        batch_size: int = 1, concurrency: int = 1, options: dict[str, Any] | None = None,
        progress: bool | None = None, on_record: Callable[[dict[str, Any]], None] | None = None) -> RunSummary:
    """Caption `items` into `output` (JSONL), skipping those a previous run finished."""
    if batch_size < 1 or concurrency < 1:
        raise ValueError("batch_size and concurrency must be at least 1")
    options = options or {}
    _validate_options(captioner.Options, captioner.id, options)  # bad options fail before any work
    started = time.perf_counter()
    log = OutputLog(Path(output))
    summary = RunSummary()
    todo: list[WorkItem] = []
    for item in items:
        summary.total += 1
        if item.key in log.done:
            summary.skipped += 1
        else:
            todo.append(item)
    bar = _progress_bar(len(todo), progress)

    def record(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            log.write(row)
            if row["error"] is None:
                summary.succeeded += 1
            else:
                summary.failed += 1
                summary.errors[row["error"]["type"]] = summary.errors.get(row["error"]["type"], 0) + 1
            if on_record is not None:
                on_record(row)
        if bar is not None:
            bar.update(len(rows))

    try:
        batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
        if concurrency == 1:
            for batch in batches:
                record(_caption_batch(captioner, batch, options))
        else:
            with ThreadPoolExecutor(concurrency, thread_name_prefix="anycap") as pool:
                in_flight: set[Future[list[dict[str, Any]]]] = set()
                try:
                    for batch in batches:
                        if len(in_flight) >= 2 * concurrency:
                            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                            for fut in finished:
                                record(fut.result())
                        in_flight.add(pool.submit(_caption_batch, captioner, batch, options))
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


def _progress_bar(total: int, progress: bool | None) -> Any:
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="item", dynamic_ncols=True, smoothing=0.1)


