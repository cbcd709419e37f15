"""AnyCap plugin: today's open captioners on the one HF engine (`ChatTemplateCaptioner`), each through
transformers' native classes and its processor's own chat template, batched (one left-padded
`generate` per batch).

- `qwen3-vl:PATH_OR_ID`: Qwen3-VL, dense (`Qwen3VLForConditionalGeneration`) and MoE
  (`Qwen3VLMoeForConditionalGeneration`); images, and video as frames at the model's rate (2 per
  second, at most `max_frames`) with their times.
- `audio-flamingo-3:PATH_OR_ID`: Audio Flamingo 3; audio up to 10 minutes (longer is cut there and
  `meta["audio"]` says so); video is refused: the model has no eyes.
- `gemma3n:PATH_OR_ID`: Gemma 3n (`Gemma3nForConditionalGeneration`); images, and audio up to 30 s
  (longer is cut there and `meta["audio"]` says so); video is refused: its card lists text, image
  and audio input only.
- `qwen3-omni:PATH_OR_ID`: Qwen3-Omni's Thinker (a whole folder gives its Thinker; audio as long as its
  context holds, about 40 minutes, not Whisper's 30 s: its processor cuts none): Instruct and
  Thinking (its reasoning kept in `meta["reasoning"]`, not in the caption); the Captioner (a name
  with "Captioner", or `captioner=True`) hears audio alone and is sent no instruction, as its card
  says (`meta["instruction"]` says so: a post-processor makes it follow one). Video as frames with
  its sound interleaved by time, as `qwen2.5-omni` does (`use_audio_in_video=False`: frames only).
- `transformers:PATH_OR_ID`: any other checkpoint `AutoModelForMultimodalLM` loads with a chat
  template; it takes what its processor takes. Checkpoints that need remote code are refused.

Registering imports none of torch or transformers: the classes live in `captioner.py`.
"""

from __future__ import annotations

import sys
from typing import Any

from anycap_plugin import Deferred, hookimpl


def _qwen3_vl() -> type:
    from .captioner import Qwen3VLCaptioner

    return Qwen3VLCaptioner


def _audio_flamingo_3() -> type:
    from .captioner import AudioFlamingo3Captioner

    return AudioFlamingo3Captioner


def _gemma3n() -> type:
    from .captioner import Gemma3nCaptioner

    return Gemma3nCaptioner


def _qwen3_omni() -> type:
    from .captioner import Qwen3OmniCaptioner

    return Qwen3OmniCaptioner


def _transformers() -> type:
    from .captioner import TransformersCaptioner

    return TransformersCaptioner


@hookimpl
def register_captioners(register: Any) -> None:
    register(
        "qwen3-vl",
        Deferred(_qwen3_vl),
        needs_model=True,
        modalities=("image", "video"),
        description="Qwen3-VL (dense and MoE) via transformers (images, video); model = folder or hub id",
    )
    register(
        "audio-flamingo-3",
        Deferred(_audio_flamingo_3),
        needs_model=True,
        modalities=("audio",),
        description="Audio Flamingo 3 via transformers (audio up to 10 min); model = folder or hub id",
    )
    register(
        "gemma3n",
        Deferred(_gemma3n),
        needs_model=True,
        modalities=("image", "audio"),
        description="Gemma 3n via transformers (images, audio up to 30 s; no video); "
        "model = folder or hub id",
    )
    register(
        "qwen3-omni",
        Deferred(_qwen3_omni),
        needs_model=True,
        modalities=("image", "video", "audio"),
        description="Qwen3-Omni's Thinker via transformers (Instruct, Thinking; Captioner: audio, "
        "no instruction sent); model = folder or hub id",
    )
    register(
        "transformers",
        Deferred(_transformers),
        needs_model=True,
        modalities=("image", "video", "audio"),
        description="any transformers-native multimodal chat model (AutoModelForMultimodalLM, its "
        "chat template); takes what its processor takes; model = folder or hub id",
    )


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """A loaded Qwen3-VL (dense or MoE), Audio Flamingo 3, Gemma 3n or Qwen3-Omni:
    `wrap(model, processor=processor)`."""
    if "transformers" not in sys.modules:
        return None
    return (
        _qwen3_vl().claim(
            obj, options, "Qwen3VLForConditionalGeneration", "Qwen3VLMoeForConditionalGeneration"
        )
        or _audio_flamingo_3().claim(obj, options, "AudioFlamingo3ForConditionalGeneration")
        or _gemma3n().claim(obj, options, "Gemma3nForConditionalGeneration")
        or (
            _qwen3_omni().claim(
                obj,
                options,
                "Qwen3OmniMoeThinkerForConditionalGeneration",
                "Qwen3OmniMoeForConditionalGeneration",
            )
        )
    )
