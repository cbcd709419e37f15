"""Media as OpenAI chat-completions content parts: what the remote ACM and the judges send.

An image is one `image_url` JPEG data URL, a video its sampled frames in order, audio one
`input_audio` wav part. (The `openai` adapter keeps an image's own bytes where the API takes
its format; these callers re-encode, so every frame and image reaches the server alike.)
"""

from __future__ import annotations

import base64
import io
from typing import Any

from .media import Media


def media_parts(media: Media, num_frames: int, quality: int = 90,
                audio_part: str = "input_audio") -> list[dict[str, Any]]:
    """`audio_part="audio_url"` sends audio as a wav data URL, the part LMDeploy's server reads."""
    if media.modality == "audio":
        wav = base64.b64encode(media.audio().to_wav()).decode()
        if audio_part == "audio_url":
            return [{"type": "audio_url", "audio_url": {"url": "data:audio/wav;base64," + wav}}]
        return [{"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}}]
    images = [media.image()] if media.modality == "image" else media.frames(num_frames=num_frames).images
    parts = []
    for image in images:
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=quality)
        parts.append({"type": "image_url",
                      "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()}})
    return parts
