"""AnyCap plugin: Qwen2.5-Omni (`qwen2.5-omni:FOLDER_OR_HUB_ID`), its Thinker (text out), with transformers'
native classes: images, videos and audio in one model, batched (one left-padded `generate` per batch).

- A video goes in with its sound (the processor interleaves audio and frame tokens by time, as
  Qwen2.5-Omni was trained): `use_audio_in_video=False` sends the frames only. `meta["video_inputs"]`
  says which went in ("frames and sound", "frames only", or "frames only: no audio track").
- Frames are taken at `fps` (2, Qwen2.5-Omni's rate), at most `max_frames` of them (fewer per second
  for a longer video; `meta["fps"]` gives the rate used, which times the sound against the frames).
- Audio longer than the feature extractor's window is cut there, and `meta["audio"]` says so.
- A whole Qwen2.5-Omni folder (`Qwen/Qwen2.5-Omni-7B`) gives its Thinker only: the talker (speech
  out) and its pickled speaker file are never loaded. A Thinker folder loads as it is.
"""

from __future__ import annotations

import sys
from typing import Any

from anycap_plugin import Deferred, hookimpl


def _captioner() -> type:
    from .captioner import Qwen25OmniCaptioner

    return Qwen25OmniCaptioner


@hookimpl
def register_captioners(register: Any) -> None:
    register(
        "qwen2.5-omni",
        Deferred(_captioner),
        needs_model=True,
        modalities=("image", "video", "audio"),
        description="Qwen2.5-Omni's Thinker via transformers (image, video with its sound, audio); model = folder or hub id",
    )


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """A loaded Qwen2.5-Omni (the whole model or its Thinker): `wrap(model, processor=processor)`."""
    if "transformers" not in sys.modules:
        return None
    whole = getattr(sys.modules["transformers"], "Qwen2_5OmniForConditionalGeneration", None)
    if whole is not None and isinstance(obj, whole):
        obj = obj.thinker
    return _captioner().claim(obj, options, "Qwen2_5OmniThinkerForConditionalGeneration")
