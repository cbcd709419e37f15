"""AnyCapEval: content (key-point density) and style (0-4 rubric), with judges, cache, reports."""

from .anycapeval import evaluate, evaluate_async
from .cache import JudgeCache
from .judges import PROMPT_VERSION, Judge, OpenAIJudge
from .protocols import PROTOCOLS, make_protocol
from .references import EvalItem, load_captions, load_references
from .report import comparability_warnings, compare, write_report

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


def __getattr__(name: str):  # the offline judge loads torch and transformers: only on demand
    if name == "OfflineJudge":
        from .offline import OfflineJudge

        return OfflineJudge
    raise AttributeError(name)
