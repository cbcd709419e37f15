"""Reading a judge's reply: the first JSON object in it, bare, fenced, or inside prose."""

from __future__ import annotations

from typing import Any

from ..openai_compat import json_object


def extract_json(text: str) -> Any:
    """The first JSON object in a reply, whether bare, fenced, or inside prose (`openai_compat.json_object`)."""
    return json_object(text)


def rubric_score(data: dict[str, Any]) -> int:
    """A style verdict's `score`: an integer 0..4 (`true`, 2.5 and "3" are not scores)."""
    score = data.get("score")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 4:
        raise ValueError(f"score {score!r} is not an integer 0..4")
    return score
