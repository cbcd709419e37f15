"""Today's open captioners on the one HF engine (`anycap-transformers`): tiny random Qwen3-VL (dense and
MoE), Audio Flamingo 3, Qwen3-Omni and Gemma 3n models built offline by transformers' own classes, captioning real media as
users name them (`qwen3-vl:`, `audio-flamingo-3:`, `transformers:`); each caption equals transformers'
own greedy `generate` on the model card's message, token for token, and a mixed batch equals the same
items one by one."""

from __future__ import annotations

import json

import pytest

from anycap_plugin import ModalityNotSupportedError, get_captioner, plugins, testing, wrap
from anycap_plugin.errors import CheckpointError


@pytest.fixture(autouse=True)
def load_plugin(monkeypatch):  # installed by `make venv`, found through its entry point
    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "anycap-transformers")
    plugins.reset()


@pytest.fixture(scope="module")
def qwen3_vl(tmp_path_factory):
    # a wide initialisation makes the random models' greedy outputs differ from item to item
    return testing.build_tiny_qwen3_vl(tmp_path_factory.mktemp("qwen3-vl"), init_std=0.5)


@pytest.fixture(scope="module")
def qwen3_vl_moe(tmp_path_factory):
    return testing.build_tiny_qwen3_vl(
        tmp_path_factory.mktemp("qwen3-vl-moe"), init_std=0.5, moe=True
    )


@pytest.fixture(scope="module")
def audio_flamingo_3(tmp_path_factory):
    return testing.build_tiny_audio_flamingo3(tmp_path_factory.mktemp("af3"), init_std=0.5)


def card_generate(captioner, media_part: dict, text: str | None, max_new_tokens: int) -> list[int]:
    """What the model card runs: the processor's chat template over one user turn (the media, then
    the instruction), tokenized by `apply_chat_template`, then a bare greedy `generate`."""
    content = [media_part] + ([{"type": "text", "text": text}] if text is not None else [])
    inputs = captioner.processor.apply_chat_template(
        [{"role": "user", "content": content}],
        tokenize=True,
        add_generation_prompt=True,
        return_dict=True,
        return_tensors="pt",
    )
    out = captioner.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return out[0, inputs["input_ids"].shape[1] :].tolist()


def ours(captioner, caption) -> list[int]:
    return captioner.processor.tokenizer(caption.text, add_special_tokens=False)["input_ids"]


def decoded(captioner, tokens: list[int]) -> str:
    return captioner.processor.decode(tokens, skip_special_tokens=True).strip()


@pytest.mark.parametrize("layout", ["dense", "moe"])
def test_qwen3_vl_captions_an_image_as_the_model_card_generates(
    layout, qwen3_vl, qwen3_vl_moe, image_path
):
    from PIL import Image

    folder = qwen3_vl if layout == "dense" else qwen3_vl_moe
    captioner = get_captioner(f"qwen3-vl:{folder}")
    assert "qwen3-vl" in plugins.list_captioners()
    assert type(captioner.model).__name__ == (
        "Qwen3VLForConditionalGeneration"
        if layout == "dense"
        else "Qwen3VLMoeForConditionalGeneration"
    )
    caption = captioner.caption(image_path, "Describe the background.", max_new_tokens=8)
    card = card_generate(
        captioner, {"type": "image", "image": Image.open(image_path)}, "Describe the background.", 8
    )
    assert caption.text == decoded(captioner, card)
    assert caption.usage["base"]["completion_tokens"] == len(card)


