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


def interleaved(repeats: int, fns: dict[str, Callable[[], Any]]) -> tuple[dict[str, dict[str, list[float]]], dict[str, Any]]:
    """Each of `fns` run `repeats` times in turn (A B C A B C ...): on a shared machine a burst of
    load then falls on every path alike, so per-round ratios (`ratio_stats`) are fairer than
    comparing each path's best. Each run is timed twice: wall-clock seconds, and this process's CPU
    seconds (all its threads), which other processes' load barely moves. Returns, per name, both
    lists of seconds ({"wall": [...], "cpu": [...]}), and each one's last result."""
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in fns}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            results[name] = fn()
            times[name]["cpu"].append(time.process_time() - c0)
            times[name]["wall"].append(time.perf_counter() - w0)
    return times, results


def ratio_stats(numerator: list[float], denominator: list[float]) -> dict[str, float]:
    """The per-round ratios of two `interleaved` paths: their median, and their spread (min, max)."""
    import statistics

    ratios = sorted(a / b for a, b in zip(numerator, denominator))
    return {"median": round(statistics.median(ratios), 3), "min": round(ratios[0], 3),
            "max": round(ratios[-1], 3)}

def peak_rss_kb() -> int:
    """This process's own peak resident memory (VmHWM), in KiB. Not `getrusage`'s `ru_maxrss`:
    Linux carries it across exec, so a child started by a larger parent reports the parent's size."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def child_script(body: str) -> str:
    """`body` as a `python -c` script that can import this module (`from _timing import peak_rss_kb`)."""
    return f"import sys; sys.path.insert(0, {str(HERE)!r})\n{body}"
