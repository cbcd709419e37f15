"""A run whose output is in object storage (`-o s3://bucket/run/captions.jsonl`): its state lives in
the store beside the output, so a driver killed at any moment and restarted on another machine,
from another folder, with no local state, resumes from the store alone.

    OUTPUT.state/parts/GEN-SEQ.jsonl   immutable part files: the journal's lines, flushed every
                                       `flush_records` records or `flush_seconds` seconds
    OUTPUT.state/lease/GEN.json        the lease: one object per renewal, each a conditional write

The driver keeps a local journal (`journal.Journal`, in a temporary folder) built from the parts,
appends to it as a local run does, and copies what it appended since the last flush into a new
part. A driver killed loses at most the unflushed interval. When the run ends the output is
published (one record per input: JSONL, or Parquet for a `.parquet` output) and the parts are
compacted into one.

The lease: a driver holds the run while the newest `lease/GEN.json` is its own. It renews by
creating `GEN+1` every `lease_seconds / 3`; the write fails if another driver created it first,
and then this driver stops (`LeaseLostError`). A new driver that finds a lease waits: if the lease
is renewed while it waits, another driver is alive and it is refused (`JournalBusyError`, as for
two local runs); if it lapses (`lease_seconds` without a renewal), the new driver takes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import JournalBusyError, LeaseLostError, StorageError
from ..storage import Storage
from .outputs import state_prefix, write_parquet

# defaults; ANYCAP_FLUSH_RECORDS, ANYCAP_FLUSH_SECONDS and ANYCAP_LEASE_SECONDS change them
FLUSH_RECORDS = 1000
FLUSH_SECONDS = 10.0
LEASE_SECONDS = 30.0


def _setting(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise StorageError(f"{name}={value!r} is not a number.") from None


class Lease:
    """Conditional-write lease objects under `STATE/lease/`."""

    def __init__(
        self, store: Storage, prefix: str, seconds: float = LEASE_SECONDS, wait: bool = True
    ) -> None:
        self.store, self.prefix, self.seconds, self.wait = store, prefix + "/lease", seconds, wait
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.gen = 0
        self.lost: BaseException | None = None
        self._renewed = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _name(self, gen: int) -> str:
        return f"{self.prefix}/{gen:010d}.json"

    def _latest(self) -> tuple[int, dict[str, Any] | None]:
        gens = []
        for location in self.store.files_under(self.prefix):
            stem = location.rsplit("/", 1)[-1].split(".", 1)[0]
            if stem.isdigit():
                gens.append(int(stem))
        if not gens:
            return 0, None
        gen = max(gens)
        try:
            return gen, json.loads(self.store.read_bytes(self._name(gen)))
        except (FileNotFoundError, ValueError):
            return gen, {}

    def _take(self, gen: int, released: bool = False) -> bool:
        body = {"holder": self.holder, "at": time.time(), "released": released}
        return self.store.create(self._name(gen), json.dumps(body).encode())

    def acquire(self, now_in_store: float) -> None:
        """Take the lease, waiting for one that may have lapsed; `now_in_store`: the store's clock."""
        gen, latest = self._latest()
        if latest is not None and not latest.get("released"):
            age = now_in_store - self.store.modified(self._name(gen))
            if age < self.seconds:
                self._await_lapse(gen, self.seconds - max(age, 0.0))
                gen, _ = self._latest()
        if not self._take(gen + 1):
            raise JournalBusyError(
                f"Another driver took the run at {self.prefix.rsplit('/', 2)[0]} just now.",
                hint="Wait for it to finish, or write to another output.",
            )
        self.gen = gen + 1
        self._renewed = time.monotonic()
        self._forget_before(self.gen)

    def _await_lapse(self, gen: int, remaining: float) -> None:
        if not self.wait:
            raise JournalBusyError(
                f"Another driver holds the run at {self.prefix.rsplit('/', 2)[0]}.",
                hint="Wait for it to finish, or write to another output.",
            )
        deadline = time.monotonic() + remaining + 1.0
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.05, self.seconds / 30)))
            newest, body = self._latest()
            if newest != gen:
                if body and body.get("released"):
                    return  # it finished and let go
                raise JournalBusyError(
                    f"Another driver is writing the run at {self.prefix.rsplit('/', 2)[0]} "
                    "(its lease was renewed while this one waited).",
                    hint="Wait for it to finish, or write to another output.",
                )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._renew, name="anycap-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self._take(self.gen + 1):
                    self.lost = LeaseLostError(
                        "Another driver took over this run's lease.",
                        hint="Only one driver may write a run; this one stopped.",
                    )
                    return
                self.gen += 1
                self._renewed = time.monotonic()
                self._forget_before(self.gen - 1)
            except (
                Exception
            ) as e:  # the store is unreachable: keep trying until the lease would have lapsed
                if time.monotonic() - self._renewed >= self.seconds:
                    self.lost = LeaseLostError(
                        f"Could not renew the lease: {self.store.describe(self.prefix, e)}.",
                        hint="Run the same command again to resume.",
                    )
                    return

    def _forget_before(self, gen: int) -> None:
        for old in range(max(1, gen - 3), gen):
            with contextlib.suppress(Exception):  # an old lease left behind costs nothing
                self.store.delete(self._name(old))

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.gen and self.lost is None:
            with contextlib.suppress(Exception):  # if this fails, the lease lapses by itself
                if self._take(self.gen + 1, released=True):
                    self.gen += 1
                    self._forget_before(self.gen)


