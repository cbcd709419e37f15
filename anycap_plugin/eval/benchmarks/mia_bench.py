"""MIA-Bench: instruction following on images, judged component by component.

Its scorer is VLMEvalKit's own `MIABench` class (the benchmark's judge prompt and score parsing);
AnyCap registers it so a local `MIA-Bench.tsv` is used offline (`integrations.vlmeval.registry`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..registry import Benchmark


def vlmeval_datasets() -> Sequence[type]:
    from ...contained.vlmeval import import_vlmeval

    import_vlmeval()
    from vlmeval.dataset import MIABench

    return [MIABench]


BENCHMARK = Benchmark(
    name="mia-bench",
    description="MIA-Bench: image instructions with weighted components, each judged by an LLM.",
    modalities=("image",),
    vlmeval=vlmeval_datasets,
    no_cli="scored by VLMEvalKit's own MIABench class (its judge prompt and score parsing), which "
    "AnyCap does not re-implement: run it with `anycap vlmeval -d MIA-Bench`.",
    no_lmms_eval="lmms-eval ships its own `mia_bench` task (hub data, GPT-4o judge): "
    "`--model anycap` runs it as it is.",
)
