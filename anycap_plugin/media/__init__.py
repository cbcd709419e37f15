"""Media loading: one `Media` type for images, video and audio, decoded lazily.

Captioners take a `Media` and ask it for what they need (`image()`, `frames()`, `audio()`),
so a batch run never decodes what no model will read. The modality is sniffed from the
bytes, not trusted from the file name; PyAV (FFmpeg) decodes video and every audio format.

The package: `kinds` (modalities, extensions), `detect` (sniffing), `image`, `video` (frame
sampling by seeking, and `VideoFrames`), `audio` (`AudioClip`), `core` (`Media`), and
`chat_parts` (media as chat-completions content parts).
"""

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
from .kinds import (
    AUDIO_SAMPLE_RATE,
    DEFAULT_NUM_FRAMES,
    MEDIA_EXTENSIONS,
    MODALITIES,
    Modality,
    media_files_in,
)
from .video import VideoFrames

__all__ = [
    "Media",
    "MediaLike",
    "AudioClip",
    "VideoFrames",
    "Modality",
    "MODALITIES",
    "MEDIA_EXTENSIONS",
    "AUDIO_SAMPLE_RATE",
    "DEFAULT_NUM_FRAMES",
    "media_files_in",
    "audio_part",
    "encoded",
    "image_data_url",
    "image_url_part",
    "media_parts",
    "user_message",
]
