"""The offline captioners: `stats` (describes what it can measure) and `instant` (answers at once).

Real captioners with no model: smoke runs, the demo, and the runner's overhead benchmark use them.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING

from .captioner import BaseCaptioner, Caption, CaptionOptions

if TYPE_CHECKING:  # numpy and PIL load when a caption is made, not when the plugin registers
    import numpy as np
    from PIL import Image

    from .media import Media


class StatsOptions(CaptionOptions):
    num_frames: int = 8


class StatsCaptioner(BaseCaptioner[StatsOptions]):
    """Describes what it can measure: size, colour, brightness, motion, loudness, pitch.

    Deterministic and offline: a real captioner for smoke runs and tests, not a model.
    """

    id = "stats"

    def _caption(self, media: Media, instruction: str | None, options: StatsOptions) -> Caption:
        import numpy as np

        if media.modality == "image":
            img = media.image()
            return Caption(
                text=f"A {img.width}x{img.height} {_orientation(img)} image, {_tone(np.asarray(img))}."
            )
        if media.modality == "video":
            frames = media.frames(num_frames=options.num_frames)
            arrays = [np.asarray(f, dtype=np.float32) for f in frames.images]
            motion = (
                float(np.mean([np.abs(a - b).mean() for a, b in itertools.pairwise(arrays)]))
                if len(arrays) > 1
                else 0.0
            )
            level = "little" if motion < 8 else "moderate" if motion < 25 else "strong"
            w, h = frames.images[0].size
            return Caption(
                text=f"A {frames.duration:.1f}-second {w}x{h} video with {level} motion "
                f"across {len(frames)} sampled frames, {_tone(np.mean(arrays, axis=0))}."
            )
        clip = media.audio()
        rms = float(np.sqrt(np.mean(clip.samples.astype(np.float64) ** 2)))
        dbfs = 20 * math.log10(max(rms, 1e-9))
        loud = (
            "near-silent"
            if dbfs < -50
            else "quiet"
            if dbfs < -30
            else "moderately loud"
            if dbfs < -15
            else "loud"
        )
        spectrum = np.abs(np.fft.rfft(clip.samples[: clip.sample_rate * 10]))
        freqs = np.fft.rfftfreq(min(len(clip.samples), clip.sample_rate * 10), 1 / clip.sample_rate)
        peak = float(freqs[int(np.argmax(spectrum[1:])) + 1]) if len(spectrum) > 1 else 0.0
        return Caption(
            text=f"A {clip.duration:.1f}-second {loud} audio clip ({dbfs:.0f} dBFS) "
            f"whose strongest frequency is about {peak:.0f} Hz."
        )


class InstantCaptioner(BaseCaptioner):
    """Answers at once without decoding: measures the runner's own overhead."""

    id = "instant"

    def _caption(self, media: Media, instruction: str | None, options: CaptionOptions) -> Caption:
        return Caption(text=f"{media.modality} {Path(media.ref).name}")


_COLOURS = {
    "red": (200, 40, 40),
    "orange": (230, 130, 30),
    "yellow": (220, 210, 50),
    "green": (50, 160, 60),
    "blue": (40, 80, 200),
    "purple": (130, 60, 170),
    "pink": (230, 150, 180),
    "brown": (120, 80, 40),
    "grey": (128, 128, 128),
    "white": (240, 240, 240),
    "black": (15, 15, 15),
}


def _tone(rgb: np.ndarray) -> str:
    import numpy as np

    mean = rgb.reshape(-1, 3).mean(axis=0)
    name = min(_COLOURS, key=lambda k: float(np.sum((mean - np.array(_COLOURS[k])) ** 2)))
    luma = float(0.299 * mean[0] + 0.587 * mean[1] + 0.114 * mean[2])
    light = "dark" if luma < 70 else "bright" if luma > 170 else "mid-toned"
    return f"{light}, mostly {name} tones"


def _orientation(img: Image.Image) -> str:
    return (
        "square"
        if img.width == img.height
        else "landscape"
        if img.width > img.height
        else "portrait"
    )
