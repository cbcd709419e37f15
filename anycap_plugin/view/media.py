"""The media a record names, found safely, and the pictures the page shows of it.

Only a path a record names is served, and only when it resolves (symbolic links followed) inside
the run's folder or a `--media-root`: `../../etc/passwd` in a record is refused, not served.
Pictures: an image's thumbnail, a video's strip of sampled frames, an audio clip's spectrogram.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import MediaRefused

THUMB = 320


def resolve(ref: str | None, roots: list[Path]) -> Path:
    """The file `ref` names, inside one of `roots` (the first that has it); else `MediaRefused` / `FileNotFoundError`."""
    if not ref or not isinstance(ref, str) or "\x00" in ref:
        raise FileNotFoundError("The record names no media file.")
    candidates = [Path(ref)] if Path(ref).is_absolute() else [root / ref for root in roots]
    inside = False
    for candidate in candidates:
        real = candidate.resolve()
        if not any(real.is_relative_to(root.resolve()) for root in roots):
            continue
        inside = True
        if real.is_file():
            return real
    if not inside:
        raise MediaRefused(
            f"{ref!r} is outside the run's folder and the media roots.",
            hint="Pass --media-root for media kept elsewhere.",
        )
    raise FileNotFoundError(f"No such file: {ref!r}.")


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def picture(path: Path, modality: str | None) -> bytes:
    """JPEG: a thumbnail (image), a strip of 6 frames (video), a spectrogram (audio)."""
    from ..media import Media

    media = Media.load(path)
    if media.modality == "image":
        image = media.image().copy()
        image.thumbnail((THUMB, THUMB))
        return _jpeg(image)
    if media.modality == "video" and modality != "audio":
        frames = media.frames(num_frames=6).images
        height = 90
        scaled = [f.resize((max(1, round(f.width * height / f.height)), height)) for f in frames]
        strip = Image.new("RGB", (sum(f.width for f in scaled), height))
        x = 0
        for f in scaled:
            strip.paste(f, (x, 0))
            x += f.width
        return _jpeg(strip)
    return _jpeg(spectrogram(media.audio().samples))


def spectrogram(samples: np.ndarray, width: int = 480, height: int = 120) -> Image.Image:
    """Log-magnitude short-time spectrum, time left to right, low frequencies at the bottom."""
    n_fft, hop = 512, 256
    if len(samples) < n_fft:
        samples = np.pad(samples, (0, n_fft - len(samples)))
    frames = np.lib.stride_tricks.sliding_window_view(samples, n_fft)[::hop] * np.hanning(n_fft)
    power = np.log1p(np.abs(np.fft.rfft(frames, axis=1)) ** 2).T[::-1]
    power = (power - power.min()) / max(float(power.max() - power.min()), 1e-9)
    rgb = np.stack(
        [power**0.7, power**1.5, 0.25 + 0.5 * power * (1 - power)], axis=-1
    )  # dark to warm
    return Image.fromarray((rgb * 255).astype(np.uint8)).resize((width, height))