def test_qwen3_vl_mixed_batch_equals_one_by_one_and_video_frames_are_timed(qwen3_vl, video_path):
    captioner = get_captioner(f"qwen3-vl:{qwen3_vl}")
    media = [testing.sample_image("chelsea"), video_path, testing.sample_image("coffee")]
    asks = ["Describe it.", "What happens?", None]
    alone = [captioner.caption(m, a, max_new_tokens=8) for m, a in zip(media, asks)]
    batch = captioner.caption_batch(media, asks, max_new_tokens=8)
    assert [c.text for c in batch] == [c.text for c in alone]
    assert len({c.text for c in alone}) > 1  # the check means something: outputs differ per item
    video = batch[1]
    assert video.modality == "video" and video.meta["frames"] % 2 == 0
    assert 1.5 <= video.meta["fps"] <= 2.5  # Qwen3-VL's own rate, 2 frames a second
    short = captioner.caption(video_path, "What happens?", max_new_tokens=4, max_frames=4)
    assert short.meta["frames"] == 4 and "max_frames" in short.meta["frames_cut"]
    prompt, _ = captioner.build_prompt(
        captioner._prepare(video_path, {})[0], None, captioner.Options(max_frames=4)
    )
    assert prompt.count("<|video_pad|>") == 1  # the processor expands it, with each frame's time


def test_audio_flamingo_3_hears_audio_as_the_model_card_and_refuses_video(
    audio_flamingo_3, audio_path, video_path, tmp_path
):
    from anycap_plugin.media import Media

    captioner = get_captioner(f"audio-flamingo-3:{audio_flamingo_3}")
    samples = Media.load(audio_path).audio().samples
    caption = captioner.caption(audio_path, "What do you hear?", max_new_tokens=8)
    card = card_generate(captioner, {"type": "audio", "audio": samples}, "What do you hear?", 8)
    assert caption.text == decoded(captioner, card) and caption.meta == {}

    tone = testing.generate_wav(tmp_path / "tone.wav", seconds=3.0)
    track = Media.load(video_path).as_modality("audio")  # bigbuckbunny's sound
    items, asks = [Media.load(audio_path), track, Media.load(tone)], ["Hear it.", None, "Sound?"]
    alone = [captioner.caption(m, a, max_new_tokens=6) for m, a in zip(items, asks)]
    batch = captioner.caption_batch(items, asks, max_new_tokens=6)
    assert [c.text for c in batch] == [c.text for c in alone]

    captioner.processor.max_audio_len = (
        30  # 10 minutes in the real model: the cut is said, not silent
    )
    cut = captioner.caption(testing.generate_wav(tmp_path / "long.wav", 35.0), max_new_tokens=4)
    assert cut.meta["audio"] == "the first 30.0 s of 35.0 s (Audio Flamingo 3 hears 30 s at most)"
    with pytest.raises(ModalityNotSupportedError, match="does not take video"):
        captioner.caption(video_path, "What happens?")


def test_audio_flamingo_3_features_skip_the_silent_padding_bit_for_bit(
    audio_flamingo_3, audio_path, tmp_path
):
    """The engine computes Whisper frames over the audio only and copies the silent frame over the
    rest of the 30 s window: the model's input equals what transformers' own processor gives."""
    import numpy as np
    from transformers import AutoProcessor

    from anycap_plugin.media import Media

    captioner = get_captioner(f"audio-flamingo-3:{audio_flamingo_3}")
    clips = [
        Media.load(audio_path).audio().samples,
        Media.load(testing.generate_wav(tmp_path / "tone.wav", seconds=3.0)).audio().samples,
        np.zeros(8000, np.float32),  # silence: every frame is the padding's
    ]
    own = AutoProcessor.from_pretrained(str(audio_flamingo_3))
    for batch in (clips, clips[1:2], clips[2:]):
        texts = ["<sound>"] * len(batch)
        ours = captioner.processor(text=texts, audio=batch, text_kwargs={"padding": True})
        theirs = own(text=texts, audio=batch, text_kwargs={"padding": True})
        assert np.array_equal(ours["input_features"].numpy(), theirs["input_features"].numpy())
        assert ours["input_features"].shape[-1] == 3000  # the model still gets its whole window
    extractor = captioner.processor.feature_extractor
    assert extractor._frames_checked == [True]  # taken, after its first batch matched the whole one
    saved = json.loads(extractor.to_json_string())  # it saves (and prints) as what it is
    assert saved["feature_extractor_type"] == "WhisperFeatureExtractor"
    assert "_frames_checked" not in saved and saved == json.loads(
        own.feature_extractor.to_json_string()
    )


