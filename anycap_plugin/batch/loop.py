"""The resumable loop every batch job runs on: open the journal, skip what is done, append records
whole, count, close, time. The local and Ray engines, `anycap synth` and `capflow-filter` use it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from .. import storage
from ..storage import is_url
from .inputs import WorkItem
from .journal import CAPTIONS, Journal, Layout


@dataclass
class RunSummary:
    total: int = 0  # inputs seen
    skipped: int = 0  # finished by an earlier run
    duplicates: int = 0  # an input named twice in this run (same key): done once
    repeated_ids: int = 0  # inputs whose id another input of this run already had (keys stay apart)
    succeeded: int = 0
    failed: int = 0
    rejected: int = 0  # journal lines that could not be read, moved aside
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def count(self, record: dict[str, Any]) -> None:
        """Tally one written record."""
        if record.get("error") is None:
            self.succeeded += 1
        else:
            self.failed += 1
            kind = (
                record["error"].get("type", "Error")
                if isinstance(record["error"], dict)
                else "Error"
            )
            self.errors[kind] = self.errors.get(kind, 0) + 1


class BatchRun:
    """One run over a journal. Use as a context manager; `pending` filters a stream of items,
    `write` appends a batch of records, `summary` says what happened. `output` is a local journal,
    or a URL whose run state lives in the store (`remote.RemoteRun`).

    `on_record` sees each written record; `progress` shows a bar (None: on a terminal only) whose
    total, when `total` is given (a function, run in a thread), gives the bar its ETA."""

    def __init__(
        self,
        output: str | os.PathLike[str],
        *,
        layout: Layout = CAPTIONS,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        progress: bool | None = False,
        total: Callable[[], int | None] | None = None,
    ) -> None:
        started = time.perf_counter()
        self.remote = None
        if is_url(str(output)):  # state in the store, beside the output (`remote.RemoteRun`)
            from .remote import RemoteRun

            self.remote = RemoteRun(str(output), storage.current())
            path = self.remote.open()
        else:
            path = Path(output)
        try:
            self.journal = Journal(path, layout)
        except BaseException:
            if self.remote is not None:
                self.remote.close(completed=False)
            raise
        if self.remote is not None:
            self.remote.started()
        self.summary = RunSummary(rejected=self.journal.rejected)
        self._started = started
        self._on_record = on_record
        self._keys: set[str] = set()
        self._ids: set[str] = set()
        self._bar = _progress_bar(progress, total)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close(completed=kind is None)

    def close(self, completed: bool = True) -> None:
        """Close the journal; a remote output is flushed first, then published when `completed`."""
        try:
            if self.remote is not None:
                self.remote.stop_flushing()
            self.journal.close()
            if self.remote is not None:
                self.remote.close(completed)
        finally:
            if self._bar is not None:
                self._bar.close()
            self.summary.seconds = time.perf_counter() - self._started

    @property
    def taken(self) -> set[str]:
        """Keys this run has taken (recorded, or being done now)."""
        return self._keys

    def take(
        self,
        key: str,
        identity: str | None = None,
        id: str | None = None,
        aliases: tuple[str, ...] = (),
    ) -> bool:
        """Count an input; True when it is to be done now (not finished before, not already taken).
        `aliases`: keys earlier versions gave the same input (`WorkItem.aliases`)."""
        s = self.summary
        s.total += 1
        if id is not None:
            if id in self._ids:
                s.repeated_ids += 1
            else:
                self._ids.add(id)
        if self.journal.is_done(key, identity, aliases):
            s.skipped += 1
        elif key in self._keys:
            s.duplicates += 1
        else:
            self._keys.add(key)
            return True
        self._advance(1)
        return False

    def pending(self, items: Iterable[WorkItem]) -> Iterator[WorkItem]:
        """The items still to do, lazily: a shard or a table streams through, never held whole."""
        for item in items:
            if self.take(item.key, item.identity, item.id, item.aliases):
                yield item

    def write(self, records: list[dict[str, Any]], *, count: bool = True) -> None:
        """Append records in one write; `count` tallies them as items (a group of one item's records is not)."""
        self.journal.append(records)
        if self.remote is not None:
            self.remote.written(len(records))
        for record in records:
            if count:
                self.summary.count(record)
            if self._on_record is not None:
                self._on_record(record)
        self._advance(len(records) if count else 1)

    def _advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)


def _progress_bar(progress: bool | None, total: Callable[[], int | None] | None) -> Any:
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return None
    from tqdm import tqdm

    bar = tqdm(total=None, unit="item", dynamic_ncols=True, smoothing=0.1)
    if (
        total is not None
    ):  # counted aside (listings, headers, footers), so the first items need not wait

        def count() -> None:
            try:
                n = total()
            except Exception:
                return
            if n is not None:
                bar.total = n
                bar.refresh()

        threading.Thread(target=count, name="anycap-count", daemon=True).start()
    return bar
