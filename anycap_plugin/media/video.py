"""Which video frames to decode, and how: by seeking, so sampling 8 frames costs the same for a
1-minute and a 1-hour video; sequentially, for streams that cannot seek.

Seeking goes to the keyframe at or before each target and decodes forward to the frame nearest
the target. Targets come from the container's metadata (start, duration, frame rate), and the
timestamps reported are the decoded frames' own presentation times, so they are exact. When the
container's index says no keyframe lies between the last decoded frame and the next target,
decoding simply goes on instead of seeking back. `VideoFrames` is what sampling gives.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # numpy and PIL load on first use, not when a plugin registers
    from PIL import Image

Spread = Literal["segments", "ends"]


class _CannotSeek(Exception):
    """This stream cannot be sampled by seeking; the reason goes into the caption's meta."""


@dataclass(frozen=True)
class Timeline:
    """A video stream's frame times in seconds, as the container describes them."""

    start: float
    duration: float
    frame_duration: float
    count: int


def sample_times(
    start: float, duration: float, num_frames: int, fps: float | None, max_frames: int | None
) -> list[float]:
    """Target times: the midpoints of `num_frames` equal segments, or every 1/`fps` s."""
    if fps is not None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        step = 1.0 / fps
        n = max(1, int(round(duration * fps, 6)))  # 19.999999 s at 3 fps is 60 frames, not 59
        times = [start + step * (i + 0.5) for i in range(n)]
    else:
        seg = duration / num_frames
        times = [start + seg * (i + 0.5) for i in range(num_frames)]
    if max_frames is not None and len(times) > max_frames:
        import numpy as np

        idx = np.linspace(0, len(times) - 1, max_frames).round().astype(int)
        times = [times[i] for i in idx]
    return times


def end_indices(count: int, num_frames: int) -> list[int]:
    """Frame indices `linspace(0, count - 1, num_frames)`: first and last frame included."""
    import numpy as np

    return sorted(set(np.linspace(0, count - 1, num_frames, dtype=int).tolist()))


def timeline_of(container: Any, stream: Any) -> Timeline:
    """The stream's timeline from its metadata alone (no packet is read)."""
    rate = stream.average_rate or stream.guessed_rate
    if stream.time_base is None or not rate:
        raise _CannotSeek("the container gives no frame rate")
    tb = float(stream.time_base)
    if stream.duration is not None and stream.duration > 0:
        duration = stream.duration * tb
    elif container.duration:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    else:
        raise _CannotSeek("the container gives no duration")
    frame_duration = 1.0 / float(rate)
    count = stream.frames or max(1, round(duration / frame_duration))
    return Timeline(_first_frame_time(container, stream), duration, frame_duration, count)


def _first_frame_time(container: Any, stream: Any) -> float:
    """The first presentation time. MP4/MOV state it exactly (edit lists applied); elsewhere the
    metadata's start can be a frame off (Matroska with B-frames), so the first frame is decoded."""
    if stream.start_time is not None and "mp4" in container.format.name.split(","):
        return stream.start_time * float(stream.time_base)
    for frame in container.decode(stream):
        if frame.pts is not None:
            return frame.pts * float(stream.time_base)
    raise _CannotSeek("no frame with a timestamp at the start")


def decode_nearest(
    container: Any, stream: Any, targets: list[float], start: float
) -> dict[int, Any]:
    """For each target time (seconds), the decoded frame nearest it, keyed by its pts.

    A seek must land at or before its target (`start` is the stream's first frame time); some
    demuxers (MPEG-TS) land past it or nowhere, and then the stream counts as unseekable."""
    tb = float(stream.time_base)
    picked: dict[int, Any] = {}
    frames = None  # the decoder generator, positioned after `last`
    last = None
    for t in sorted(targets):
        target = round(t / tb)
        if (
            frames is None
            or last is None
            or target <= last.pts
            or not _same_gop(stream, last.pts, target)
        ):
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
            except Exception as e:  # PyAV raises its own error types for unseekable input
                raise _CannotSeek(f"seeking failed ({e})") from None
            frames, last, seeked = container.decode(stream), None, True
        else:
            seeked = False
        before, chosen = last, None
        for frame in frames:
            if frame.pts is None:
                continue
            last = frame
            if before is None and seeked and frame.pts * tb > t + 1e-6 and t > start + 1e-6:
                raise _CannotSeek(f"seeking to {t:.3f} s landed at {frame.pts * tb:.3f} s")
            if (
                frame.pts * tb >= t
            ):  # the first frame at or after t, or the one before it if nearer (ties: earlier)
                later_nearer = before is None or frame.pts * tb - t < t - before.pts * tb
                chosen = frame if later_nearer else before
                break
            before = frame
        else:  # past the last frame: the last one decoded is the nearest
            chosen, frames = before, None
        if chosen is None:
            raise _CannotSeek(f"no frame decoded after seeking to {t:.3f} s")
        if chosen.pts not in picked:
            picked[chosen.pts] = chosen.to_image()
    return picked


def _keyframe_at_or_before(stream: Any, pts: int) -> int | None:
    """The index position of the keyframe at or before `pts` (FFmpeg's own index search), or None
    where the container keeps no index."""
    entries = getattr(stream, "index_entries", None)
    try:
        found = (
            entries.search_timestamp(pts, backward=True, any_frame=False)
            if entries is not None
            else -1
        )
    except Exception:
        return None
    return found if found >= 0 else None


def _same_gop(stream: Any, decoded_pts: int, target: int) -> bool:
    """No keyframe lies in (decoded_pts, target]: decoding on is cheaper than seeking back."""
    here = _keyframe_at_or_before(stream, decoded_pts)
    return here is not None and here == _keyframe_at_or_before(stream, target)


@dataclass(frozen=True)
class VideoFrames:
    """Frames sampled from a video, in order, with their presentation times in seconds."""

    images: list[Image.Image]
    timestamps: list[float]
    duration: float

    def __len__(self) -> int:
        return len(self.images)


def _subsample(frames: VideoFrames, num_frames: int, max_frames: int | None) -> VideoFrames:
    """At most `num_frames` (and `max_frames`) of given frames, evenly spread, in order."""
    n = min(len(frames), num_frames, max_frames or len(frames))
    keep = sorted({int((i + 0.5) * len(frames) / n) for i in range(n)})
    return VideoFrames(
        [frames.images[i] for i in keep], [frames.timestamps[i] for i in keep], frames.duration
    )


def _frames_by_seeking(
    container: Any,
    stream: Any,
    num_frames: int,
    fps: float | None,
    max_frames: int | None,
    spread: Spread,
) -> VideoFrames:
    timeline = timeline_of(container, stream)
    if spread == "ends":
        targets = [
            timeline.start + i * timeline.frame_duration
            for i in end_indices(timeline.count, num_frames)
        ]
    else:
        targets = sample_times(timeline.start, timeline.duration, num_frames, fps, max_frames)
    picked = decode_nearest(container, stream, targets, timeline.start)
    tb = float(stream.time_base)
    keys = sorted(picked)
    return VideoFrames([picked[k] for k in keys], [k * tb for k in keys], timeline.duration)


def _nearest(sorted_times: list[float], t: float) -> int:
    i = bisect.bisect_left(sorted_times, t)
    if i == 0:
        return 0
    if i == len(sorted_times):
        return i - 1
    return i if sorted_times[i] - t < t - sorted_times[i - 1] else i - 1
