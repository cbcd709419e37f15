"""Media as OpenAI chat-completions content parts: the one place every sender builds them
(the `openai` adapter, the remote ACM, the AnyCapEval judges).

An image is one `image_url` data URL (re-encoded JPEG, or with `own_bytes` the file's own bytes
where the API takes its format), a video its sampled frames in order, audio one `input_audio`
wav part (or an `audio_url`, the part LMDeploy's server reads). An image is always decoded first:
a truncated file is a `CorruptMediaError`, never uploaded.

With `frame_labels`, a video is sent as InternVL-family models read one: each frame after a text
part `Frame{i}: ` and as one 448-px tile (`max_dynamic_patch: 1`, which LMDeploy reads), so an
InternVL-chat checkpoint served as itself sees `Frame1: <image>\nFrame2: <image>\n...`, the
prompt it was trained and evaluated with. Servers that read our protocol drop the labels.
"""

from __future__ import annotations

import base64
import io
import re
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # PIL and numpy load on first use, not when a plugin registers
    from PIL import Image

    from .core import Media

UPLOADABLE = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
_FRAME_LABEL = re.compile(r"^\s*Frame\d+:\s*$")


def frame_label(i: int) -> str:
    """The text before the i-th frame (from 0) of a video in InternVL's format."""
    return f"Frame{i + 1}: "


def is_frame_label(text: str) -> bool:
    return bool(_FRAME_LABEL.match(text))


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def image_url_part(url: str, detail: str | None = None) -> dict[str, Any]:
    return {
        "type": "image_url",
        "image_url": {"url": url, **({"detail": detail} if detail else {})},
    }


def encoded(image: Image.Image, fmt: str = "JPEG", quality: int = 90) -> str:
    """A PIL image as a data URL (JPEG at `quality`, or PNG)."""
    buf = io.BytesIO()
    image.save(buf, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return data_url(UPLOADABLE[fmt], buf.getvalue())


def image_data_url(media: Media, own_bytes: bool = False, quality: int = 90) -> str:
    """The image decoded first; then its own bytes (`own_bytes`, in a format the API takes) or a JPEG."""
    image = media.image()
    if own_bytes and (media.path is not None or media.data is not None):
        from PIL import Image

        data = media.read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
        if fmt in UPLOADABLE:
            return data_url(UPLOADABLE[fmt], data)
        return encoded(image, "PNG")
    return encoded(image, "JPEG", quality)


def audio_part(
    media: Media, kind: Literal["input_audio", "audio_url"] = "input_audio", keep_wav: bool = False
) -> dict[str, Any]:
    """The audio as wav: decoded and re-encoded, or with `keep_wav` a wav file's own bytes (after decoding it)."""
    clip = media.audio()
    data = media.read_bytes() if keep_wav and media.modality == "audio" else b""
    wav = data if data[:4] == b"RIFF" and data[8:12] == b"WAVE" else clip.to_wav()
    if kind == "audio_url":
        return {"type": "audio_url", "audio_url": {"url": data_url("audio/wav", wav)}}
    return {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(wav).decode(), "format": "wav"},
    }


def media_parts(
    media: Media,
    num_frames: int,
    quality: int = 90,
    audio_part_kind: Literal["input_audio", "audio_url"] = "input_audio",
    *,
    own_bytes: bool = False,
    detail: str | None = None,
    spread: Literal["segments", "ends"] = "segments",
    frame_labels: bool = False,
) -> list[dict[str, Any]]:
    """The content parts for one media item (see the module docstring)."""
    if media.modality == "audio":
        return [audio_part(media, audio_part_kind, keep_wav=own_bytes)]
    if media.modality == "image":
        return [image_url_part(image_data_url(media, own_bytes, quality), detail)]
    frames = media.frames(num_frames=num_frames, spread=spread).images
    if not frame_labels:
        return [image_url_part(encoded(f, "JPEG", quality), detail) for f in frames]
    parts: list[dict[str, Any]] = []
    for i, frame in enumerate(frames):
        image = image_url_part(encoded(frame, "JPEG", quality), detail)
        image["image_url"]["max_dynamic_patch"] = 1
        parts += [{"type": "text", "text": frame_label(i)}, image]
    return parts


def user_message(text: str, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One user turn: the text, then the media parts (plain text content when there are none)."""
    return (
        [{"role": "user", "content": [{"type": "text", "text": text}, *parts]}]
        if parts
        else [{"role": "user", "content": text}]
    )