def test_transformers_spec_loads_any_native_chat_model_and_refuses_what_it_cannot(
    qwen3_vl, audio_flamingo_3, tmp_path, image_path
):
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    generic = get_captioner(f"transformers:{qwen3_vl}")
    assert generic.modalities == {"image", "video"}
    named = get_captioner(f"qwen3-vl:{qwen3_vl}")
    assert (
        generic.caption(image_path, "Describe it.", max_new_tokens=6).text
        == named.caption(image_path, "Describe it.", max_new_tokens=6).text
    )

    model = Qwen3VLForConditionalGeneration.from_pretrained(qwen3_vl)
    wrapped = wrap(model, processor=AutoProcessor.from_pretrained(qwen3_vl))
    assert wrapped.base.id.startswith("qwen3-vl:")
    assert (
        wrapped.caption(image_path, "Describe it.", max_new_tokens=6).text
        == named.caption(image_path, "Describe it.", max_new_tokens=6).text
    )

    text_only = testing.build_tiny_causal_lm(tmp_path / "lm")
    with pytest.raises(CheckpointError, match="not one transformers loads as a multimodal"):
        get_captioner(f"transformers:{text_only}")
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "model.safetensors").write_bytes(b"")
    (remote / "config.json").write_text(
        json.dumps({"model_type": "minicpmo", "auto_map": {"AutoModel": "modeling_minicpmo.X"}})
    )
    with pytest.raises(CheckpointError, match="needs remote code") as refused:
        get_captioner(f"transformers:{remote}")
    assert "openai:" in refused.value.hint
    with pytest.raises(CheckpointError, match="'audioflamingo3' model"):
        get_captioner(f"transformers:{audio_flamingo_3}")


@pytest.fixture(scope="module")
def qwen3_omni(tmp_path_factory):
    return testing.build_tiny_qwen3_omni(tmp_path_factory.mktemp("qwen3-omni"), init_std=0.5)


def test_qwen3_omni_thinker_sees_and_hears_video_with_its_sound_batched_as_one_by_one(
    qwen3_omni, audio_path, video_path, tmp_path
):
    captioner = get_captioner(f"qwen3-omni:{qwen3_omni}")
    silent = testing.generate_video(tmp_path / "silent.mp4", seconds=2.0, audio=False)
    media = [testing.sample_image("chelsea"), audio_path, video_path, silent]
    asks = ["Describe it.", "What is this sound?", "What happens?", None]
    alone = [captioner.caption(m, a, max_new_tokens=6, max_frames=4) for m, a in zip(media, asks)]
    batch = captioner.caption_batch(media, asks, max_new_tokens=6, max_frames=4)
    assert [c.text for c in batch] == [c.text for c in alone]
    assert len({c.text for c in alone}) > 1 and batch[2].meta["frames"] == 4
    assert batch[2].meta["video_inputs"] == "frames and sound"  # bigbuckbunny has a track
    assert batch[3].meta["video_inputs"] == "frames only: no audio track"

    # the sound is interleaved with the frames by time, inside the video's own span
    options = captioner.Options(max_new_tokens=6, max_frames=4)
    item = captioner._prepare(video_path, {})[0]
    prompt, parts = captioner.build_prompt(item, "What happens?", options)
    inputs = captioner.processor(
        text=[prompt],
        videos=parts["videos"],
        audio=parts["audio"],
        video_metadata=parts["video_metadata"],
        do_sample_frames=False,
        videos_kwargs={"fps": parts["fps"]},
        load_audio_from_video=True,
        audio_from_video_indices=[0],
    )
    tokens = captioner.processor.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    span = "".join(t for t in tokens if t in ("<|VIDEO|>", "<|AUDIO|>"))
    assert span.startswith("<|VIDEO|>") and "<|AUDIO|><|VIDEO|>" in span  # frames, sound, frames
    quiet = captioner.caption(
        video_path, "What happens?", max_new_tokens=6, max_frames=4, use_audio_in_video=False
    )
    assert quiet.meta["video_inputs"] == "frames only"
    assert batch[2].usage["base"]["prompt_tokens"] == len(tokens)  # what the caption was given
    assert quiet.usage["base"]["prompt_tokens"] < len(tokens) - span.count("<|AUDIO|>") // 2


