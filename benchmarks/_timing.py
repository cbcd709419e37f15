"""Timing and memory helpers shared by the benchmark scripts."""

from __future__ import annotations

import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

HERE = Path(__file__).resolve().parent


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of `repeats` runs and its result: this VM's neighbours add noise, never speed."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        if (elapsed := time.perf_counter() - t0) < best:
            best, result = elapsed, out
    return best, result


def peak_rss_kb() -> int:
    """This process's own peak resident memory (VmHWM), in KiB. Not `getrusage`'s `ru_maxrss`:
    Linux carries it across exec, so a child started by a larger parent reports the parent's size."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def child_script(body: str) -> str:
    """`body` as a `python -c` script that can import this module (`from _timing import peak_rss_kb`)."""
    return f"import sys; sys.path.insert(0, {str(HERE)!r})\n{body}"