class RemoteRun:
    """The store side of a run on a remote output: download the parts into a local journal, flush
    new lines as parts, hold the lease, publish the output. `BatchRun` drives it."""

    def __init__(
        self,
        output: str,
        store: Storage,
        *,
        flush_records: int | None = None,
        flush_seconds: float | None = None,
        lease_seconds: float | None = None,
        wait: bool = True,
    ) -> None:
        self.output, self.store = output, store
        self.state = state_prefix(output)
        self.flush_records = int(flush_records or _setting("ANYCAP_FLUSH_RECORDS", FLUSH_RECORDS))
        self.flush_seconds = flush_seconds or _setting("ANYCAP_FLUSH_SECONDS", FLUSH_SECONDS)
        self.lease = Lease(
            store,
            self.state,
            lease_seconds or _setting("ANYCAP_LEASE_SECONDS", LEASE_SECONDS),
            wait,
        )
        self.folder = Path(tempfile.mkdtemp(prefix="anycap-run-"))
        self.journal_path = self.folder / "journal.jsonl"
        self._flushed = 0
        self._unflushed_records = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    # ---- start ---------------------------------------------------------------------
    def open(self) -> Path:
        """Probe the store, take the lease, and bring the run's parts into the local journal."""
        now = probe_remote(self.store, self.output)
        self.lease.acquire(now)
        with open(self.journal_path, "wb") as out:
            for part in self._parts():
                data = self.store.read_bytes(part)
                out.write(data if data.endswith(b"\n") or not data else data + b"\n")
        self.lease.start()
        return self.journal_path

    def _parts(self) -> list[str]:
        return sorted(
            p for p in self.store.files_under(self.state + "/parts") if p.endswith(".jsonl")
        )

    def started(self) -> None:
        """The local journal is open (and compacted): lines from here on are this driver's."""
        self._flushed = self.journal_path.stat().st_size
        self._timer = threading.Thread(target=self._tick, name="anycap-flush", daemon=True)
        self._timer.start()

    # ---- during the run -------------------------------------------------------------
    def written(self, n: int) -> None:
        """`n` records were appended to the local journal: flush when enough have gathered."""
        if self.lease.lost is not None:
            raise self.lease.lost
        self._unflushed_records += n
        if self._unflushed_records >= self.flush_records:
            self.flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            with contextlib.suppress(Exception):  # the next flush, or the one at close, tries again
                self.flush()

    def flush(self) -> None:
        """Whole lines appended since the last flush, as one new immutable part."""
        with self._lock:
            with open(self.journal_path, "rb") as f:
                f.seek(self._flushed)
                data = f.read()
            end = data.rfind(b"\n") + 1
            if end == 0:
                return
            self._seq += 1
            self.store.write_bytes(
                f"{self.state}/parts/{self.lease.gen:010d}-{self._seq:06d}.jsonl", data[:end]
            )
            self._flushed += end
            self._unflushed_records = 0

    # ---- end -----------------------------------------------------------------------
    def stop_flushing(self) -> None:
        """The last flush: what the journal holds is in the store (call before the journal closes)."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
        self.flush()

    def close(self, completed: bool) -> None:
        """When the run completed, publish the output and compact the parts; let the lease go."""
        try:
            rejected = self.folder / "journal.rejected.jsonl"
            if (
                rejected.exists()
            ):  # lines that could not be read are kept in the store, never deleted
                self._upload(rejected, f"{self.state}/rejected-{self.lease.gen:010d}.jsonl")
            if completed and self.lease.lost is None:
                self.publish()
        finally:
            self.lease.release()
            shutil.rmtree(self.folder, ignore_errors=True)

    def publish(self) -> None:
        records = self.folder / "records.jsonl"
        with open(records, "wb") as out:
            out.writelines(one_record_per_key(self.journal_path))
        if self.output.lower().endswith(".parquet"):
            table = self.folder / "records.parquet"
            write_parquet(records, table)
            self._upload(table, self.output)
        else:
            self._upload(records, self.output)
        parts = self._parts()
        compacted = f"{self.state}/parts/{self.lease.gen:010d}-compacted.jsonl"
        self._upload(records, compacted)
        for part in parts:
            if part != compacted:
                self.store.delete(part)

    def _upload(self, local: Path, location: str) -> None:
        fs, path = self.store.filesystem(location)
        fs.put_file(str(local), path)


def one_record_per_key(journal: Path) -> Iterator[bytes]:
    """The journal's lines, one per key: a finished record if any (the first), else the last failure."""
    from .journal import CAPTIONS

    best: dict[str, tuple[int, bool]] = {}
    with open(journal, "rb") as f:
        for i, raw in enumerate(f):
            try:
                row = json.loads(raw)
                key, finished = CAPTIONS.key(row), bool(CAPTIONS.finished(row))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            had = best.get(key)
            if had is None or not had[1]:
                best[key] = (i, finished)
    keep = {i for i, _ in best.values()}
    with open(journal, "rb") as f:
        for i, raw in enumerate(f):
            if i in keep:
                yield raw if raw.endswith(b"\n") else raw + b"\n"


def probe_remote(store: Storage, output: str) -> float:
    """Refuse, before any model loads, an output that cannot be written (one write and one delete);
    returns the store's clock, read off the probe."""
    probe = f"{state_prefix(output)}/probe-{uuid.uuid4().hex[:12]}"
    try:
        store.write_bytes(probe, b"")
        now = store.modified(probe)
        store.delete(probe)
    except Exception as e:
        raise StorageError(
            f"Cannot write the output {output}: {store.describe(output, e)}.",
            hint="Check the bucket, the credentials and the endpoint (AWS_ENDPOINT_URL, "
            "--storage-option).",
        ) from None
    return now