def test_qwen3_omni_captioner_hears_audio_alone_from_a_whole_folder(
    tmp_path, audio_path, image_path
):
    from transformers import Qwen3OmniMoeThinkerForConditionalGeneration

    from anycap_plugin.media import Media

    whole = testing.build_tiny_qwen3_omni(
        tmp_path / "Qwen3-Omni-30B-A3B-Captioner", init_std=0.5, whole=True
    )
    captioner = get_captioner(f"qwen3-omni:{whole}")
    assert isinstance(captioner.model, Qwen3OmniMoeThinkerForConditionalGeneration)
    caption = captioner.caption(audio_path, "Describe only the background.", max_new_tokens=8)
    samples = Media.load(audio_path).audio().samples
    card = card_generate(captioner, {"type": "audio", "audio": samples}, None, 8)
    assert caption.text == decoded(captioner, card)
    assert caption.meta["instruction"].startswith("not sent")
    with pytest.raises(ModalityNotSupportedError):
        captioner.caption(image_path)


def test_qwen3_omni_hears_past_whispers_30_s_up_to_what_its_context_holds(qwen3_omni, tmp_path):
    """Qwen3-Omni's processor cuts no audio (its encoder reads 1 s chunks): a 35 s clip goes in whole;
    the limit is the Thinker's context, 13 tokens a second, and a clip past it is cut, said in meta."""
    captioner = get_captioner(f"qwen3-omni:{qwen3_omni}")
    whole = captioner.caption(testing.generate_wav(tmp_path / "35s.wav", 35.0), max_new_tokens=4)
    assert "audio" not in whole.meta
    assert whole.usage["base"]["prompt_tokens"] > 35 * 13  # all of it reached the model
    # a context of 1,024 + 13 x 40 tokens holds 40 s of audio (4,096 in the tiny model: 236 s)
    captioner.model.config.text_config.max_position_embeddings = 1024 + 13 * 40
    cut = captioner.caption(testing.generate_wav(tmp_path / "45s.wav", 45.0), max_new_tokens=4)
    assert cut.meta["audio"] == "the first 40.0 s of 45.0 s (Qwen3-Omni hears 40 s at most)"
    assert whole.usage["base"]["prompt_tokens"] < cut.usage["base"]["prompt_tokens"] < 41 * 13 + 64


def test_models_options_says_how_to_serve_the_family_at_scale_through_openai():
    import os
    import subprocess
    import sys
    from pathlib import Path

    anycap = str(Path(sys.executable).with_name("anycap"))
    env = {**os.environ, "ANYCAP_LOAD_PLUGINS": "anycap-transformers,anycap-qwen2-5-vl"}

    def shown(name: str) -> str:
        run = [anycap, "models", "--options", name]
        return subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout

    for name in ("qwen3-vl", "audio-flamingo-3", "gemma3n", "qwen3-omni", "transformers"):
        out = shown(name)
        assert "at scale:" in out and "vllm serve MODEL" in out, name
        assert "lmdeploy serve api_server MODEL" in out and "-m openai:MODEL" in out, name
    assert "at scale" not in shown("qwen2.5-vl")  # said only where a class says it


def test_a_thinking_models_reasoning_is_kept_in_meta_not_in_the_caption():
    from anycap_transformers.captioner import without_reasoning

    from anycap_plugin import Caption

    thought = without_reasoning(Caption(text="<think>a dog, so…</think>\n\nA dog runs.", meta={}))
    assert thought.text == "A dog runs." and thought.meta == {"reasoning": "a dog, so…"}
    assert without_reasoning(Caption(text="A dog runs.")).text == "A dog runs."


