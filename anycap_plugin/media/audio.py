"""Decoded audio: mono samples at a rate, and their WAV bytes."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy loads on first use, not when a plugin registers
    import numpy as np


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 samples in [-1, 1] at `sample_rate` Hz."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def to_wav(self) -> bytes:
        """16-bit PCM wav bytes (what audio-capable chat APIs take as `input_audio`)."""
        import av
        import numpy as np

        buf = io.BytesIO()
        pcm = (np.clip(self.samples, -1.0, 1.0) * 32767).astype(np.int16)[None, :]
        with av.open(buf, "w", format="wav") as c:
            stream = c.add_stream("pcm_s16le", rate=self.sample_rate, layout="mono")
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = self.sample_rate
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                c.mux(packet)
        return buf.getvalue()
