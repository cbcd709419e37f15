"""AnyCap plugin: Qwen2-Audio (`qwen2-audio:FOLDER_OR_HUB_ID`) with transformers' native class.

Audio in, text out, batched (one left-padded `generate` per batch). The model hears at most its
feature extractor's window (30 s for Qwen2-Audio-7B): longer audio is cut there and the caption's
`meta["audio"]` says how much was heard. A video's sound track is captioned like an audio file when
the input is read as audio (`Media.load(video).as_modality("audio")`); video inputs are refused: the model has no eyes.
"""

from __future__ import annotations

import sys
from typing import Any

from anycap_plugin import Deferred, hookimpl


def _captioner() -> type:
    from .captioner import Qwen2AudioCaptioner

    return Qwen2AudioCaptioner


@hookimpl
def register_captioners(register: Any) -> None:
    register(
        "qwen2-audio",
        Deferred(_captioner),
        needs_model=True,
        modalities=("audio",),
        description="Qwen2-Audio via transformers (audio); model = local folder or hub id",
    )


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """A loaded `Qwen2AudioForConditionalGeneration`: `wrap(model, processor=processor)`."""
    if "transformers" not in sys.modules:
        return None
    return _captioner().claim(obj, options, "Qwen2AudioForConditionalGeneration")
