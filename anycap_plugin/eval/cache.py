"""A SQLite cache of judge verdicts, so a re-run costs no judge calls.

Keyed by the judge id (model and prompt version), the kind of question, everything the judge
sees (instruction, reference, key points, candidate caption) and the repeat number. Entries are
versioned: format 2 is `{"format": 2, "verdict": V, "reason": R}` (the judge's reasons kept);
an entry written before (the bare verdict) still reads, without reasons.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..sqlite_cache import JsonCache
from .references import EvalItem


def verdict_key(judge_id: str, kind: str, item: EvalItem, caption: str, repeat: int) -> str:
    payload = [
        judge_id,
        kind,
        item.instruction,
        item.reference,
        list(item.key_points or ()),
        caption,
        repeat,
    ]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


FORMAT = 2


def cache_entry(verdict: Any, reason: Any) -> dict[str, Any]:
    return {"format": FORMAT, "verdict": verdict, "reason": reason}


def read_entry(entry: Any) -> tuple[Any, Any]:
    """(verdict, reason) of a cache entry of any format (format 1, the bare verdict: no reason)."""
    if isinstance(entry, dict) and entry.get("format") == FORMAT:
        return entry["verdict"], entry.get("reason")
    return entry, None


class JudgeCache(JsonCache):
    table = "verdicts"  # the table earlier caches were written with
