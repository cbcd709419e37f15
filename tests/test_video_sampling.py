"""Video frames sampled by seeking: the same frames as decoding the whole stream, far fewer decoded,
and a sequential fallback (said in the caption's meta) for streams that cannot seek."""

import av
import numpy as np
import pytest

from anycap_plugin import get_captioner
from anycap_plugin.media import Media
from anycap_plugin.media.video import decode_nearest, sample_times, timeline_of
from anycap_plugin.testing.samples import generate_video, sample_video

SAMPLINGS = [
    {"num_frames": 8},
    {"num_frames": 3},
    {"num_frames": 8, "spread": "ends"},
    {"fps": 2.0},
    {"num_frames": 50},
]


@pytest.fixture(scope="module")
def gop10(tmp_path_factory):
    """20 s at 12 fps with a keyframe every 10 frames, B-frames on (libx264's default)."""
    return generate_video(
        tmp_path_factory.mktemp("v") / "gop10.mp4", seconds=20, audio=False, gop=10
    )


def _same(a, b):
    return (
        a.timestamps == b.timestamps
        and a.duration == pytest.approx(b.duration)
        and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.images, b.images))
    )


@pytest.mark.parametrize("video", ["bigbuckbunny", "bikes", "gop10"])
def test_seeking_picks_exactly_the_frames_of_the_sequential_path(video, gop10):
    path = gop10 if video == "gop10" else sample_video(video)
    for media in (Media.load(path), Media.from_bytes(path.read_bytes())):
        for kw in SAMPLINGS:
            seeked = media.frames(**kw)
            whole = media._frames_sequentially(
                kw.get("num_frames", 8), kw.get("fps"), None, kw.get("spread", "segments")
            )
            assert _same(seeked, whole), (video, kw)
        assert media.notes == {}  # sampled by seeking


class CountingContainer:
    """A real PyAV container that counts the frames it decodes and the seeks it makes."""

    def __init__(self, container):
        self.container, self.decoded, self.seeks = container, 0, 0
        self.format = container.format

    def seek(self, *args, **kwargs):
        self.seeks += 1
        return self.container.seek(*args, **kwargs)

    def decode(self, stream):
        for frame in self.container.decode(stream):
            self.decoded += 1
            yield frame


def test_seeking_decodes_a_gop_per_target_not_the_whole_video(gop10):
    with av.open(str(gop10)) as c:
        counting = CountingContainer(c)
        stream = c.streams.video[0]
        timeline = timeline_of(counting, stream)
        targets = sample_times(timeline.start, timeline.duration, 8, None, None)
        picked = decode_nearest(counting, stream, targets, timeline.start)
    assert len(picked) == 8 and counting.seeks == 8
    # 240 frames; the last target is frame ~225. Each seek decodes at most a GOP (10) plus B-frame lookahead.
    assert counting.decoded <= 1 + 8 * 14, counting.decoded


def test_targets_in_one_gop_decode_on_without_seeking_back(gop10):
    with av.open(str(gop10)) as c:
        counting = CountingContainer(c)
        stream = c.streams.video[0]
        timeline = timeline_of(counting, stream)
        picked = decode_nearest(
            counting, stream, [10.0, 10.2, 10.4], timeline.start
        )  # frames 120-125: one GOP
    assert len(picked) == 3 and counting.seeks == 1


@pytest.mark.parametrize(
    "container,reason",
    [("mpegts", "sequential: seeking to"), ("h264", "sequential: the container gives no duration")],
)
def test_streams_that_cannot_seek_fall_back_and_say_so(tmp_path, container, reason):
    path = generate_video(
        tmp_path / f"v.{container}", seconds=6, audio=False, gop=10, container=container
    )
    media = Media.load(path)
    frames = media.frames(num_frames=6)
    assert len(frames) == 6 and media.notes["frame_sampling"].startswith(reason)
    caption = get_captioner("stats").caption(Media.load(path), num_frames=6)
    assert caption.meta["frame_sampling"].startswith(reason)
    assert (
        "frame_sampling"
        not in get_captioner("stats").caption(sample_video("bikes"), num_frames=4).meta
    )
