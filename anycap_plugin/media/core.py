"""The `Media` type: one `Media` type for images, video and audio, decoded lazily.

Captioners take a `Media` and ask it for what they need (`image()`, `frames()`, `audio()`),
so a batch run never decodes what no model will read. The modality is sniffed from the
bytes, not trusted from the file name; PyAV (FFmpeg) decodes video and every audio format.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, cast

from ..errors import (
    CorruptMediaError,
    EmptyMediaError,
    MediaError,
    MediaNotFoundError,
    MediaTooLargeError,
    UnsupportedMediaError,
)
from .audio import AudioClip
from .detect import _detect_modality
from .image import _strict_decoding, _to_rgb
from .kinds import AUDIO_SAMPLE_RATE, DEFAULT_NUM_FRAMES, Modality
from .video import (
    Spread,
    VideoFrames,
    _CannotSeek,
    _frames_by_seeking,
    _nearest,
    _subsample,
    end_indices,
    sample_times,
)

if TYPE_CHECKING:  # numpy and PIL load on first use, not when a plugin registers
    import numpy as np
    from PIL import Image

MediaLike = Union["Media", str, os.PathLike, bytes, "Image.Image", "np.ndarray"]


def _instance_of(obj: Any, module: str, name: str) -> bool:
    """isinstance against a class of a module that may not be imported: if it is not, nothing is
    an instance of it, and it stays unimported."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(obj, getattr(loaded, name))


