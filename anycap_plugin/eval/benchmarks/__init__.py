"""The built-in benchmarks, one module each; `default_plugins.benchmarks` registers them."""

from __future__ import annotations

from ..registry import Benchmark


def builtin() -> list[Benchmark]:
    from . import anycapeval, audio_captions, mia_bench, vidcapbench

    return [
        anycapeval.BENCHMARK,
        audio_captions.AUDIOCAPS,
        audio_captions.CLOTHO,
        mia_bench.BENCHMARK,
        vidcapbench.BENCHMARK,
    ]
