"""InternVL-chat checkpoints with Qwen3, Qwen3-MoE and GPT-OSS language models (InternVL 3.5, MetaCaptioner-8B),
and with the Qwen2, Llama and Phi-3 ones of earlier generations:
the converter maps them onto transformers' own classes, checked against those classes on the same tensors
(for Qwen3-MoE, transformers' own loader stacks the per-expert tensors), and `acm:` / `internvl:` caption
images and videos with them, batched as one by one. The layouts: `internvl_chat_layouts.py`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import internvl_chat_layouts as layouts
import pytest
import torch
from PIL import Image

from anycap_plugin import Caption, Media, get_captioner, get_post_processor, plugins
from anycap_plugin.acm.convert import convert_internvl_chat
from anycap_plugin.acm_runtime import resolve_model
from anycap_plugin.errors import ConversionError

pytestmark = pytest.mark.skipif(
    not layouts.ORACLE.exists(), reason="../shared/data/internvl_chat_tiny is not beside the repo"
)
KINDS = {
    "qwen3": "Qwen3ForCausalLM",
    "qwen3_moe": "Qwen3MoeForCausalLM",
    "gpt_oss": "GptOssForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "llama": "LlamaForCausalLM",
    "phi3": "Phi3ForCausalLM",
}
TEMPLATES = {"gpt_oss": "internvl3_5_gpt_oss", "phi3": "phi3-chat"}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("internvl35")
    return {kind: layouts.build(root / kind, kind) for kind in KINDS}


def frames() -> Media:
    return Media.from_frames(
        [Image.open(layouts.ORACLE / "media" / f"frame{i}.png") for i in range(1, 5)]
    )


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_language_model_converts_to_what_transformers_own_class_computes(
    checkpoints, kind, tmp_path, monkeypatch
):
    from transformers import AutoModelForCausalLM, dynamic_module_utils

    import anycap_plugin.acm  # noqa: F401
    from anycap_plugin.acm import ACMForConditionalGeneration

    def never(
        *args, **kwargs
    ):  # the folder's config.json has an auto_map: nothing may offer to run it
        raise AssertionError("asked whether to run the checkpoint's code")

    monkeypatch.setattr(dynamic_module_utils, "resolve_trust_remote_code", never)
    report = convert_internvl_chat(checkpoints[kind], tmp_path / "acm")
    assert report.llm == f"{KINDS[kind]} -> {kind}" and report.converter == 2
    assert report.template == TEMPLATES.get(kind, "internvl2_5")
    ours = ACMForConditionalGeneration.from_pretrained(tmp_path / "acm").eval()
    theirs = AutoModelForCausalLM.from_pretrained(checkpoints[kind].parent / f"{kind}-lm").eval()
    assert type(ours.language_model) is type(theirs)
    ids = torch.randint(0, layouts.VOCAB, (2, 17), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        difference = (
            (ours.language_model(input_ids=ids).logits - theirs(input_ids=ids).logits).abs().max()
        )
    assert difference < 1e-5  # the same tensors; MoE kernels may sum experts in another order


def test_gpt_oss_checkpoints_take_their_own_template_and_stop_token(checkpoints):
    folder = Path(resolve_model(str(checkpoints["gpt_oss"])))
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Q"}],
        tokenize=False,
        add_generation_prompt=True,
        chat_template=(folder / "chat_template.jinja").read_text(),
    )
    assert rendered == (  # InternVL's `internvl3_5_gpt_oss` conversation (MPT_TWO), one user turn
        "<|start|>system<|message|>You are InternVL, a large language model trained by Shanghai AI Laboratory.\n"
        "Knowledge cutoff: 2024-06\nCurrent date: 2025-08-06\n\nReasoning: low\n\n# Valid channels: final. Channel "
        "must be included for every message.<|end|><|start|>user<|message|>Q<|end|><|start|>assistant"
    )
    generation = json.loads((folder / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [
        tokenizer.convert_tokens_to_ids("<|return|>")
    ]  # the template's sep2
    acm = get_post_processor(f"acm:{checkpoints['gpt_oss']}")
    batch = acm.processor(
        [Media.load(layouts.ORACLE / "media" / "image.png")], ["Describe it."], ["A photo."]
    )
    text = acm.processor.tokenizer.decode(batch["input_ids"][0])
    assert text.startswith("<|start|>system<|message|>You are InternVL") and text.endswith(
        "Only respond with the improved caption.<|end|><|start|>assistant"
    )
    assert "<|end|><|start|>user<|message|><img><IMG_CONTEXT>" in text


@pytest.mark.parametrize("kind", ["qwen3", "qwen3_moe", "gpt_oss"])
def test_acm_and_internvl_caption_images_and_videos_batched_as_one_by_one(
    checkpoints, kind, monkeypatch
):
    source = str(checkpoints[kind])
    image = Media.load(layouts.ORACLE / "media" / "image.png")
    acm = get_post_processor(f"acm:{source}")
    asks = ["Describe it in one sentence.", "What happens?"]
    base = [Caption(text="A picture."), Caption(text="Four frames.")]
    alone = [
        acm.refine(m, a, b, max_new_tokens=12, num_frames=4, check_constraints=False)
        for m, a, b in zip([image, frames()], asks, base)
    ]
    together = acm.refine_batch(
        [image, frames()], asks, base, max_new_tokens=12, num_frames=4, check_constraints=False
    )
    assert [c.text for c in together] == [c.text for c in alone]
    assert all(c.usage["post"]["completion_tokens"] > 0 for c in together)

    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "anycap-internvl")
    plugins.reset()
    captioner = get_captioner(f"internvl:{source}")
    one = [
        captioner.caption(m, a, max_new_tokens=12, num_frames=4)
        for m, a in zip([image, frames()], asks)
    ]
    both = captioner.caption_batch([image, frames()], asks, max_new_tokens=12, num_frames=4)
    assert [c.text for c in both] == [c.text for c in one]


def test_metacaptioner_hub_id_from_the_local_cache_with_the_prompt_as_an_option(
    checkpoints, tmp_path, monkeypatch
):
    """`internvl:OpenGVLab/MetaCaptioner-8B` offline: read from the Hugging Face cache layout (a Qwen3
    InternVL-chat checkpoint), converted once; without an instruction it asks the `prompt` option."""
    cache = tmp_path / "hf"
    revision = "fedcba9876543210fedcba9876543210fedcba98"
    snapshot = cache / "models--OpenGVLab--MetaCaptioner-8B" / "snapshots" / revision
    shutil.copytree(checkpoints["qwen3"], snapshot)
    (cache / "models--OpenGVLab--MetaCaptioner-8B" / "refs").mkdir()
    (cache / "models--OpenGVLab--MetaCaptioner-8B" / "refs" / "main").write_text(revision)
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("ANYCAP_LOAD_PLUGINS", "anycap-internvl")
    plugins.reset()
    captioner = get_captioner("internvl:OpenGVLab/MetaCaptioner-8B")
    image = Media.load(layouts.ORACLE / "media" / "image.png")
    asked = []
    original = captioner.acm.processor.chat

    def chat(media, questions, **kwargs):
        asked.extend(questions)
        return original(media, questions, **kwargs)

    monkeypatch.setattr(captioner.acm.processor, "chat", chat)
    captioner.caption(image, None, max_new_tokens=4)
    captioner.caption(
        image, None, max_new_tokens=4, prompt="Write a dense caption of this {modality}."
    )
    assert asked == ["Describe this image in detail.", "Write a dense caption of this image."]


def test_an_moe_checkpoint_missing_an_expert_is_refused_by_name(checkpoints, tmp_path):
    from safetensors.torch import load_file, save_file

    src = tmp_path / "moe"
    shutil.copytree(checkpoints["qwen3_moe"], src)
    weights = load_file(str(src / "model.safetensors"))
    weights.pop("language_model.model.layers.1.mlp.experts.3.up_proj.weight")
    save_file(weights, str(src / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(
        ConversionError, match=r"layers\.1\.mlp\.experts\.gate_up_proj \(experts missing\)"
    ):
        convert_internvl_chat(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