@dataclass
class Media:
    """A media item: where it came from (`ref`), what it is (`modality`), and lazy decoders."""

    modality: Modality
    ref: str
    path: Path | None = None
    data: bytes | None = None
    _image: Image.Image | None = field(default=None, repr=False)
    _frames: VideoFrames | None = field(default=None, repr=False)
    # what a decoder had to do differently (e.g. "frame_sampling": "sequential: ..."); copied into Caption.meta
    notes: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    # ---- constructors -------------------------------------------------------------
    @classmethod
    def load(cls, obj: MediaLike, modality: Modality | None = None) -> Media:
        """Build a `Media` from a path, bytes, a PIL image, a numpy array or a `Media`."""
        if isinstance(obj, Media):
            return obj if modality in (None, obj.modality) else obj.as_modality(modality)
        if isinstance(obj, (str, os.PathLike)):
            return cls.from_path(obj, modality)
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return cls.from_bytes(bytes(obj), modality=modality)
        if _instance_of(obj, "PIL.Image", "Image"):
            return cls.from_image(cast("Image.Image", obj))
        if _instance_of(obj, "numpy", "ndarray"):
            return cls.from_array(cast("np.ndarray", obj))
        raise UnsupportedMediaError(
            f"Cannot load media from a {type(obj).__name__}.",
            hint="Pass a file path, bytes, a PIL.Image or a numpy array.",
        )

    @classmethod
    def from_path(cls, path: str | os.PathLike, modality: Modality | None = None) -> Media:
        p = Path(path).expanduser()
        if not p.exists():
            raise MediaNotFoundError(f"No such file: {str(p)!r}.", hint="Check the path.")
        if not p.is_file():
            raise UnsupportedMediaError(f"Not a regular file: {str(p)!r}.")
        if p.stat().st_size == 0:
            raise EmptyMediaError(f"Empty file: {str(p)!r}.", hint="Re-export or remove it.")
        with open(p, "rb") as f:
            head = f.read(64)
        detected = _detect_modality(head, lambda: str(p), str(p))
        media = cls(modality=detected, ref=str(p), path=p)
        return media if modality in (None, detected) else media.as_modality(modality)

    @classmethod
    def from_bytes(
        cls, data: bytes, name: str | None = None, modality: Modality | None = None
    ) -> Media:
        if not data:
            raise EmptyMediaError("Empty media bytes.")
        ref = name or "bytes:" + hashlib.sha1(data).hexdigest()[:16]
        detected = _detect_modality(data[:64], lambda: io.BytesIO(data), ref)
        media = cls(modality=detected, ref=ref, data=data)
        return media if modality in (None, detected) else media.as_modality(modality)

    @classmethod
    def from_image(cls, image: Image.Image, ref: str | None = None) -> Media:
        return cls(
            modality="image", ref=ref or f"pil:{image.width}x{image.height}", _image=_to_rgb(image)
        )

    @classmethod
    def from_frames(
        cls, images: list[Image.Image], ref: str | None = None, fps: float = 1.0
    ) -> Media:
        """A video given as already-sampled frames, in order (what chat APIs send), `fps` apart."""
        if not images:
            raise EmptyMediaError("A video needs at least one frame.")
        frames = VideoFrames(
            [_to_rgb(im) for im in images], [i / fps for i in range(len(images))], len(images) / fps
        )
        return cls(modality="video", ref=ref or f"frames:{len(images)}", _frames=frames)

    @classmethod
    def from_array(cls, array: np.ndarray, ref: str | None = None) -> Media:
        """An image from an HxW, HxWx3 or HxWx4 array, uint8 or float in [0, 1]."""
        import numpy as np
        from PIL import Image

        a = np.asarray(array)
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)) or a.size == 0:
            raise UnsupportedMediaError(
                f"An image array must be HxW, HxWx3 or HxWx4; got shape {a.shape}.",
                hint="For video, save it to a file first.",
            )
        if a.dtype != np.uint8:
            if not np.issubdtype(a.dtype, np.floating):
                raise UnsupportedMediaError(f"Image arrays must be uint8 or float; got {a.dtype}.")
            a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        return cls.from_image(Image.fromarray(a), ref=ref or f"array:{a.shape[1]}x{a.shape[0]}")

    def as_modality(self, modality: Modality) -> Media:
        """Read this item as another modality: only a video's audio track qualifies."""
        if modality == self.modality:
            return self
        if self.modality == "video" and modality == "audio":
            with self._open_av() as c:
                if not c.streams.audio:
                    raise UnsupportedMediaError(f"{self.ref!r} is a video without an audio track.")
            return Media(modality="audio", ref=self.ref, path=self.path, data=self.data)
        raise UnsupportedMediaError(
            f"{self.ref!r} is {self.modality}, not {modality}.",
            hint="Leave the modality out to detect it from the content.",
        )

    def video_inputs(self, wanted: bool = True, deaf: str | None = None) -> str:
        """What of this video goes into a model that hears a video's sound beside its frames, as
        `meta["video_inputs"]` says it (the HF engine's omni models and ACM both): "frames and
        sound"; "frames only" (sound not `wanted`); "frames only: DEAF" (the model has no ears, `deaf`
        says why); "frames only: no audio track" (none, or frames with no container behind them)."""
        if deaf:
            return f"frames only: {deaf}"
        if not wanted:
            return "frames only"
        try:
            self.as_modality("audio")
        except MediaError:
            return "frames only: no audio track"
        return "frames and sound"

    @property
    def decoded(self) -> bool:
        """Whether the pixels are in memory (an image decoded, or given decoded): what a batch runner
        checks to know the captioner decoded, so the next batch's images may be decoded ahead."""
        return self._image is not None or self._frames is not None

    # ---- decoders -----------------------------------------------------------------
    def read_bytes(self) -> bytes:
        """The encoded bytes, as stored (for API adapters that upload files)."""
        if self.data is not None:
            return self.data
        if self.path is not None:
            return self.path.read_bytes()
        buf = io.BytesIO()
        self.image().save(buf, format="PNG")
        return buf.getvalue()

    def image(self) -> Image.Image:
        """The image as RGB (alpha composited on white); a truncated file is a `CorruptMediaError`."""
        if self.modality != "image":
            raise UnsupportedMediaError(f"{self.ref!r} is {self.modality}, not an image.")
        if self._image is None:
            from PIL import Image

            src = self.path if self.path is not None else io.BytesIO(self.data or b"")
            try:
                with Image.open(src) as im, _strict_decoding():
                    im.load()
                    self._image = _to_rgb(im)
            except Image.DecompressionBombError as e:
                raise MediaTooLargeError(
                    f"{self.ref!r} is too large to decode safely ({e}).",
                    hint="Downscale it, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file.",
                ) from None
            except (OSError, SyntaxError, ValueError) as e:
                raise CorruptMediaError(f"Cannot decode image {self.ref!r}: {e}.") from None
        return self._image

    def frames(
        self,
        num_frames: int = DEFAULT_NUM_FRAMES,
        fps: float | None = None,
        max_frames: int | None = None,
        spread: Spread = "segments",
    ) -> VideoFrames:
        """Sample frames: `num_frames` at the midpoints of equal segments, or every 1/`fps` s.

        `spread="ends"` picks frame indices `linspace(0, n - 1, num_frames)` (first and last
        frame included, as decord-based reference scripts sample). An image gives itself as a
        one-frame video, so frame-based captioners take both.
        """
        if self.modality == "image":
            return VideoFrames([self.image()], [0.0], 0.0)
        if self.modality != "video":
            raise UnsupportedMediaError(f"{self.ref!r} is {self.modality}, not a video.")
        if fps is None and num_frames < 1:
            raise ValueError("num_frames must be at least 1")
        if self._frames is not None:
            if spread == "ends":
                keep = end_indices(len(self._frames), num_frames)
                f = self._frames
                return VideoFrames(
                    [f.images[i] for i in keep], [f.timestamps[i] for i in keep], f.duration
                )
            return _subsample(
                self._frames, num_frames if fps is None else len(self._frames), max_frames
            )
        try:
            with self._open_av() as c:
                stream = c.streams.video[0]
                stream.thread_type = "AUTO"
                try:
                    return _frames_by_seeking(c, stream, num_frames, fps, max_frames, spread)
                except _CannotSeek as e:
                    self.notes["frame_sampling"] = f"sequential: {e}"
            return self._frames_sequentially(num_frames, fps, max_frames, spread)
        except MediaError:
            raise
        except Exception as e:  # PyAV raises several error types for bad streams
            raise CorruptMediaError(f"Cannot decode video {self.ref!r}: {e}.") from None

    def _frames_sequentially(
        self, num_frames: int, fps: float | None, max_frames: int | None, spread: Spread
    ) -> VideoFrames:
        """Demux every packet for the exact frame times, then decode up to the last frame wanted:
        the cost grows with the video's length (the fallback for streams that cannot seek)."""
        with self._open_av() as c:
            stream = c.streams.video[0]
            packets = [p.pts for p in c.demux(stream) if p.size]
            rate = stream.average_rate or stream.guessed_rate
        if not packets:
            raise EmptyMediaError(f"Video {self.ref!r} has no frames.")
        stamped = None not in packets
        if stamped:
            pts, tb = sorted(packets), float(stream.time_base)
        else:  # a raw stream without timestamps: frames in decoding order, 1/rate apart
            if not rate:
                raise CorruptMediaError(
                    f"Video {self.ref!r} has neither timestamps nor a frame rate."
                )
            pts, tb = list(range(len(packets))), 1.0 / float(rate)
        times = [t * tb for t in pts]
        frame_dur = (times[-1] - times[0]) / max(len(times) - 1, 1) if len(times) > 1 else 0.0
        duration = times[-1] - times[0] + frame_dur
        if spread == "ends":
            wanted = {pts[i] for i in end_indices(len(pts), num_frames)}
        else:
            targets = sample_times(times[0], duration, num_frames, fps, max_frames)
            wanted = {pts[_nearest(times, t)] for t in targets}
        picked: dict[int, Image.Image] = {}
        with self._open_av() as c:
            vs = c.streams.video[0]
            vs.thread_type = "AUTO"
            for index, frame in enumerate(c.decode(vs)):
                key = frame.pts if stamped else index
                if key in wanted and key not in picked:
                    picked[key] = frame.to_image()
                    if len(picked) == len(wanted):
                        break
        if not picked:
            raise CorruptMediaError(f"Video {self.ref!r} decoded no frames.")
        keys = sorted(picked)
        return VideoFrames([picked[k] for k in keys], [k * tb for k in keys], duration)

    def audio(self, sample_rate: int = AUDIO_SAMPLE_RATE) -> AudioClip:
        """Decode the audio (or a video's audio track), resampled to mono float32."""
        if self.modality not in ("audio", "video"):
            raise UnsupportedMediaError(f"{self.ref!r} is {self.modality} and has no audio.")
        try:
            import av
            import numpy as np

            chunks: list[np.ndarray] = []
            with self._open_av() as c:
                if not c.streams.audio:
                    raise UnsupportedMediaError(f"{self.ref!r} has no audio track.")
                resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
                for frame in c.decode(c.streams.audio[0]):
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray().reshape(-1))
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().reshape(-1))
        except MediaError:
            raise
        except Exception as e:
            raise CorruptMediaError(f"Cannot decode audio {self.ref!r}: {e}.") from None
        samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
        if samples.size == 0:
            raise EmptyMediaError(f"Audio {self.ref!r} has no samples.")
        return AudioClip(samples, sample_rate)

    def _open_av(self) -> Any:
        import av

        src = str(self.path) if self.path is not None else io.BytesIO(self.data or b"")
        try:
            return av.open(src)
        except Exception as e:
            raise CorruptMediaError(f"Cannot open {self.ref!r}: {e}.") from None
