"""AnyCap plugin: InternVL (`internvl:FOLDER_OR_HUB_ID`).

Two layouts load:
- InternVL-chat checkpoints (InternVL 2.5, 3 and 3.5, `OpenGVLab/MetaCaptioner-8B`; InternLM2, Qwen2, Llama,
  Phi-3, Qwen3, Qwen3-MoE and GPT-OSS language models): converted
  once by `anycap_plugin.acm.convert` and run through the same classes as ACM, with InternVL's own
  prompt (template and system message), tiling (448-px tiles, at most `max_dynamic_patch`, plus a
  thumbnail) and video input (one tile per frame, `Frame{i}: <image>` lines).
- transformers-native `-hf` folders, through `InternVLForConditionalGeneration` and its processor.
"""

from __future__ import annotations

import sys
from typing import Any

from anycap_plugin import hookimpl


def _internvl(model: str | None = None, **kwargs: Any) -> Any:
    from .captioner import internvl

    return internvl(model, **kwargs)


def _options() -> type:
    from .captioner import InternVLOptions

    return InternVLOptions


def _preflight(model: str | None, **kwargs: Any) -> None:
    from anycap_plugin.acm_runtime import preflight_source

    preflight_source(model, **kwargs)


@hookimpl
def register_captioners(register: Any) -> None:
    register(
        "internvl",
        _internvl,
        "InternVL: InternVL-chat checkpoints (official InternVL2.5, converted once) or native -hf folders; "
        "images, video as frames; model = local folder or hub id",
        needs_model=True,
        options=_options,
        modalities=("image", "video"),
        preflight=_preflight,
    )


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """A loaded transformers-native `InternVLForConditionalGeneration`: `wrap(model, processor=processor)`."""
    if "transformers" not in sys.modules:
        return None
    from .captioner import InternVLCaptioner

    return InternVLCaptioner.claim(obj, options, "InternVLForConditionalGeneration")
