"""Reading a judge's verdict, once `openai_compat.json_object` has found the JSON object in the
reply."""

from __future__ import annotations

from typing import Any


def rubric_score(data: dict[str, Any]) -> int:
    """A style verdict's `score`: an integer 0..4 (`true`, 2.5 and "3" are not scores)."""
    score = data.get("score")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 4:
        raise ValueError(f"score {score!r} is not an integer 0..4")
    return score
