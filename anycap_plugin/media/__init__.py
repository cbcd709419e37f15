"""Media loading: one `Media` type for images, video and audio, decoded lazily.

Captioners take a `Media` and ask it for what they need (`image()`, `frames()`, `audio()`),
so a batch run never decodes what no model will read. The modality is sniffed from the
bytes, not trusted from the file name; PyAV (FFmpeg) decodes video and every audio format.

The package: `kinds` (modalities, extensions), `detect` (sniffing), `image`, `video` (frame
sampling by seeking, and `VideoFrames`), `audio` (`AudioClip`), `core` (`Media`), and
`chat_parts` (media as chat-completions content parts).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .kinds import (
    AUDIO_SAMPLE_RATE,
    DEFAULT_NUM_FRAMES,
    MEDIA_EXTENSIONS,
    MODALITIES,
    Modality,
    media_files_in,
)

if TYPE_CHECKING:
    from .audio import AudioClip
    from .chat_parts import (
        audio_part,
        encoded,
        image_data_url,
        image_url_part,
        media_parts,
        user_message,
    )
    from .core import Media, MediaLike
    from .video import VideoFrames

# Loaded on first use: numpy, PIL and PyAV stay out of a plugin's registration and of `--help`.
_LAZY = {
    "Media": "core",
    "MediaLike": "core",
    "AudioClip": "audio",
    "VideoFrames": "video",
    "audio_part": "chat_parts",
    "encoded": "chat_parts",
    "image_data_url": "chat_parts",
    "image_url_part": "chat_parts",
    "media_parts": "chat_parts",
    "user_message": "chat_parts",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AUDIO_SAMPLE_RATE",
    "DEFAULT_NUM_FRAMES",
    "MEDIA_EXTENSIONS",
    "MODALITIES",
    "AudioClip",
    "Media",
    "MediaLike",
    "Modality",
    "VideoFrames",
    "audio_part",
    "encoded",
    "image_data_url",
    "image_url_part",
    "media_files_in",
    "media_parts",
    "user_message",
]
