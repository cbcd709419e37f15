"""The AnyCapEval evaluator: judge every (item, repeat) once, cache verdicts, score, report."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from statistics import mean
from typing import Any

from .cache import JudgeCache, verdict_key
from .judges import Judge, JudgeError
from .references import EvalItem
from .scoring import Judged, dimension_summary


async def _verdicts(item: EvalItem, caption: str, judge: Judge, cache: JudgeCache | None, repeats: int,
                    slots: asyncio.Semaphore) -> list[Any]:
    out = []
    for r in range(repeats):
        key = verdict_key(judge.id, item.axis, item, caption, r)
        cached = cache.get(key) if cache is not None else None
        if cached is None:
            if item.axis == "content" and not item.key_points:
                cached = []  # nothing to judge
            else:
                async with slots:
                    cached = await (judge.judge_content(item, caption) if item.axis == "content"
                                    else judge.judge_style(item, caption))
            if cache is not None:
                cache.put(key, cached)
        out.append(cached)
    return out


async def evaluate_async(items: list[EvalItem], captions: dict[tuple[str, str], str], judge: Judge, *,
                         cache: JudgeCache | None = None, repeats: int = 1, concurrency: int = 32) -> dict[str, Any]:
    """Judge and score; returns the report dict (per modality: content and style by dimension)."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    started = time.perf_counter()
    slots = asyncio.Semaphore(concurrency)
    present = [i for i in items if i.key in captions]
    prefetch = getattr(judge, "prefetch", None)
    if prefetch is not None:  # local judges batch their model calls up front
        await asyncio.to_thread(prefetch, [(i, captions[i.key]) for i in present])

    async def one(item: EvalItem) -> tuple[EvalItem, Any]:
        try:
            return item, await _verdicts(item, captions[item.key], judge, cache, repeats, slots)
        except JudgeError as e:
            return item, e

    results = await asyncio.gather(*(one(i) for i in present))
    groups: dict[tuple[str, str, str], list[Judged]] = defaultdict(list)
    failed: dict[tuple[str, str, str], int] = defaultdict(int)
    missing: dict[tuple[str, str, str], int] = defaultdict(int)
    failures = []
    for item in items:
        if item.key not in captions:
            missing[(item.modality, item.axis, item.dimension)] += 1
    for item, verdicts in results:
        g = (item.modality, item.axis, item.dimension)
        if isinstance(verdicts, JudgeError):
            failed[g] += 1
            failures.append({"modality": item.modality, "id": item.id, "error": str(verdicts)})
        else:
            groups[g].append(Judged(item, captions[item.key], verdicts))
    report: dict[str, Any] = {}
    for g in sorted(set(groups) | set(failed) | set(missing)):
        modality, axis, dimension = g
        section = report.setdefault(modality, {}).setdefault(axis, {})
        section[dimension] = dimension_summary(axis, groups.get(g, []), failed[g], missing[g], repeats)
    for modality, axes in report.items():
        for axis, dims in axes.items():
            scores = [d["score"] for d in dims.values() if d["score"] is not None]
            dims["average"] = {"score": round(mean(scores), 4) if scores else None, "dimensions": len(scores)}
    report["meta"] = {
        "judge": judge.id, "repeats": repeats, "items": len(items), "judged": len(present) - len(failures),
        "failed": len(failures), "missing_captions": len(items) - len(present), "failures": failures,
        "cache": {"hits": cache.hits, "misses": cache.misses} if cache is not None else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return report


def evaluate(items: list[EvalItem], captions: dict[tuple[str, str], str], judge: Judge, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(evaluate_async(items, captions, judge, **kwargs))
