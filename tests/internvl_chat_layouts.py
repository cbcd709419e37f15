"""Tiny InternVL-chat checkpoints whose language model is Qwen2, Llama, Phi-3, Qwen3, Qwen3-MoE or GPT-OSS, in
the layout the InternVL 2.5 to 3.5 families publish (MetaCaptioner-8B is a Qwen3 one): `config.json` with `llm_config`
and the template name, `vision_model.*` (InternViT, taken from ../shared's tiny published checkpoint),
`mlp1.*`, `language_model.*` under transformers 4.x names (an MoE's experts one module each, as the
InternVL code saved them), and a BPE tokenizer with InternVL's special tokens.

Beside each, `language_model/` holds the same language model alone as a transformers folder with
the same tensors: what transformers' own class loads, the oracle a converted checkpoint must match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

ORACLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "internvl_chat_tiny"
INTERNVL_TOKENS = (
    "<img>",
    "</img>",
    "<IMG_CONTEXT>",
    "<quad>",
    "</quad>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
)
GPT_OSS_TOKENS = ("<|start|>", "<|message|>", "<|end|>", "<|return|>", "<|channel|>")
PHI3_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
HIDDEN, VOCAB = 48, 640


def llm_config(kind: str, vocab_size: int) -> dict[str, Any]:
    common = {
        "vocab_size": vocab_size,
        "hidden_size": HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
    }
    if kind in ("qwen2", "llama", "phi3"):
        from transformers import AutoConfig

        arch = {
            "qwen2": "Qwen2ForCausalLM",
            "llama": "LlamaForCausalLM",
            "phi3": "Phi3ForCausalLM",
        }[kind]
        extra = {"pad_token_id": 0} if kind == "phi3" else {}
        config = AutoConfig.for_model(kind, intermediate_size=96, rope_theta=1e6, **common, **extra)
        config.architectures = [arch]
    elif kind == "qwen3":
        from transformers import Qwen3Config

        config = Qwen3Config(intermediate_size=96, rope_theta=1e6, **common)
        config.architectures = ["Qwen3ForCausalLM"]
    elif kind == "qwen3_moe":
        from transformers import Qwen3MoeConfig

        config = Qwen3MoeConfig(
            intermediate_size=96,
            moe_intermediate_size=24,
            num_experts=4,
            num_experts_per_tok=2,
            decoder_sparse_step=1,
            mlp_only_layers=[],
            norm_topk_prob=True,
            rope_theta=1e6,
            **common,
        )
        config.architectures = ["Qwen3MoeForCausalLM"]
        saved = config.to_dict()
        saved["num_experts"] = saved.pop("num_local_experts")  # as transformers 4.x wrote it
        return saved
    else:
        from transformers import GptOssConfig

        config = GptOssConfig(
            intermediate_size=24,
            num_local_experts=4,
            num_experts_per_tok=2,
            sliding_window=64,
            layer_types=["sliding_attention", "full_attention"],
            rope_theta=150000.0,
            **common,
        )
        config.architectures = ["GptOssForCausalLM"]
    return config.to_dict()


def _random_lm(kind: str, config: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    """The language model's tensors under the names the InternVL code saved (transformers 4.x)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    cfg = AutoConfig.for_model(
        config["model_type"], **{k: v for k, v in config.items() if k != "model_type"}
    )
    model = AutoModelForCausalLM.from_config(cfg)
    for param in model.parameters():
        torch.nn.init.normal_(param, std=0.2)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if kind != "qwen3_moe":
        return state
    out = {}
    for name, tensor in state.items():  # one module per expert: what a 4.x-era checkpoint holds
        if name.endswith("mlp.experts.gate_up_proj"):
            rows = config["moe_intermediate_size"]
            for e in range(tensor.shape[0]):
                out[name.replace("gate_up_proj", f"{e}.gate_proj.weight")] = (
                    torch.randn(rows, HIDDEN) * 0.2
                )
                out[name.replace("gate_up_proj", f"{e}.up_proj.weight")] = (
                    torch.randn(rows, HIDDEN) * 0.2
                )
        elif name.endswith("mlp.experts.down_proj"):
            for e in range(tensor.shape[0]):
                out[name.replace("down_proj", f"{e}.down_proj.weight")] = (
                    torch.randn(HIDDEN, config["moe_intermediate_size"]) * 0.2
                )
        else:
            out[name] = tensor
    return out


def build(folder: Path, kind: str, seed: int = 0) -> Path:
    """An InternVL-chat checkpoint with a `kind` language model (qwen3, qwen3_moe, gpt_oss) in `folder`,
    and its language model alone in `folder.parent / (folder.name + "-lm")`."""
    from anycap_plugin.testing.tiny_models import build_tokenizer

    folder.mkdir(parents=True)
    extra = INTERNVL_TOKENS + {"gpt_oss": GPT_OSS_TOKENS, "phi3": PHI3_TOKENS}.get(kind, ())
    tokenizer = build_tokenizer(folder, vocab_size=VOCAB - 64, extra_special_tokens=extra)
    template = {"gpt_oss": "internvl3_5_gpt_oss", "phi3": "phi3-chat"}.get(kind, "internvl2_5")
    tok_config = json.loads((folder / "tokenizer_config.json").read_text())
    tok_config["tokenizer_class"] = (
        "Qwen2Tokenizer"  # what the published Qwen3 / GPT-OSS folders declare
    )
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2))

    llm = llm_config(kind, VOCAB)
    source = json.loads((ORACLE / "checkpoint" / "config.json").read_text())
    source.update(llm_config=llm, template=template, max_dynamic_patch=4)
    source["hidden_size"] = HIDDEN
    (folder / "config.json").write_text(json.dumps(source, indent=2))

    torch.manual_seed(seed + 1)
    vit = {
        k: v
        for k, v in load_file(str(ORACLE / "checkpoint" / "model.safetensors")).items()
        if k.startswith("vision_model.")
    }
    width = (
        source["vision_config"]["hidden_size"] * 4
    )  # pixel shuffle at 0.5: four patches per token
    mlp1 = {
        "mlp1.0.weight": 1 + 0.1 * torch.randn(width),
        "mlp1.0.bias": 0.1 * torch.randn(width),
        "mlp1.1.weight": 0.2 * torch.randn(HIDDEN, width),
        "mlp1.1.bias": 0.1 * torch.randn(HIDDEN),
        "mlp1.3.weight": 0.2 * torch.randn(HIDDEN, HIDDEN),
        "mlp1.3.bias": 0.1 * torch.randn(HIDDEN),
    }
    language = _random_lm(kind, llm, seed)
    save_file(
        {**vit, **mlp1, **{f"language_model.{k}": v for k, v in language.items()}},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )

    alone = folder.parent / (folder.name + "-lm")
    alone.mkdir()
    (alone / "config.json").write_text(json.dumps(llm, indent=2))
    save_file(language, str(alone / "model.safetensors"), metadata={"format": "pt"})
    assert tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>") < VOCAB
    return folder
