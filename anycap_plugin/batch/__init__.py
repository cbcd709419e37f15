"""Batch captioning: inputs in (`inputs/`), one record per input out (`records`), keyed by where each
input came from (`keys`), in a journal a run can always resume (`journal`, `loop`), on the local
engine (`local`) or Ray Data (`ray_engine`), and written as Parquet or sidecars (`outputs`).

    from anycap_plugin.batch import run, expand_inputs
    summary = run(captioner, expand_inputs(["shards/*.tar"], "Describe it."), "caps.jsonl", batch_size=8)
"""

from .inputs import InputPlan, Source, WorkItem, expand_inputs, plan_inputs
from .journal import Layout
from .keys import SEP, item_key, record_key
from .local import run
from .loop import BatchRun, RunSummary
from .records import error_of, is_success

__all__ = [
    "SEP",
    "BatchRun",
    "InputPlan",
    "Layout",
    "RunSummary",
    "Source",
    "WorkItem",
    "error_of",
    "expand_inputs",
    "is_success",
    "item_key",
    "plan_inputs",
    "record_key",
    "run",
]
