"""AnyCapEval scoring, exactly as the benchmark defines it.

Content: an item scores its matched key points, minus one (not below zero) when the caption
breaks the item's length constraint; a dimension's key-point density is
100 x sum(item scores) / sum(candidate word counts). Recall is the dimension's matched key
points (before the penalty) over all its key points.
Style: the judge's 0..4 score, capped at 1 when the length constraint is broken; a
dimension's score is the mean. Words, sentences and the length check are the release's
(`length_rules`). Figures are full precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from statistics import mean, pstdev
from typing import Any

import numpy as np

from ..instructions import count_words
from .references import EvalItem


@dataclass(frozen=True)
class Judged:
    """One item's verdicts, one per repeat (content: flags per key point; style: a score)."""

    item: EvalItem
    caption: str
    verdicts: list[Any]
    reasons: list[Any] | None = None  # per repeat: a reason per key point (content), one (style)

    @cached_property
    def broken(self) -> bool:
        c = self.item.constraint
        return c is not None and not c.check(self.caption).ok

    @cached_property
    def words(self) -> int:
        return count_words(self.caption)

    def content_score(self, flags: list[int]) -> int:
        return max(0, sum(flags) - 1) if self.broken else sum(flags)

    def style_score(self, score: int) -> int:
        return min(score, 1) if self.broken else score


def item_verdicts(j: Judged) -> dict[str, Any]:
    """One judged item as the report lists it: what was asked, the caption, each repeat's verdict
    (content: a 0/1 flag per key point; style: the 0-4 score), its score, and the length check."""
    c = j.item.constraint
    check = c.check(j.caption) if c is not None else None
    scores = [
        j.content_score(v) if j.item.axis == "content" else j.style_score(v) for v in j.verdicts
    ]
    return {
        "modality": j.item.modality,
        "axis": j.item.axis,
        "dimension": j.item.dimension,
        "id": j.item.id,
        "media": j.item.media,
        "instruction": j.item.instruction,
        "caption": j.caption,
        "reference": j.item.reference,
        "key_points": list(j.item.key_points or []),
        "verdicts": j.verdicts,
        "reasons": j.reasons or [None] * len(j.verdicts),
        "scores": scores,
        "words": j.words,
        "length": {
            "constraint": j.item.constraint_text,
            "checked": check is not None,
            "ok": None if check is None else check.ok,
            "count": None if check is None else check.count,
        },
    }


def content_kpd(judged: list[Judged], repeat: int) -> float:
    words = sum(j.words for j in judged)
    return (
        100.0 * sum(j.content_score(j.verdicts[repeat]) for j in judged) / words if words else 0.0
    )


def style_mean(judged: list[Judged], repeat: int) -> float:
    return mean(j.style_score(j.verdicts[repeat]) for j in judged) if judged else 0.0


def _bootstrap(
    judged: list[Judged], axis: str, repeats: int, samples: int = 1000, seed: int = 0
) -> list[float]:
    """95% interval of the dimension score over items (each resample averages the repeats)."""
    if len(judged) < 2:
        return []
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(judged), size=(samples, len(judged)))
    if axis == "content":
        scores = np.array(
            [[j.content_score(j.verdicts[r]) for r in range(repeats)] for j in judged], float
        )
        words = np.array([j.words for j in judged], float)
        total_words = words[pick].sum(axis=1)
        stats = 100.0 * scores[pick].sum(axis=1).mean(axis=1) / np.maximum(total_words, 1e-9)
        stats[total_words == 0] = 0.0
    else:
        scores = np.array(
            [[j.style_score(j.verdicts[r]) for r in range(repeats)] for j in judged], float
        )
        stats = scores[pick].mean(axis=(1, 2))
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return [float(lo), float(hi)]


def dimension_summary(
    axis: str, judged: list[Judged], failed: int, missing: int, repeats: int
) -> dict[str, Any]:
    stat = content_kpd if axis == "content" else style_mean
    per_repeat = [stat(judged, r) for r in range(repeats)] if judged else []
    out: dict[str, Any] = {
        "score": mean(per_repeat) if per_repeat else None,
        "n": len(judged),
        "failed": failed,
        "missing": missing,
        "length_violations": sum(j.broken for j in judged),
        "unchecked_constraints": sum(j.item.constraint is None for j in judged),
    }
    if axis == "content":
        points = sum(len(j.item.key_points or ()) for j in judged)
        matched = [sum(sum(j.verdicts[r]) for j in judged) for r in range(repeats)]
        out["recall"] = mean(matched) / points if points and judged else None
    if repeats > 1:
        out["std"] = pstdev(per_repeat) if per_repeat else None
    out["ci95"] = _bootstrap(judged, axis, repeats)
    return out
