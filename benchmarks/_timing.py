"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import time
from typing import Any, Callable


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of `repeats` runs and its result: this VM's neighbours add noise, never speed."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        if (elapsed := time.perf_counter() - t0) < best:
            best, result = elapsed, out
    return best, result
