import io
import shutil

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from anycap_plugin import Media, testing
from anycap_plugin.errors import (
    CorruptMediaError,
    EmptyMediaError,
    MediaError,
    MediaNotFoundError,
    UnsupportedMediaError,
)


def test_image_from_path_bytes_pil_and_arrays(image_path):
    from_path = Media.load(image_path)
    assert from_path.modality == "image" and from_path.ref == str(image_path)
    img = from_path.image()
    assert img.mode == "RGB" and img.size == (512, 512)

    from_bytes = Media.load(image_path.read_bytes())
    assert from_bytes.modality == "image" and from_bytes.ref.startswith("bytes:")
    assert np.array_equal(np.asarray(from_bytes.image()), np.asarray(img))

    assert np.array_equal(np.asarray(Media.load(img).image()), np.asarray(img))
    assert np.array_equal(np.asarray(Media.load(np.asarray(img)).image()), np.asarray(img))

    gray = Media.from_array(np.linspace(0, 1, 64 * 48).reshape(48, 64))
    assert gray.image().size == (64, 48) and gray.image().mode == "RGB"
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent: composited on white
    assert np.asarray(Media.from_array(rgba).image())[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize(
    "bad",
    [np.zeros((2, 3, 4, 5)), np.zeros((4, 4, 2)), np.zeros((0, 3)), np.zeros((3, 3), dtype=object)],
)
def test_bad_arrays_are_typed_errors(bad):
    with pytest.raises(UnsupportedMediaError):
        Media.from_array(bad)


def test_modality_comes_from_content_not_the_name(tmp_path, image_path, audio_path, video_path):
    fake_video = tmp_path / "photo.mp4"
    shutil.copyfile(image_path, fake_video)
    fake_image = tmp_path / "clip.png"
    shutil.copyfile(audio_path, fake_image)
    no_ext = tmp_path / "movie"
    shutil.copyfile(video_path, no_ext)
    assert Media.load(fake_video).modality == "image"
    assert Media.load(fake_image).modality == "audio"
    assert Media.load(no_ext).modality == "video"


def test_video_samples_frames_at_segment_midpoints(tmp_path):
    path = testing.generate_video(tmp_path / "v.mp4", seconds=2.0, fps=12, audio=False)
    frames = Media.load(path).frames(num_frames=4)
    assert len(frames) == 4
    assert frames.duration == pytest.approx(2.0, abs=1e-6)
    # segments of 0.5 s: midpoints 0.25, 0.75, 1.25, 1.75 s -> frames 3, 9, 15, 21 at 12 fps
    assert frames.timestamps == pytest.approx([3 / 12, 9 / 12, 15 / 12, 21 / 12])
    # the moving square's column grows with time: the decoded frames really are those frames
    cols = [int(np.argmax(np.asarray(im)[50, :, 2])) for im in frames.images]
    assert cols == sorted(cols) and cols[0] < cols[-1]


def test_real_video_default_and_fps_sampling(video_path):
    media = Media.load(video_path)
    eight = media.frames()
    assert len(eight) == 8 and eight.images[0].size == (1280, 720)
    assert eight.timestamps == sorted(eight.timestamps)
    assert eight.duration == pytest.approx(5.28, abs=0.05)
    two_fps = media.frames(fps=2.0)
    assert len(two_fps) == int(eight.duration * 2)
    assert len(media.frames(fps=24, max_frames=5)) == 5


def test_short_video_gives_each_frame_once(tmp_path):
    path = testing.generate_video(tmp_path / "short.mp4", seconds=0.25, fps=12, audio=False)
    frames = Media.load(path).frames(num_frames=8)
    assert len(frames) == 3 and len(set(frames.timestamps)) == 3


def test_audio_is_16k_mono_from_wav_flac_mp3_and_a_video_track(tmp_path, audio_path, video_path):
    wav = Media.load(audio_path).audio()
    assert wav.sample_rate == 16000 and wav.samples.dtype == np.float32
    assert wav.duration == pytest.approx(2.0, abs=0.01)

    stereo = (
        np.stack([np.sin(np.linspace(0, 2000, 44100)), np.cos(np.linspace(0, 2000, 44100))], axis=1)
        * 0.5
    )
    sf.write(tmp_path / "s.flac", stereo, 44100)
    flac = Media.load(tmp_path / "s.flac")
    assert flac.modality == "audio"
    clip = flac.audio()
    assert clip.duration == pytest.approx(1.0, abs=0.01) and clip.samples.ndim == 1

    mp3 = tmp_path / "tone.mp3"
    with av.open(str(mp3), "w") as c:
        s = c.add_stream("libmp3lame", rate=44100, layout="mono")
        t = np.arange(44100) / 44100
        frame = av.AudioFrame.from_ndarray(
            (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :],
            format="fltp",
            layout="mono",
        )
        frame.sample_rate = 44100
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    decoded = Media.load(mp3).audio()
    assert decoded.duration == pytest.approx(1.0, abs=0.1)
    spectrum = np.abs(np.fft.rfft(decoded.samples))
    assert np.fft.rfftfreq(len(decoded.samples), 1 / 16000)[np.argmax(spectrum)] == pytest.approx(
        440, abs=5
    )

    track = Media.load(video_path, modality="audio")
    assert track.modality == "audio"
    assert track.audio().duration == pytest.approx(5.3, abs=0.1)
    assert Media.load(video_path).audio().sample_rate == 16000


def test_bad_media_are_typed_errors(tmp_path, image_path, video_path):
    with pytest.raises(MediaNotFoundError):
        Media.load(tmp_path / "missing.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(EmptyMediaError):
        Media.load(tmp_path / "empty.png")
    (tmp_path / "notes.txt").write_text("just some text, not media\n" * 10)
    with pytest.raises(UnsupportedMediaError):
        Media.load(tmp_path / "notes.txt")
    (tmp_path / "x.jpg").write_text(
        "hello, a text file named like an image\n"
    )  # FFmpeg guesses from the name
    with pytest.raises(
        UnsupportedMediaError, match=r"not a recognised image, video or audio file: it holds text"
    ):
        Media.load(tmp_path / "x.jpg")
    (tmp_path / "y.jpg").write_bytes(b"\x01\x02\x03 binary, not an image" * 4)
    with pytest.raises(UnsupportedMediaError, match="not a recognised image, video or audio file"):
        Media.load(tmp_path / "y.jpg")
    with pytest.raises(UnsupportedMediaError):
        Media.load(b"\x00\x01garbage" * 50)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(image_path.read_bytes()[:5000])
    with pytest.raises(CorruptMediaError):
        Media.load(truncated).image()
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = True  # as LMDeploy sets it for the whole process on import
    try:
        with pytest.raises(CorruptMediaError):
            Media.load(truncated).image()
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    cut_video = tmp_path / "cut.mp4"
    cut_video.write_bytes(video_path.read_bytes()[:20000])
    with pytest.raises(MediaError):
        Media.load(cut_video).frames()
    with pytest.raises(UnsupportedMediaError):
        Media.load(image_path).audio()
    with pytest.raises(UnsupportedMediaError):
        Media.load(image_path, modality="video")
    with pytest.raises(UnsupportedMediaError):
        Media.load(12345)


def test_oversize_image_is_a_typed_error(tmp_path, monkeypatch):
    from anycap_plugin.errors import MediaTooLargeError

    big = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100 // 2)
    with pytest.raises(MediaTooLargeError, match="MAX_IMAGE_PIXELS"):
        Media.load(big).image()


def test_read_bytes_round_trips(image_path):
    data = Media.load(image_path).read_bytes()
    assert data == image_path.read_bytes()
    png = Media.load(Image.new("RGB", (3, 2))).read_bytes()
    assert Image.open(io.BytesIO(png)).size == (3, 2)


def test_truncated_images_fail_under_parallel_decoding_with_the_global_flag_set(
    tmp_path, monkeypatch
):
    """LOAD_TRUNCATED_IMAGES is process-wide (LMDeploy and lmms-eval set it on import) and images decode in
    parallel threads (prefetch, judges): each truncated JPEG is still a CorruptMediaError, good ones
    decode, and the library's value is back once the decodes end. (Saving and restoring the flag per
    decode let one thread turn it back on under another's decode: a truncated image judged as good.)"""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image, ImageFile

    good = tmp_path / "good.jpg"
    Image.effect_noise((640, 480), 64).convert("RGB").save(good, quality=95)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)

    def decode(path):
        try:
            Media.load(path).image()
            return "ok"
        except CorruptMediaError:
            return "corrupt"

    paths = [cut, good] * 200
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(decode, paths))
    assert outcomes == ["corrupt", "ok"] * 200
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True
