"""A SQLite cache of judge verdicts, so a re-run costs no judge calls.

Keyed by the judge id (model and prompt version), the kind of question, everything the judge
sees (instruction, reference, key points, candidate caption) and the repeat number.
"""

from __future__ import annotations

import hashlib
import json

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


class JudgeCache(JsonCache):
    table = "verdicts"  # the table earlier caches were written with
