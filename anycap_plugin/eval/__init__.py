"""Evaluation: the benchmark registry (`registry`, `benchmarks/`), AnyCapEval's evaluator, judges,
cache and reports, VidCapBench, and the audio caption metrics.

Importing this package is light (the benchmark registry is read by `anycap --help`): each name
below loads its module, and with it numpy or the judges' clients, on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "evaluate": "anycapeval",
    "evaluate_async": "anycapeval",
    "JudgeCache": "cache",
    "PROMPT_VERSION": "judges",
    "Judge": "judges",
    "OpenAIJudge": "judges",
    "OfflineJudge": "offline",  # torch and transformers
    "PROTOCOLS": "protocols",
    "make_protocol": "protocols",
    "EvalItem": "references",
    "load_captions": "references",
    "load_references": "references",
    "comparability_warnings": "report",
    "compare": "report",
    "write_report": "report",
}
__all__ = [
    "PROMPT_VERSION",
    "PROTOCOLS",
    "EvalItem",
    "Judge",
    "JudgeCache",
    "OfflineJudge",
    "OpenAIJudge",
    "comparability_warnings",
    "compare",
    "evaluate",
    "evaluate_async",
    "load_captions",
    "load_references",
    "make_protocol",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(name)
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
