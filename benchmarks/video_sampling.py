"""Sampling 8 frames from 1-, 4- and 16-minute 720p videos (25 fps, a keyframe every 250 frames).

Side by side, per length: `Media.frames(num_frames=8)` (seeking), the sequential path it falls back
to (demux everything, decode up to the last target), and the floor: plain PyAV seeking to the
keyframe before each target and decoding forward to it, with the targets given. Goals: the
16-minute time within 1.5x of the 1-minute time, and within 1.3x of the floor. Videos are
generated once into the cache (about 2 minutes on 2 cores). Prints JSON.

A seek's cost depends on where its target falls in its GOP (16 minutes in 8 segments puts every
target on a keyframe), so each length is also timed over 5 to 12 frames (every target offset a
different one) and compared per frame and against the floor for the same targets.

    python benchmarks/video_sampling.py [--minutes 1 4 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from anycap_plugin.cache import cache_dir
from anycap_plugin.media import Media
from anycap_plugin.media.video import sample_times, timeline_of

FPS, GOP, SIZE = 25, 250, (1280, 720)


def generated(minutes: int) -> Path:
    """A 720p H.264 mp4: a bright square moving over a gradient, fixed GOP, made once."""
    path = cache_dir() / "bench" / f"video-{minutes}min-720p-gop{GOP}.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = SIZE
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 90)], -1).astype(np.uint8)
    n = minutes * 60 * FPS
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as c:
        vs = c.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.gop_size = GOP
        vs.options = {"preset": "ultrafast", "keyint_min": str(GOP), "sc_threshold": "0"}
        for i in range(n):
            img = base.copy()
            cx = int((w - 80) * (i % 500) / 499)
            img[h // 3: h // 3 + 80, cx: cx + 80] = (250, 250, 250)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for packet in vs.encode(frame):
                c.mux(packet)
        for packet in vs.encode(None):
            c.mux(packet)
    tmp.rename(path)
    return path


def floor(path: Path, num_frames: int = 8) -> None:
    """Plain PyAV, targets known: seek to the keyframe before each, decode forward to it."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        tb = float(stream.time_base)
        duration = stream.duration * tb
        for t in sample_times(0.0, duration, num_frames, None, None):
            target = int(round(t / tb))
            c.seek(target, stream=stream, backward=True, any_frame=False)
            for frame in c.decode(stream):
                if frame.pts is not None and frame.pts >= target:
                    frame.to_image()
                    break


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    rows = {}
    for minutes in args.minutes:
        t0 = time.perf_counter()
        path = generated(minutes)
        made = time.perf_counter() - t0
        media = Media.load(path)
        with av.open(str(path)) as c:
            timeline = timeline_of(c, c.streams.video[0])
        seek_s = timed(lambda: media.frames(num_frames=8), args.repeats)
        assert not media.notes, media.notes
        seq_s = timed(lambda: media._frames_sequentially(8, None, None, "segments"), 1)
        floor_s = timed(lambda: floor(path), args.repeats)
        spread = [(n, timed(lambda: media.frames(num_frames=n), args.repeats), timed(lambda: floor(path, n), args.repeats))
                  for n in range(5, 13)]
        per_frame = sum(t / n for n, t, _ in spread) / len(spread)
        rows[f"{minutes}min"] = {"frames": timeline.count, "seconds": round(timeline.duration, 1),
                                 "seek_s": round(seek_s, 4), "sequential_s": round(seq_s, 4),
                                 "floor_s": round(floor_s, 4), "seek_over_floor": round(seek_s / floor_s, 3),
                                 "sequential_over_seek": round(seq_s / seek_s, 2),
                                 "frames_5_to_12": {"seek_s_per_frame": round(per_frame, 4),
                                                    "seek_over_floor": round(sum(t for _, t, _ in spread)
                                                                             / sum(f for _, _, f in spread), 3)},
                                 "generated_s": round(made, 1)}
    lengths = list(rows)
    result = {"benchmark": "video_sampling", "frames_sampled": 8, "fps": FPS, "gop": GOP, "size": list(SIZE),
              "videos": rows,
              "longest_over_shortest_seek": round(rows[lengths[-1]]["seek_s"] / rows[lengths[0]]["seek_s"], 3),
              "longest_over_shortest_seek_per_frame_5_to_12": round(
                  rows[lengths[-1]]["frames_5_to_12"]["seek_s_per_frame"]
                  / rows[lengths[0]]["frames_5_to_12"]["seek_s_per_frame"], 3),
              "goals": {"longest_over_shortest_seek": 1.5, "seek_over_floor": 1.3}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
