"""The AnyCapEval evaluator: judge every (item, repeat) once, cache verdicts, score, report.

Every figure in the returned report is full precision (only report.md rounds). An item that
cannot be judged, for any reason, is a counted failure with its reason; the run always finishes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from statistics import mean
from typing import Any

from ..errors import AnyCapError
from ..version import __version__
from .cache import JudgeCache, cache_entry, read_entry, verdict_key
from .judges import Judge
from .length_rules import COUNTING_RULE
from .references import EvalItem
from .scoring import Judged, dimension_summary, item_verdicts


async def _verdicts(
    item: EvalItem,
    caption: str,
    judge: Judge,
    cache: JudgeCache | None,
    repeats: int,
    slots: asyncio.Semaphore,
) -> tuple[list[Any], list[Any]]:
    """Each repeat's verdict and the judge's reasons (None where the judge, or an older cache
    entry, keeps none)."""
    verdicts, reasons = [], []
    for r in range(repeats):
        key = verdict_key(judge.id, item.axis, item, caption, r)
        cached = cache.get(key) if cache is not None else None
        if cached is None:
            async with slots:
                verdict, reason = await _judge(judge, item, caption)
            if cache is not None:
                cache.put(key, cache_entry(verdict, reason))
        else:
            verdict, reason = read_entry(cached)
        verdicts.append(verdict)
        reasons.append(reason)
    return verdicts, reasons


async def _judge(judge: Judge, item: EvalItem, caption: str) -> tuple[Any, Any]:
    """A verdict and its reasons, from judges that give them (`judge_content_why`); else None."""
    content = item.axis == "content"
    why = getattr(judge, "judge_content_why" if content else "judge_style_why", None)
    if why is not None:
        return await why(item, caption)
    plain = judge.judge_content if content else judge.judge_style
    return await plain(item, caption), None


async def evaluate_async(
    items: list[EvalItem],
    captions: dict[tuple[str, str], str],
    judge: Judge,
    *,
    cache: JudgeCache | None = None,
    repeats: int = 1,
    concurrency: int = 32,
) -> dict[str, Any]:
    """Judge and score; returns the report dict (per modality: content and style by dimension)."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    started = time.perf_counter()
    slots = asyncio.Semaphore(concurrency)
    # as the release: a content item without key points cannot be scored; it is counted, not judged
    unscorable = [i for i in items if i.axis == "content" and not i.key_points]
    skipped = {i.key for i in unscorable}
    present = [i for i in items if i.key in captions and i.key not in skipped]
    prefetch = getattr(judge, "prefetch", None)
    if prefetch is not None:  # local judges batch their model calls up front
        await asyncio.to_thread(prefetch, [(i, captions[i.key]) for i in present])

    async def one(item: EvalItem) -> tuple[EvalItem, Any]:
        try:
            return item, await _verdicts(item, captions[item.key], judge, cache, repeats, slots)
        except AnyCapError as e:  # judge errors, media errors: the item's counted failure
            return item, e

    results = await asyncio.gather(*(one(i) for i in present))
    groups: dict[tuple[str, str, str], list[Judged]] = defaultdict(list)
    failed: dict[tuple[str, str, str], int] = defaultdict(int)
    missing: dict[tuple[str, str, str], int] = defaultdict(int)
    failures = []
    no_points: dict[tuple[str, str, str], int] = defaultdict(int)
    for item in unscorable:
        no_points[(item.modality, item.axis, item.dimension)] += 1
    for item in items:
        if item.key not in captions and item.key not in skipped:
            missing[(item.modality, item.axis, item.dimension)] += 1
    for item, verdicts in results:
        g: tuple[str, str, str] = (item.modality, item.axis, item.dimension)
        if isinstance(verdicts, AnyCapError):
            failed[g] += 1
            failures.append(
                {
                    "modality": item.modality,
                    "axis": item.axis,
                    "id": item.id,
                    "error": str(verdicts),
                }
            )
        else:
            groups[g].append(Judged(item, captions[item.key], *verdicts))
    report: dict[str, Any] = {}
    for g in sorted(set(groups) | set(failed) | set(missing) | set(no_points)):
        modality, axis, dimension = g
        section = report.setdefault(modality, {}).setdefault(axis, {})
        section[dimension] = dimension_summary(
            axis, groups.get(g, []), failed[g], missing[g], repeats
        )
        if no_points[g]:
            section[dimension]["no_key_points"] = no_points[g]
    for modality, axes in report.items():
        for axis, dims in axes.items():
            scores = [d["score"] for d in dims.values() if d["score"] is not None]
            dims["average"] = {"score": mean(scores) if scores else None, "dimensions": len(scores)}
    unchecked = Counter(
        j.item.constraint_text for js in groups.values() for j in js if j.item.constraint is None
    )
    describe = getattr(judge, "describe", None)
    report["meta"] = {
        "judge": judge.id,
        "repeats": repeats,
        "items": len(items),
        "judged": len(present) - len(failures),
        "failed": len(failures),
        "missing_captions": sum(missing.values()),
        "no_key_points": len(unscorable),
        "unchecked_constraints": dict(unchecked),
        "failures": failures,
        "setup": {
            **(describe() if describe else {"protocol": None, "judge_model": judge.id}),
            "counting": COUNTING_RULE,
            "anycap_version": __version__,
        },
        "cache": {"hits": cache.hits, "misses": cache.misses} if cache is not None else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    report["items"] = [
        item_verdicts(j) for g in sorted(groups) for j in sorted(groups[g], key=lambda j: j.item.id)
    ]
    return report


def evaluate(
    items: list[EvalItem], captions: dict[tuple[str, str], str], judge: Judge, **kwargs: Any
) -> dict[str, Any]:
    return asyncio.run(evaluate_async(items, captions, judge, **kwargs))