@pytest.fixture(scope="module")
def gemma3n(tmp_path_factory):
    return testing.build_tiny_gemma3n(tmp_path_factory.mktemp("gemma3n"), init_std=0.5)


def test_gemma3n_sees_and_hears_as_the_model_card_batched_as_one_by_one(
    gemma3n, image_path, audio_path, video_path, tmp_path
):
    from PIL import Image

    from anycap_plugin.media import Media

    captioner = get_captioner(f"gemma3n:{gemma3n}")
    assert type(captioner.model).__name__ == "Gemma3nForConditionalGeneration"
    caption = captioner.caption(image_path, "Describe the background.", max_new_tokens=8)
    card = card_generate(
        captioner, {"type": "image", "image": Image.open(image_path)}, "Describe the background.", 8
    )
    assert caption.text == decoded(captioner, card)
    assert caption.usage["base"]["completion_tokens"] == len(card)
    heard = captioner.caption(audio_path, "What do you hear?", max_new_tokens=8)
    samples = Media.load(audio_path).audio().samples
    card = card_generate(captioner, {"type": "audio", "audio": samples}, "What do you hear?", 8)
    assert heard.text == decoded(captioner, card) and heard.meta == {}

    tone = testing.generate_wav(tmp_path / "tone.wav", seconds=3.0)
    media = [testing.sample_image("chelsea"), audio_path, testing.sample_image("coffee"), tone]
    asks = ["Describe it.", "What is this sound?", None, "Sound?"]
    alone = [captioner.caption(m, a, max_new_tokens=6) for m, a in zip(media, asks)]
    batch = captioner.caption_batch(media, asks, max_new_tokens=6)
    assert [c.text for c in batch] == [c.text for c in alone]
    assert len({c.text for c in alone}) > 1

    cut = captioner.caption(testing.generate_wav(tmp_path / "long.wav", 35.0), max_new_tokens=4)
    assert cut.meta["audio"] == "the first 30.0 s of 35.0 s (Gemma 3n hears 30 s at most)"
    with pytest.raises(ModalityNotSupportedError, match="does not take video"):
        captioner.caption(video_path, "What happens?")
    track = Media.load(video_path).as_modality("audio")  # a video's sound, named so, is heard
    assert captioner.caption(track, max_new_tokens=4).modality == "audio"
    wrapped = wrap(captioner.model, processor=captioner.processor)
    assert wrapped.base.id.startswith("gemma3n:")
    assert wrapped.caption(image_path, "Describe the background.", max_new_tokens=8).text == (
        caption.text
    )


def test_gemma3n_by_hub_id_from_a_local_hugging_face_cache_offline(gemma3n, image_path, tmp_path):
    """`gemma3n:google/gemma-3n-E4B-it` with no network: `anycap caption`, run as a user runs it with
    HF_HOME and HF_HUB_OFFLINE=1, reads the checkpoint from the cache layout
    (hub/models--org--name/snapshots/REV, refs/main) and captions as the folder itself does."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    repo = tmp_path / "hf" / "hub" / "models--google--gemma-3n-E4B-it"
    revision = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(gemma3n, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    out = tmp_path / "caps.jsonl"
    done = subprocess.run(
        [str(Path(sys.executable).with_name("anycap")), "caption", str(image_path)]
        + ["-m", "gemma3n:google/gemma-3n-E4B-it", "-O", "max_new_tokens=8", "-o", str(out)],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_OFFLINE": "1",
            "ANYCAP_LOAD_PLUGINS": "anycap-transformers",
        },
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    local = get_captioner(f"gemma3n:{gemma3n}").caption(image_path, None, max_new_tokens=8)
    assert record["caption"] == local.text
    assert record["models"] == {"base": "gemma3n:google/gemma-3n-E4B-it"}
