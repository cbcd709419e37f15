"""AnyCap in lmms-eval (the `[lmms-eval]` extra), imported only when used.

- The `anycap` model: lmms-eval finds it through the `lmms_eval.models` entry point (`manifest`), so
  `lmms-eval --model anycap --model_args model=qwen2.5-vl:PATH,post=acm:PATH --tasks ...` runs any
  captioner spec or chain on any generation task (`model.AnyCapLMMS`).
- Our benchmarks as lmms-eval tasks: `anycap lmms-eval-tasks` writes a task folder for your data
  (AnyCapEval, AudioCaps, Clotho) to pass as `--include_path`; its tasks score with our evaluators
  (`tasks`), so the figures equal `anycap eval` on the same captions.

See docs/lmms_eval.md.
"""

from __future__ import annotations

from typing import Any

MODEL_CLASS = "anycap_plugin.integrations.lmms_eval.model.AnyCapLMMS"


def manifest() -> Any:
    """The entry point's payload: the `anycap` chat model (lmms-eval calls this while it builds its registry)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id="anycap", chat_class_path=MODEL_CLASS)
