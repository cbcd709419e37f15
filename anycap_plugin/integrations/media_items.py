"""The one media item in an evaluation harness's message, as a `Media`.

VLMEvalKit and lmms-eval both hand a model typed items (`image`, `video`, `audio`) beside the text.
A captioner takes one media item: one item is that item; several images are a video given as its
frames (what harnesses send models that are not video models); anything else is this sample's
`MediaError`, said in words.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ..errors import MediaError
from ..media import AudioClip, Media

MEDIA_TYPES = ("image", "video", "audio")


def media_of(items: list[tuple[str, Any]]) -> Media:
    """`items` are (type, value) pairs; a value is a path, a PIL image, bytes, an image array, or an
    audio dict `{"array", "sampling_rate"}` (Hugging Face's Audio feature)."""
    if not items:
        raise MediaError(
            "The message has no image, video or audio.",
            hint="AnyCap captions media: use a task whose samples carry an image, video or audio.",
        )
    kinds = sorted({kind for kind, _ in items})
    if len(items) == 1:
        kind, value = items[0]
        return load_item(kind, value)
    if kinds == ["image"]:
        frames = [_image(value) for _, value in items]
        first = items[0][1]
        return Media.from_frames(
            frames, ref=f"frames:{first if isinstance(first, str) else len(frames)}"
        )
    raise MediaError(
        f"The message has {len(items)} media items ({', '.join(kinds)}); AnyCap captions one.",
        hint="Use a task with one media item per sample (several images are taken as a video's frames).",
    )


def load_item(kind: str, value: Any) -> Media:
    if kind not in MEDIA_TYPES:
        raise MediaError(f"Unsupported message item type {kind!r}.")
    if isinstance(value, dict):
        if "array" in value:
            return _audio_array(value)
        if any(k in value for k in ("video_start", "video_end", "start_time", "end_time")):
            raise MediaError(
                "The sample asks for a segment of a video; AnyCap captions whole files.",
                hint="Cut the segment into its own file, or use a task that sends whole videos.",
            )
        value = value.get("path") or value.get("url") or value.get(kind)
        if value is None:
            raise MediaError(f"A {kind} item without a path.")
    media = Media.load(value)
    if kind == "audio" and media.modality == "video":
        return media.as_modality("audio")  # a video file given as the audio: its sound track
    return media


def _image(value: Any) -> Image.Image:
    if isinstance(value, Image.Image):
        return value.convert("RGB")
    return load_item("image", value).image()


def _audio_array(value: dict[str, Any]) -> Media:
    samples = np.asarray(value["array"], dtype=np.float32)
    if samples.ndim == 2:  # (channels, samples) or (samples, channels): mix down
        samples = samples.mean(axis=0 if samples.shape[0] < samples.shape[1] else 1)
    rate = int(value.get("sampling_rate") or 0)
    if samples.ndim != 1 or not samples.size or rate <= 0:
        raise MediaError(
            f"An audio array needs samples and a sampling rate (got shape {samples.shape}, rate {rate})."
        )
    wav = AudioClip(samples, rate).to_wav()
    return Media.from_bytes(
        wav, name=value.get("path") or f"audio:{len(samples)}@{rate}", modality="audio"
    )
