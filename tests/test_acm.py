"""ACM as a transformers model: config and weights round trip, prompt layout, wrap() end to end."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoProcessor

from anycap_plugin import (
    Caption,
    Media,
    ModalityNotSupportedError,
    get_captioner,
    get_post_processor,
    testing,
    wrap,
)
from anycap_plugin.acm import ACMConfig, ACMForConditionalGeneration, ACMProcessor
from anycap_plugin.acm.processing_acm import AUDIO_CONTEXT, IMG_CONTEXT
from anycap_plugin.errors import CheckpointError


@pytest.fixture(scope="module")
def tiny_acm(tmp_path_factory):
    return testing.build_tiny_acm(tmp_path_factory.mktemp("acm"), init_std=0.5)


@pytest.fixture(scope="module")
def image_only_acm(tmp_path_factory):
    return testing.build_tiny_acm(tmp_path_factory.mktemp("acm-vision"), audio=False)


def test_auto_classes_load_it_without_remote_code(tiny_acm):
    config = json.loads((tiny_acm / "config.json").read_text())
    assert config["model_type"] == "anycap_acm" and "auto_map" not in config
    assert isinstance(AutoConfig.from_pretrained(tiny_acm), ACMConfig)
    assert isinstance(AutoModel.from_pretrained(tiny_acm), ACMForConditionalGeneration)
    assert isinstance(AutoProcessor.from_pretrained(tiny_acm), ACMProcessor)
    assert (tiny_acm / "model.safetensors").exists() and not list(tiny_acm.glob("*.bin"))


def test_save_and_load_round_trip_exactly(tiny_acm, tmp_path):
    model = AutoModel.from_pretrained(tiny_acm)
    model.save_pretrained(tmp_path / "again")
    again = AutoModel.from_pretrained(tmp_path / "again")
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda d: {k: v for k, v in d.items() if k != "_name_or_path"}
    assert strip(again.config.to_dict()) == strip(model.config.to_dict())


def test_prompt_layout_per_modality(tiny_acm, image_path, video_path, audio_path):
    proc = AutoProcessor.from_pretrained(tiny_acm)
    cfg = AutoConfig.from_pretrained(tiny_acm)
    media = [Media.load(p) for p in (image_path, video_path, audio_path)]
    batch = proc(
        media,
        ["Describe the background.", "What moves?", "Name the sound."],
        ["an astronaut", None, "a tone"],
        num_frames=3,
    )
    texts = proc.tokenizer.batch_decode(batch["input_ids"])
    ids = batch["input_ids"]
    image_tokens = (ids == cfg.image_token_id).sum(dim=1).tolist()
    tiles = batch["pixel_values"].shape[0]
    assert image_tokens[0] + image_tokens[1] == tiles * cfg.image_seq_length
    assert image_tokens[1] == 3 * cfg.image_seq_length  # one tile per video frame
    assert (ids[2] == cfg.audio_token_id).sum() == cfg.audio_seq_length and image_tokens[2] == 0
    assert batch["audio_values"].shape == (1, 64, 128)
    # the published layout: template with its system message, media placeholders, then the aligner ask
    t = texts[0]
    t = t.replace(proc.tokenizer.pad_token, "")
    assert t.startswith("<|im_start|>system\n你是书生·万象") and t.endswith(
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    assert t.index("<|im_start|>user\n<img>") < t.index(
        "</img>\nYou are a multimodal aligner. Transform the existing "
        "caption to meet the requirement: 'Describe the background.'. "
        "Existing caption: 'an astronaut'. Only respond with the "
        "improved caption.<|im_end|>"
    )
    assert "user\nFrame1: <img>" in texts[1] and "</img>\nFrame3: <img>" in texts[1]
    assert "Existing caption: ''." in texts[1]
    assert IMG_CONTEXT not in texts[2] and "user\n<audio>" + AUDIO_CONTEXT in texts[2]


def test_labels_cover_only_the_answer(tiny_acm, image_path):
    proc = AutoProcessor.from_pretrained(tiny_acm)
    batch = proc(
        [Media.load(image_path)] * 2,
        ["brief", "brief"],
        ["old", "old caption here"],
        targets=["A new caption.", "Short."],
    )
    labels = batch["labels"]
    for row, ids in zip(labels, batch["input_ids"]):
        answer = proc.tokenizer.decode(ids[row != -100])
        assert answer.startswith(("A new caption.", "Short.")) and "Instruction" not in answer
    model = AutoModel.from_pretrained(tiny_acm)
    loss = model(**batch).loss
    assert torch.isfinite(loss) and loss.requires_grad


def test_wrap_with_acm_end_to_end(tiny_acm, image_path, video_path, audio_path):
    chain = wrap(get_captioner("stats"), f"acm:{tiny_acm}")
    captions = chain.caption_batch(
        [image_path, video_path, audio_path],
        ["Describe it in at most two sentences.", "What moves?", "Name the sound."],
        num_frames=2,
    )
    for c, modality in zip(captions, ("image", "video", "audio")):
        assert c.modality == modality and c.base_text.startswith("A ")
        assert c.models == {"base": "stats", "post": f"acm:{tiny_acm}"}
        assert c.usage["post"]["prompt_tokens"] > 0 and set(c.timings) == {"base", "post"}
    # random weights: the records say so, and noise is not judged against the constraint
    assert all(c.meta["random_weights"] is True and c.meta["complies"] is None for c in captions)
    assert "constraint" not in captions[0].meta and captions[0].meta["attempts"] == 1
    assert (
        get_captioner(f"stats+acm:{tiny_acm}").caption(image_path).models["post"]
        == f"acm:{tiny_acm}"
    )


def test_constraint_violations_are_refined_again_a_bounded_number_of_times(image_path):
    from anycap_plugin.plugins import get_post_processor
    from anycap_plugin.testing.server import ChatCompletionsServer

    with ChatCompletionsServer(responder=lambda body: "Four words, no more.") as server:
        post = get_post_processor(f"acm:{server.base_url}")
        base = get_captioner("stats").caption(image_path)
        strict = post.refine(image_path, "Describe it in exactly 40 words.", base, max_attempts=3)
        assert strict.meta["complies"] is False and strict.meta["attempts"] == 3
        assert len(server.requests) == 3
        off = post.refine(
            image_path, "Describe it in exactly 40 words.", base, check_constraints=False
        )
    assert off.meta == {"attempts": 1, "complies": None}
    assert "random_weights" not in strict.meta  # a served model is judged


def test_media_without_an_encoder_and_broken_checkpoints(image_only_acm, audio_path, tmp_path):
    with pytest.raises(ModalityNotSupportedError, match="takes: image, video"):
        wrap(get_captioner("stats"), f"acm:{image_only_acm}").caption(audio_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in image_only_acm.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    weights = load_file(broken / "model.safetensors")
    dropped = sorted(k for k in weights if k.startswith("vision_projector."))
    save_file(
        {k: v for k, v in weights.items() if k not in dropped},
        broken / "model.safetensors",
        metadata={"format": "pt"},
    )
    with pytest.raises(CheckpointError) as err:
        get_captioner(f"stats+acm:{broken}")
    assert "vision_projector.fc1.weight" in str(err.value)


def test_remote_acm_over_an_openai_compatible_endpoint(image_path, video_path, audio_path):
    from anycap_plugin.testing.server import ChatCompletionsServer

    seen = []

    def acm_server(body):
        parts = body["messages"][-1]["content"]
        text = parts[-1]["text"]
        seen.append(([p["type"] for p in parts[:-1]], text))
        existing = text.split("Existing caption: '", 1)[1].rsplit("'. Only respond", 1)[0]
        if "(Your last caption had" in text:  # asked again after breaking the constraint
            return "Short now."
        return ("Long. " * 5).strip() if "at most two sentences" in text else f"refined {existing}"

    with ChatCompletionsServer(responder=acm_server) as server:
        url = server.base_url
        chain = wrap(get_captioner("stats"), f"acm:{url}", post_options={"num_frames": 3})
        out = chain.caption_batch(
            [image_path, video_path, audio_path],
            ["Describe it in at most two sentences.", "What moves?", "Name the sound."],
        )
    assert (
        out[0].text == "Short now."
        and out[0].meta["complies"] is True
        and out[0].meta["attempts"] == 2
    )
    assert out[1].text.startswith("refined A 5.3-second") and out[1].meta["complies"] is None
    assert out[2].models["post"] == f"acm:{url}" and out[2].usage["post"]["completion_tokens"] > 0
    kinds = sorted(k for k, _ in seen[:3])
    assert ["image_url"] in kinds and ["input_audio"] in kinds
    assert [
        "text",
        "image_url",
    ] * 3 in kinds  # a video: each frame after `Frame{i}: `, InternVL's format
    assert all(
        t.startswith("You are a multimodal aligner.") and "Existing caption: 'A " in t
        for _, t in seen[:3]
    )
    assert "Existing caption: 'Long." in seen[3][1]  # the retry shows the last caption


def test_packed_batches_compute_what_separate_sequences_do(tiny_acm, image_path, audio_path):
    proc = AutoProcessor.from_pretrained(tiny_acm)
    model = AutoModel.from_pretrained(tiny_acm)
    media = [Media.load(image_path), None, Media.load(audio_path)]
    args = (["Describe.", "A poem please.", "The sound?"], ["old one", None, "a tone"])
    targets = ["A new caption.", "Roses are red.", "A steady tone."]
    packed = proc(media, *args, targets=targets, packed=True)
    assert "attention_mask" not in packed and packed["input_ids"].shape[0] == 1
    with torch.no_grad():
        logits = model(**packed).logits[0]
        start = 0
        for i in range(3):
            alone = proc([media[i]], [args[0][i]], [args[1][i]], targets=[targets[i]])
            n = alone["input_ids"].shape[1]
            assert torch.allclose(model(**alone).logits[0], logits[start : start + n], atol=1e-4)
            start += n


def test_batched_refinement_matches_one_by_one(tiny_acm, image_path, audio_path):
    from anycap_plugin.plugins import get_post_processor

    post = get_post_processor(f"acm:{tiny_acm}")
    media = [
        image_path,
        testing.sample_image("chelsea"),
        audio_path,
        testing.sample_image("coffee"),
    ]
    instructions = [
        "Describe it.",
        "A poem about this cat please, a long one",
        "Name the sound.",
        None,
    ]
    base = get_captioner("stats").caption_batch(media, instructions)
    batched = post.refine_batch(media, instructions, base, max_new_tokens=8)
    single = [post.refine(m, i, c, max_new_tokens=8) for m, i, c in zip(media, instructions, base)]
    assert [b.text for b in batched] == [s.text for s in single]
    assert (
        len({s.text for s in single}) > 1
    )  # left padding changes nothing, and outputs differ per item


def test_answer_logits_only_gives_the_same_loss_and_gradients(tiny_acm, image_path, audio_path):
    proc = AutoProcessor.from_pretrained(tiny_acm)
    model = AutoModel.from_pretrained(tiny_acm)
    media = [Media.load(image_path), None, Media.load(audio_path)]
    batch = proc(
        media,
        ["Describe.", "A poem please.", "The sound?"],
        ["old one", None, "a tone"],
        targets=["A new caption.", "Roses are red, violets are blue.", "A steady tone."],
    )
    results = []
    for answer_only in (False, True):
        model.zero_grad()
        out = model(**batch, answer_logits_only=answer_only)
        out.loss.backward()
        grads = torch.cat(
            [p.grad.flatten() for p in model.language_model.parameters() if p.grad is not None]
        )
        results.append((out.loss.detach(), grads, out.logits.shape))
    (full_loss, full_grads, full_shape), (loss, grads, shape) = results
    assert torch.allclose(full_loss, loss, atol=1e-5) and torch.allclose(
        full_grads, grads, atol=1e-5
    )
    assert shape[0] == int((batch["labels"][:, 1:] != -100).sum()) < full_shape[0] * full_shape[1]


def test_a_video_goes_in_with_its_sound_where_the_acm_can_hear(
    tiny_acm, image_only_acm, video_path
):
    """An ACM with an audio branch hears a video's sound track after its frames; `meta` says what went in."""
    import os

    from anycap_plugin.acm.processing_acm import AUDIO_CONTEXT

    acm = get_post_processor(f"acm:{tiny_acm}")
    base = Caption(text="A rabbit in a meadow.")
    heard = acm.refine(
        video_path, "What happens?", base, max_new_tokens=6, num_frames=2, check_constraints=False
    )
    muted = acm.refine(
        video_path,
        "What happens?",
        base,
        max_new_tokens=6,
        num_frames=2,
        check_constraints=False,
        use_audio_in_video=False,
    )
    assert (
        heard.meta["video_inputs"] == "frames and sound"
        and muted.meta["video_inputs"] == "frames only"
    )
    assert (
        heard.usage["post"]["prompt_tokens"] > muted.usage["post"]["prompt_tokens"]
    )  # the sound's tokens
    batch = acm.processor(
        [Media.load(video_path)], ["What happens?"], ["x"], num_frames=2, video_sound=[True]
    )
    context = acm.processor.tokenizer.convert_tokens_to_ids(AUDIO_CONTEXT)
    assert (
        batch["input_ids"] == context
    ).sum() == acm.processor.audio_seq_length and "audio_values" in batch
    bikes = os.path.join(os.path.dirname(video_path), "bikes.mp4")  # no audio track
    silent = acm.refine(
        bikes, "What moves?", base, max_new_tokens=4, num_frames=2, check_constraints=False
    )
    assert silent.meta["video_inputs"] == "frames only: no audio track"
    deaf = get_post_processor(f"acm:{image_only_acm}").refine(
        video_path, "What happens?", base, max_new_tokens=4, num_frames=2, check_constraints=False
    )
    assert deaf.meta["video_inputs"] == "frames only: this ACM has no audio branch"


def test_post_processor_options_from_the_command_line(tiny_acm, image_path, tmp_path):
    """`-P KEY=VALUE` reaches the post-processor of `anycap caption`, run as a user runs it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "caps.jsonl"
    done = subprocess.run(
        [str(Path(sys.executable).with_name("anycap")), "caption", str(image_path), "-m", "stats"]
        + ["-p", f"acm:{tiny_acm}", "-P", "max_new_tokens=3", "-o", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "ANYCAP_LOAD_PLUGINS": ""},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert 0 < record["usage"]["post"]["completion_tokens"] <= 3
