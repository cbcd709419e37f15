"""The journal: a JSONL file of records, appended whole, that a run can always resume from.

- Each append is written whole on an O_APPEND descriptor (a short write is continued), so a run
  killed at any moment (SIGKILL included) leaves whole lines but for the last, which the next
  open moves aside; it loses only the items in flight.
- A finished record (a caption) is never removed, whatever else the file holds.
- A failed record stays until a later record of the same item supersedes it (its retry, written
  by this run or a run that was killed): then the failure is dropped when the journal opens or
  closes, so a finished run holds one record per input.
- A line that cannot be read (a torn last line, broken JSON, no key) is moved to
  `OUT.rejected.jsonl` and counted, never deleted.
- One run at a time: a second run on the same journal is refused while the first holds its lock
  (`OUT.lock`, a file of its own, since compaction replaces the journal file).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import JournalBusyError
from .keys import canonical_identity, canonical_key, is_current, record_identity, record_key
from .records import is_success


@dataclass(frozen=True)
class Layout:
    """How a journal's lines are read: `key` names a line's item, `finished` says it needs no
    retry, `identity` matches lines written before keys named their source (`keys.is_current`)."""

    key: Callable[[dict[str, Any]], str] = record_key
    finished: Callable[[dict[str, Any]], bool] = is_success
    identity: Callable[[dict[str, Any]], str] = record_identity


def _caption_key(record: dict[str, Any]) -> str:
    return canonical_key(record_key(record))


def _caption_identity(record: dict[str, Any]) -> str:
    return canonical_identity(record_identity(record))


CAPTIONS = Layout(
    key=_caption_key, identity=_caption_identity
)  # files named canonically, however written


class Journal:
    def __init__(self, path: Path, layout: Layout = CAPTIONS) -> None:
        self.path, self.layout = path, layout
        self.rejected_path = path.with_name(path.stem + ".rejected.jsonl")
        self.done: set[str] = set()  # keys of finished items
        self.done_before_keys: set[str] = (
            set()
        )  # identities of finished items written by earlier versions
        self.rejected = 0  # lines moved aside when this journal opened
        self._retry_keys: set[str] = set()  # failed items whose lines a new record will supersede
        self._retry_identities: set[str] = set()
        self._superseded = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise JournalBusyError(
                f"Another run is writing {path}.",
                hint="Wait for it to finish, or write to another output.",
            ) from None
        try:
            self.rejected = self._compact(opening=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except BaseException:
            os.close(self._lock)
            raise

    def is_done(self, key: str, identity: str | None = None, aliases: tuple[str, ...] = ()) -> bool:
        return (
            key in self.done
            or (identity is not None and identity in self.done_before_keys)
            or any(a in self.done for a in aliases)
        )

    def append(self, records: list[dict[str, Any]]) -> None:
        """Records that belong together (a batch, one item's group) in a single write."""
        if not records:
            return
        write_all(
            self._fd,
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8"),
        )
        if self._retry_keys or self._retry_identities:
            for r in records:
                if (
                    self.layout.key(r) in self._retry_keys
                    or self.layout.identity(r) in self._retry_identities
                ):
                    self._superseded = True

    def sync(self) -> None:
        """Make what was appended durable now (a person's review, not a batch's record)."""
        os.fsync(self._fd)

    def close(self) -> None:
        """Flush, drop the failures this run superseded, and let the next run in."""
        try:
            os.fsync(self._fd)
            os.close(self._fd)
            if self._superseded:
                self._compact(opening=False)
        finally:
            os.close(self._lock)  # closing the descriptor releases the lock

    def _compact(self, opening: bool) -> int:
        """Read the journal; rewrite it (aside, then renamed) when a failure is superseded or a line
        cannot be read. Returns how many lines were moved to the rejected file."""
        scan = _Scan(self.layout)
        if not self.path.exists():
            return 0
        with open(self.path, "rb") as f:
            for raw in f:
                scan.add(raw)
        if opening:
            self.done = scan.finished_keys
            self.done_before_keys = scan.finished_before_keys
            self._retry_keys, self._retry_identities = scan.failed_keys(), scan.failed_identities()
        dropped = scan.dropped()
        if not dropped and not scan.rejected and not scan.unterminated:
            return 0
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(self.path, "rb") as src, open(tmp, "wb") as out:
            rejected = []
            for i, raw in enumerate(src):
                if i in scan.rejected:
                    rejected.append(raw if raw.endswith(b"\n") else raw + b"\n")
                elif i not in dropped:
                    out.write(raw if raw.endswith(b"\n") else raw + b"\n")
            out.flush()
            os.fsync(out.fileno())
        if (
            rejected
        ):  # aside first: a crash between the two leaves the line in both, never in neither
            with open(self.rejected_path, "ab") as aside:
                aside.writelines(rejected)
                aside.flush()
                os.fsync(aside.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        return len(rejected)


def write_all(fd: int, data: bytes) -> None:
    """Every byte, looping over short writes (a full disk raises; O_APPEND keeps the bytes together
    for a single writer, which the lock guarantees)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Scan:
    """One pass over a journal's lines: what is finished, what failed, what cannot be read."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.count = 0
        self.rejected: set[int] = set()
        self.unterminated = False
        self.finished_keys: set[str] = set()
        self.finished_before_keys: set[str] = set()
        self._finished_identities: set[str] = set()
        self._last_by_key: dict[str, int] = {}
        self._last_by_identity: dict[str, int] = {}
        self._failures: list[
            tuple[int, str, bool]
        ] = []  # (line, key or identity, written with a current key)

    def add(self, raw: bytes) -> None:
        i, self.count = self.count, self.count + 1
        if not raw.endswith(b"\n"):
            self.unterminated = True  # the last line: torn by a crash, or only missing its newline
        try:
            row = json.loads(raw)
            key = self.layout.key(row)
            ident = self.layout.identity(row)
            finished = bool(self.layout.finished(row))
        except (ValueError, KeyError, TypeError, AttributeError):
            self.rejected.add(i)
            return
        current = is_current(key)
        self._last_by_identity[ident] = i
        if current:
            self._last_by_key[key] = i
        if finished:
            self._finished_identities.add(ident)
            (self.finished_keys if current else self.finished_before_keys).add(
                key if current else ident
            )
        else:
            self._failures.append((i, key if current else ident, current))

    def dropped(self) -> set[int]:
        """Failure lines a later line of the same item, or a finished one, supersedes."""
        out = set()
        for i, name, current in self._failures:
            if (
                current
                and (name in self.finished_keys or self._last_by_key[name] != i)
                or not current
                and (name in self._finished_identities or self._last_by_identity[name] != i)
            ):
                out.add(i)
        return out

    def failed_keys(self) -> set[str]:
        return {
            name
            for i, name, current in self._failures
            if current and name not in self.finished_keys
        }

    def failed_identities(self) -> set[str]:
        return {name for i, name, current in self._failures if not current}
