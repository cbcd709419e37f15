"""A SQLite cache of judge verdicts, so a re-run costs no judge calls.

Keyed by the judge id (model and prompt version), the kind of question, everything the judge
sees (instruction, reference, key points, candidate caption) and the repeat number.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from .references import EvalItem


def verdict_key(judge_id: str, kind: str, item: EvalItem, caption: str, repeat: int) -> str:
    payload = [judge_id, kind, item.instruction, item.reference, list(item.key_points or ()), caption, repeat]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


class JudgeCache:
    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; no fsync per verdict
        self._db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM verdicts WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?)", (key, json.dumps(value)))
            self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "JudgeCache":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
