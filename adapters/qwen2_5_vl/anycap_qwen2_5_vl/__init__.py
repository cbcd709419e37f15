"""AnyCap plugin: Qwen2.5-VL (`qwen2.5-vl:FOLDER_OR_HUB_ID`) with transformers' native class.

Images use the processor's own dynamic resolution; video goes through the model's video path
(sampled frames as one video input), not as separate images.
"""

from __future__ import annotations

import sys
from typing import Any

from anycap_plugin import Deferred, hookimpl


def _captioner() -> type:
    from .captioner import Qwen25VLCaptioner

    return Qwen25VLCaptioner


@hookimpl
def register_captioners(register: Any) -> None:
    register(
        "qwen2.5-vl",
        Deferred(_captioner),
        needs_model=True,
        modalities=("image", "video"),
        description="Qwen2.5-VL via transformers (images, video); model = local folder or hub id",
    )


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """A loaded `Qwen2_5_VLForConditionalGeneration`: `wrap(model, processor=processor)`."""
    if "transformers" not in sys.modules:
        return None
    return _captioner().claim(obj, options, "Qwen2_5_VLForConditionalGeneration")
