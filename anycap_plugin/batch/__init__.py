"""Batch captioning: inputs in (`inputs/`), one record per input out (`records`), keyed by where each
input came from (`keys`), in a journal a run can always resume (`journal`, `loop`), on the local
engine (`local`) or Ray Data (`ray_engine`), and written as Parquet or sidecars (`outputs`).

    from anycap_plugin.batch import run, expand_inputs
    summary = run(captioner, expand_inputs(["shards/*.tar"], "Describe it."), "caps.jsonl", batch_size=8)
"""

from .inputs import InputPlan, ManifestError, NoInputsError, Source, WorkItem, expand_inputs, plan_inputs
from .local import run
from .loop import BatchRun, RunSummary

__all__ = ["BatchRun", "InputPlan", "ManifestError", "NoInputsError", "RunSummary", "Source", "WorkItem",
           "expand_inputs", "plan_inputs", "run"]
