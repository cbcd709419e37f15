"""Published InternVL-chat checkpoints load, prompt and decode as InternVL's own code does.

The oracle is ../shared/data/internvl_chat_tiny: a checkpoint in the published layout and golden
outputs made by running InternVL's reference code (see its README). Nothing in it was made here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from anycap_plugin import (
    Media,
    ModalityNotSupportedError,
    get_captioner,
    get_post_processor,
    plugins,
)
from anycap_plugin.acm.convert import convert_internvl_chat
from anycap_plugin.acm.prompt import parse_question, question
from anycap_plugin.acm_runtime import resolve_model
from anycap_plugin.errors import ConversionError, TokenizerConversionError, UnknownTemplateError

ORACLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "internvl_chat_tiny"
SOURCE = ORACLE / "checkpoint"
pytestmark = pytest.mark.skipif(
    not SOURCE.exists(), reason="../shared/data/internvl_chat_tiny is not beside the repo"
)


def golden(case: str) -> tuple[dict, dict]:
    meta = json.loads((ORACLE / "golden" / f"{case}.json").read_text())
    if isinstance(meta["input_ids"], str):
        meta["input_ids"] = json.loads(meta["input_ids"])
    return meta, load_file(str(ORACLE / "golden" / f"{case}.safetensors"))


def media_of(case: str) -> Media:
    if case == "case_image":
        return Media.load(ORACLE / "media" / "image.png")
    return Media.from_frames([Image.open(ORACLE / "media" / f"frame{i}.png") for i in range(1, 5)])


def ask(case: str) -> tuple[str, str]:
    parsed = parse_question(golden(case)[0]["question"])
    assert parsed is not None and parsed.caption
    return parsed.instruction, parsed.caption


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("converted") / "acm"
    report = convert_internvl_chat(SOURCE, folder)
    assert report.llm == "InternLM2ForCausalLM -> llama" and report.template == "internvl2_5"
    return folder


@pytest.fixture(scope="module")
def loaded(converted):
    from transformers import AutoModel, AutoProcessor

    import anycap_plugin.acm  # noqa: F401

    return AutoProcessor.from_pretrained(converted), AutoModel.from_pretrained(converted).eval()


def test_the_published_question_is_the_one_the_reference_was_given():
    for case in ("case_image", "case_video"):
        meta, _ = golden(case)
        instruction, caption = ask(case)
        assert meta["question"].endswith(question(instruction, caption))


def test_converted_folder_is_complete_and_needs_no_remote_code(converted):
    names = {p.name for p in converted.iterdir()}
    assert {
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "processor_config.json",
        "generation_config.json",
        "chat_template.jinja",
        "model.safetensors.index.json",
        "conversion.json",
    } <= names, names
    assert not any(p.suffix in (".py", ".bin") for p in converted.iterdir())
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "anycap_acm" and "auto_map" not in config
    assert (
        config["vision_config"]["attention_bias"] is True
        and config["text_config"]["tie_word_embeddings"] is False
    )
    assert "audio" in config["audio_absent"] and config["audio_config"] is None
    generation = json.loads((converted / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [golden("case_image")[0]["eos_token_id"]]


@pytest.mark.parametrize("case", ["case_image", "case_video"])
def test_ids_pixels_and_logits_match_the_reference(loaded, case):
    processor, model = loaded
    meta, tensors = golden(case)
    batch = processor([media_of(case)], *([x] for x in ask(case)), num_frames=4)
    assert batch["input_ids"][0].tolist() == meta["input_ids"]
    assert batch["pixel_values"].shape == tensors["pixel_values"].shape
    assert torch.equal(
        batch["pixel_values"], tensors["pixel_values"]
    )  # exact, as docs/checkpoints.md says
    with torch.no_grad():
        logits = model(**batch).logits[0, -1]
    # docs/checkpoints.md gives the measured figures (3.4e-5, 1.3e-5: fp32 summation order, CPU)
    assert (logits - tensors["last_logits"]).abs().max() <= 5e-5


def test_chat_template_writes_the_reference_query(loaded):
    processor, _ = loaded
    meta, _ = golden("case_image")
    text = processor.tokenizer.apply_chat_template(
        [{"role": "user", "content": meta["question"]}],
        tokenize=False,
        add_generation_prompt=True,
        chat_template=processor.chat_template,
    )
    assert text.replace("<image>", "<img></img>") == meta["query_without_image_context"]


@pytest.mark.parametrize("case", ["case_image", "case_video"])
def test_acm_post_processor_on_the_published_folder_decodes_the_golden_text(case):
    meta, _ = golden(case)
    acm = get_post_processor(f"acm:{SOURCE}")  # converted once into the cache, then loaded
    from anycap_plugin import Caption

    instruction, caption = ask(case)
    out = acm.refine(
        media_of(case),
        instruction,
        Caption(text=caption),
        max_new_tokens=24,
        num_frames=4,
        check_constraints=False,
    )
    assert out.text == meta["greedy_text"]
    assert out.usage["post"]["completion_tokens"] == 24 and out.models == {"post": f"acm:{SOURCE}"}


def test_internvl_captioner_on_the_same_folder_reproduces_the_reference(monkeypatch):
    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "anycap-internvl")
    plugins.reset()
    cap = get_captioner(f"internvl:{SOURCE}")
    for case in ("case_image", "case_video"):
        meta, _ = golden(case)
        text = meta["question"].split("<image>\n")[
            -1
        ]  # the question the placeholders were put before
        out = cap.caption(media_of(case), text, max_new_tokens=24, num_frames=4)
        assert out.text == meta["greedy_text"], case


def test_a_batch_of_two_equals_two_singles():
    from anycap_plugin import Caption

    acm = get_post_processor(f"acm:{SOURCE}")
    cases = ["case_image", "case_video"]
    asks = [ask(c) for c in cases]
    batch = acm.refine_batch(
        [media_of(c) for c in cases],
        [a[0] for a in asks],
        [Caption(text=a[1]) for a in asks],
        max_new_tokens=24,
        num_frames=4,
        check_constraints=False,
    )
    assert [c.text for c in batch] == [golden(c)[0]["greedy_text"] for c in cases]


def test_hub_ids_resolve_from_the_local_hugging_face_cache(tmp_path, monkeypatch):
    """Offline, `acm:org/name` is read from the HF cache layout, converted once per revision, then reused."""
    cache = tmp_path / "hf"
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = cache / "models--qishisuren--AnyCapModel" / "snapshots" / revision
    shutil.copytree(SOURCE, snapshot)
    (cache / "models--qishisuren--AnyCapModel" / "refs").mkdir()
    (cache / "models--qishisuren--AnyCapModel" / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    folder = Path(resolve_model("qishisuren/AnyCapModel"))
    report = json.loads((folder / "conversion.json").read_text())
    assert (
        report["source"]["id"] == "qishisuren/AnyCapModel"
        and report["source"]["revision"] == revision
    )
    stamp = (folder / "conversion.json").stat().st_mtime_ns
    assert (
        Path(resolve_model("qishisuren/AnyCapModel")) == folder
    )  # the same revision is not converted again
    assert (folder / "conversion.json").stat().st_mtime_ns == stamp
    acm = get_post_processor("acm:qishisuren/AnyCapModel")
    assert acm.id == "acm:qishisuren/AnyCapModel"
    from anycap_plugin.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="not/there"):
        resolve_model("not/there")


def test_audio_is_refused_with_the_reason(audio_path):
    acm = get_post_processor(f"acm:{SOURCE}")
    assert acm.modalities == {"image", "video"}
    from anycap_plugin import Caption

    with pytest.raises(ModalityNotSupportedError, match="no audio branch"):
        acm.refine(audio_path, "Describe.", Caption(text="a tone"))


# ---- bad input: each refusal names what was found; nothing half-written ----------------------


def copy_source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(SOURCE, src)
    return src


def test_a_folder_in_neither_layout_is_named(tmp_path):
    src = tmp_path / "bert"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConversionError, match="not an InternVL-chat checkpoint.*bert"):
        convert_internvl_chat(src, tmp_path / "out")
    with pytest.raises(ConversionError, match="no config.json"):
        convert_internvl_chat(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_tokenizer_files_are_listed(tmp_path):
    src = copy_source(tmp_path)
    (src / "tokenizer.model").unlink()
    with pytest.raises(
        TokenizerConversionError, match="No usable tokenizer.*tokenizer_config.json"
    ):
        convert_internvl_chat(src, tmp_path / "out")


def test_an_unknown_template_is_refused(tmp_path):
    src = copy_source(tmp_path)
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "template": "my-template"}))
    with pytest.raises(UnknownTemplateError, match="my-template.*internvl2_5"):
        convert_internvl_chat(src, tmp_path / "out")


def test_unexpected_and_missing_weights_are_listed_and_nothing_is_written(tmp_path):
    src = copy_source(tmp_path)
    weights = load_file(str(src / "model.safetensors"))
    weights.pop("mlp1.1.weight")
    weights["vision_model.extra.weight"] = torch.zeros(2)
    save_file(weights, str(src / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ConversionError) as err:
        convert_internvl_chat(src, tmp_path / "out")
    assert "vision_model.extra.weight" in str(err.value) and "vision_projector.fc1.weight" in str(
        err.value
    )
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_pickled_weights_are_never_read(tmp_path):
    src = copy_source(tmp_path)
    (src / "model.safetensors").rename(src / "pytorch_model.bin")
    with pytest.raises(ConversionError, match="pickles are never loaded"):
        convert_internvl_chat(src, tmp_path / "out")


def test_audio_weights_of_an_unknown_layout_are_recorded_never_dropped_silently(tmp_path):
    src = copy_source(tmp_path)
    weights = load_file(str(src / "model.safetensors"))
    weights["audio_model.encoder.layers.0.fc1.weight"] = torch.zeros(4, 4)
    weights["mlp2.0.weight"] = torch.ones(4)
    save_file(weights, str(src / "model.safetensors"), metadata={"format": "pt"})
    with pytest.warns(UserWarning, match="audio branch"):
        report = convert_internvl_chat(src, tmp_path / "out")
    assert report.dropped == ["audio_model.encoder.layers.0.fc1.weight", "mlp2.0.weight"]
    recorded = json.loads((tmp_path / "out" / "conversion.json").read_text())
    assert recorded["dropped"] == report.dropped
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert "2 weights" in config["audio_absent"] and "not converted" in config["audio_absent"]


def test_anycap_convert_command(tmp_path, capsys):
    from anycap_plugin.cli import main

    with pytest.raises(SystemExit) as done:
        main(["convert", str(SOURCE), str(tmp_path / "out")])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "67 tensors" in out and "InternLM2ForCausalLM -> llama" in out and "audio: absent" in out
    with pytest.raises(SystemExit) as done:
        main(["convert", str(tmp_path), str(tmp_path / "out2")])
    assert done.value.code == 2
    # 0.1's module path runs the same converter, as transformers' convert scripts run
    import subprocess
    import sys

    ran = subprocess.run(
        [sys.executable, "-m", "anycap_plugin.acm.convert", str(SOURCE), str(tmp_path / "out3")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    assert "67 tensors" in ran.stdout and (tmp_path / "out3" / "conversion.json").is_file()


def test_a_qwen2_language_model_converts_to_what_transformers_builds(tmp_path):
    """InternVL-chat builds Qwen2 language models with transformers' own `Qwen2ForCausalLM`: after
    conversion, ACM's language model must give that class's logits for the same embeddings."""
    from transformers import AutoModel, Qwen2Config, Qwen2ForCausalLM

    from anycap_plugin import testing

    src = copy_source(tmp_path)
    for name in (
        "tokenizer.model",
        "tokenizer_config.json",
        "added_tokens.json",
        "special_tokens_map.json",
    ):
        (src / name).unlink()
    tok = testing.build_tokenizer(src, extra_special_tokens=("<img>", "</img>", "<IMG_CONTEXT>"))
    llm = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
        architectures=["Qwen2ForCausalLM"],
    )
    torch.manual_seed(0)
    lm = Qwen2ForCausalLM(llm).eval()
    weights = {
        k: v
        for k, v in load_file(str(src / "model.safetensors")).items()
        if not k.startswith("language_model.")
    }
    weights.update({f"language_model.{k}": v.clone() for k, v in lm.state_dict().items()})
    save_file(weights, str(src / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "llm_config": llm.to_dict()}))
    report = convert_internvl_chat(src, tmp_path / "out")
    assert report.llm == "Qwen2ForCausalLM -> qwen2"
    import anycap_plugin.acm  # noqa: F401

    acm = AutoModel.from_pretrained(tmp_path / "out").eval()
    embeds = torch.randn(1, 7, 64)
    with torch.no_grad():
        ours = acm.language_model(inputs_embeds=embeds).logits
        theirs = lm(inputs_embeds=embeds).logits
    assert torch.allclose(ours, theirs, atol=1e-5)
