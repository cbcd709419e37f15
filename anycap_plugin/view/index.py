"""An output file, indexed in the background and read by position: never loaded whole.

JSONL: a thread reads the file once, keeping each line's byte offset and a few compact columns
(status, error type, complies, modality, words, seconds, score, key hash) in flat arrays, about
30 bytes a line, so a million-line file costs ~30 MB and its first page is served before the
index is done. A record is read back by seeking to its offset. Parquet (`anycap caption -o
X.parquet`): rows are found by row group, one group decoded at a time. Filters and sorts run
here, on the server, over the columns; a text search reads the lines (bytes first, then JSON).
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .display import MODALITIES, NUMERIC, display

STATUS = ("ok", "failed", "unreadable")
# column -> (array typecode, numpy dtype); in the order `_row` gives them
_COLUMNS = {
    "offset": ("Q", np.uint64),
    "status": ("B", np.uint8),
    "complies": ("B", np.uint8),
    "modality": ("B", np.uint8),
    "error": ("H", np.uint16),
    "words": ("H", np.uint16),
    "seconds": ("f", np.float32),
    "score": ("f", np.float32),
    "key": ("q", np.int64),
}
COMPLIES = {True: 1, False: 0, None: 2}
_BATCH = 20_000
_FIRST = 200


@dataclass(frozen=True)
class Query:
    status: str | None = None  # ok, failed
    error: str | None = None  # an error type
    complies: str | None = None  # true, false, unknown
    modality: str | None = None
    text: str | None = None
    sort: str | None = None  # one of NUMERIC
    descending: bool = False


def key_hash(key: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(key.encode(), digest_size=8).digest(), "little", signed=True
    )


class RunIndex:
    """`RunIndex(path).start()`; then `select(query)`, `record(n)`, `display(n)`. `keys=True` also keeps
    each row's key hash (8 bytes a line), to pair two runs."""

    def __init__(self, path: Path, keys: bool = False) -> None:
        self.path = Path(path)
        self.kind = "parquet" if self.path.suffix == ".parquet" else "jsonl"
        self._lock = threading.Lock()
        self._grown = threading.Condition(self._lock)
        # one flat array per column (typecode, numpy dtype): ~21 bytes a line, 29 with keys
        self._columns = {
            name: array.array(code) for name, (code, _) in _COLUMNS.items() if keys or name != "key"
        }
        self.error_types: list[str] = []
        self._error_codes: dict[str, int] = {}
        self.done = False
        self.failure: str | None = None
        self._thread: threading.Thread | None = None
        self._parquet: Any = None
        self._group_rows: list[int] = []
        self._group_cache: tuple[int, list[dict[str, Any]]] | None = None
        self._fd: int | None = None

    # ---- indexing -----------------------------------------------------------------------------
    def start(self) -> RunIndex:
        if self._thread is not None:
            return self
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetFile(self.path)
            self._group_rows = [
                self._parquet.metadata.row_group(i).num_rows
                for i in range(self._parquet.num_row_groups)
            ]
        self._thread = threading.Thread(
            target=self._index, name=f"index {self.path.name}", daemon=True
        )
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done

    @property
    def count(self) -> int:
        return len(self._columns["status"])

    def _index(self) -> None:
        try:
            rows = self._jsonl_rows() if self.kind == "jsonl" else self._parquet_rows()
            batch: list[tuple[Any, ...]] = []
            for n, (offset, record) in enumerate(rows):
                batch.append(self._row(n, offset, record))  # the columns only: records are not kept
                if len(batch) >= (
                    _FIRST if self.count == 0 else _BATCH
                ):  # the first page's rows come soon
                    self._add(batch)
                    batch = []
            self._add(batch)
        except (
            Exception
        ) as e:  # the index stops where the file stopped being readable; said on the page
            self.failure = f"{type(e).__name__}: {e}"
        finally:
            with self._lock:
                self.done = True
                self._grown.notify_all()

    def _jsonl_rows(self) -> Iterator[tuple[int, dict[str, Any] | None]]:
        with open(self.path, "rb") as f:
            offset = 0
            for line in f:
                if line.strip():
                    try:
                        record = json.loads(line)
                    except ValueError:
                        record = None
                    yield offset, record if isinstance(record, dict) else None
                offset += len(line)

    def _parquet_rows(self) -> Iterator[tuple[int, dict[str, Any] | None]]:
        n = 0
        for i in range(self._parquet.num_row_groups):
            for record in self._group(i):
                yield n, record
                n += 1

    def _row(self, n: int, offset: int, record: dict[str, Any] | None) -> tuple[Any, ...]:
        """The column values of one row, in `_COLUMNS` order."""
        d: dict[str, Any]
        if record is None:
            d = {
                "status": "unreadable",
                "complies": None,
                "modality": None,
                "key": f"line:{n}",
                "error": {"type": "UnreadableLine"},
                "words": None,
                "seconds": None,
                "score": None,
            }
        else:
            d = display(record, n)
        nan = float("nan")
        return (
            offset,
            STATUS.index(d["status"]),
            COMPLIES.get(d["complies"], 2),
            MODALITIES.index(d["modality"]) if d["modality"] in MODALITIES else len(MODALITIES),
            self._code(d["error"].get("type", "Error")) if d["error"] else 0,
            min(int(d["words"]), 65535) if isinstance(d["words"], int) else 65535,
            float(d["seconds"]) if isinstance(d["seconds"], (int, float)) else nan,
            float(d["score"]) if isinstance(d["score"], (int, float)) else nan,
            key_hash(d["key"]),
        )

    def _add(self, batch: list[tuple[Any, ...]]) -> None:
        names = list(_COLUMNS)
        with self._lock:
            for i, name in enumerate(names):
                if name in self._columns and name != "status":
                    self._columns[name].extend(row[i] for row in batch)
            self._columns["status"].extend(
                row[1] for row in batch
            )  # last: `count` grows when a row is whole
            self._grown.notify_all()

    def _code(self, error_type: str) -> int:
        if error_type not in self._error_codes:
            self.error_types.append(error_type)
            self._error_codes[error_type] = len(self.error_types)  # 0: no error
        return self._error_codes[error_type]

    # ---- reading -----------------------------------------------------------------------------------
    def record(self, n: int) -> dict[str, Any] | None:
        """Row `n` as written (None: a line that is not a JSON object)."""
        if not 0 <= n < self.count:
            raise IndexError(n)
        if self.kind == "parquet":
            group = 0
            while n >= self._group_rows[group]:
                n -= self._group_rows[group]
                group += 1
            return self._group(group)[n]
        try:
            record = json.loads(self._line(n))
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    def _line(self, n: int) -> bytes:
        """Line `n`'s bytes, in one positioned read (each system call hands the interpreter to the
        indexing thread for a while, so a page's reads are kept few)."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        start = self._columns["offset"][n]
        end = self._columns["offset"][n + 1] if n + 1 < self.count else None
        if end is not None:
            return os.pread(self._fd, end - start, start)
        chunks = []
        while True:  # the last indexed line: read up to its newline
            chunk = os.pread(self._fd, 65536, start)
            cut = chunk.find(b"\n")
            if cut >= 0 or not chunk:
                chunks.append(chunk[: cut + 1] if cut >= 0 else chunk)
                return b"".join(chunks)
            chunks.append(chunk)
            start += len(chunk)

    def display(self, n: int) -> dict[str, Any]:
        record = self.record(n)
        if record is None:
            return {
                "line": n,
                "key": f"line:{n}",
                "status": "unreadable",
                "modality": None,
                "caption": None,
                "instruction": None,
                "base_caption": None,
                "complies": None,
                "words": None,
                "seconds": None,
                "score": None,
                "error": {"type": "UnreadableLine", "message": "This line is not a JSON object."},
                "models": {},
                "timings": {},
                "usage": {},
                "meta": {},
                "capflow": None,
                "media": None,
            }
        return display(record, n)

    def _group(self, i: int) -> list[dict[str, Any]]:
        from ..batch.records import from_arrow_row

        cached = self._group_cache
        if cached is not None and cached[0] == i:
            return cached[1]
        rows = self._parquet.read_row_group(i).to_pylist()
        records = [from_arrow_row(r) if "key" in r and "error" in r else r for r in rows]
        self._group_cache = (i, records)
        return records

    # ---- queries ---------------------------------------------------------------------------------------
    def columns(self, *names: str) -> dict[str, np.ndarray]:
        """Indexed columns (all but offsets, or `names`) as arrays: views once the index is done, copies
        while it grows (a growing array cannot be viewed). `words` comes as floats, NaN for none."""
        with self._lock:
            n = self.count
            out = {
                name: np.frombuffer(self._columns[name], _COLUMNS[name][1], n)
                for name in names or self._columns
                if name != "offset"
            }
            if not self.done:
                out = {name: a.copy() for name, a in out.items()}
        if "words" in out:
            out["words"] = np.where(out["words"] == 65535, np.nan, out["words"]).astype(np.float32)
        return out

    def key_at(self, n: int) -> int:
        return self._columns["key"][n]

    def select(self, query: Query) -> np.ndarray:
        """Row numbers matching `query`, in its order."""
        needed = ["status", "error", "complies", "modality"] + (
            [query.sort] if query.sort in NUMERIC else []
        )
        cols = self.columns(*needed)
        mask = np.ones(len(cols["status"]), bool)
        if query.status == "ok":
            mask &= cols["status"] == 0
        elif query.status == "failed":
            mask &= cols["status"] != 0
        if query.error:
            code = self._error_codes.get(query.error, -1)
            mask &= cols["error"] == code
        if query.complies in ("true", "false", "unknown"):
            mask &= cols["complies"] == {"true": 1, "false": 0, "unknown": 2}[query.complies]
        if query.modality in MODALITIES:
            mask &= cols["modality"] == MODALITIES.index(query.modality)
        rows = np.flatnonzero(mask)
        if query.text:
            rows = np.array([n for n in rows if self._matches(int(n), query.text)], dtype=np.int64)
        if query.sort in NUMERIC:
            values = cols[query.sort][rows]
            order = np.argsort(-values if query.descending else values, kind="stable")
            order = np.concatenate(
                [order[~np.isnan(values[order])], order[np.isnan(values[order])]]
            )  # no value: last
            rows = rows[order]
        return rows

    def _matches(self, n: int, text: str) -> bool:
        needle = text.lower()
        if (  # bytes first: most lines are out unparsed
            self.kind == "jsonl"
            and needle.isascii()
            and not any(c in needle for c in '"\\/')
            and needle.encode() not in self._line(n).lower()
        ):
            return False
        d = self.display(n)
        return any(
            isinstance(d.get(f), str) and needle in d[f].lower()
            for f in ("caption", "instruction", "base_caption", "key")
        )

    def rows_by_key(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted key hashes, their row numbers): pairing two runs by key without holding the keys.
        Kept until the index grows."""
        cached = getattr(self, "_by_key", None)
        if cached is None or cached[0] != self.count:
            keys = self.columns("key")["key"]
            order = np.argsort(keys, kind="stable")
            cached = self._by_key = (len(keys), keys[order], order)
        return cached[1], cached[2]

    def find_hash(self, h: int) -> int | None:
        keys, rows = self.rows_by_key()
        i = int(np.searchsorted(keys, h))
        return int(rows[i]) if i < len(keys) and keys[i] == h else None
