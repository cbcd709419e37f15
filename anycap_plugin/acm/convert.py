"""Convert checkpoints in the InternVL-chat layout (the published AnyCap checkpoints) to ACM.

Source layout, as InternVL-chat saves it:
- `vision_model.*`: InternViT with its original names (`encoder.layers.N.attn.qkv`, `ls1`,
  `norm1`, `embeddings.class_embedding`, ...). Fused `attn.qkv` is split into q/k/v.
- `mlp1.0/1/3`: LayerNorm, Linear, (GELU), Linear: the vision projector.
- `language_model.*`: the LM in its own naming. Qwen2 names are kept; InternLM2 names
  (`tok_embeddings`, fused `attention.wqkv`, `feed_forward.w1/w2/w3`, `output`) become
  Llama names, with `wqkv` split by key-value group.
- audio branch: `audio_model.*` (an AST state dict) and `mlp2.0/1/3` (the audio projector).
  The released code names these parts this way in our reading; a checkpoint that names them
  otherwise fails loudly with the unexpected keys listed.

    python -m anycap_plugin.acm.convert SRC_FOLDER DST_FOLDER --config acm_config.json
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
import torch

from ..errors import AnyCapError
from .configuration_acm import ACMConfig

_VISION_RENAMES = (
    (r"\.layers\.", ".layer."), (r"class_embedding", "cls_token"), (r"position_embedding\b", "position_embeddings"),
    (r"patch_embedding\.", "patch_embeddings.projection."), (r"\.ls(\d)\b", r".lambda_\1"),
    (r"\.attn\.proj\.", ".attention.projection_layer."), (r"\.attn\.", ".attention."),
    (r"\.norm1\.", ".layernorm_before."), (r"\.norm2\.", ".layernorm_after."),
)
_INTERNLM2_RENAMES = (
    (r"\.tok_embeddings\.", ".embed_tokens."), (r"\.attention\.wo\.", ".self_attn.o_proj."),
    (r"\.feed_forward\.w1\.", ".mlp.gate_proj."), (r"\.feed_forward\.w2\.", ".mlp.down_proj."),
    (r"\.feed_forward\.w3\.", ".mlp.up_proj."), (r"\.attention_norm\.", ".input_layernorm."),
    (r"\.ffn_norm\.", ".post_attention_layernorm."), (r"^language_model\.output\.", "language_model.lm_head."),
)
_PROJECTORS = {"mlp1.0.": "vision_projector.norm.", "mlp1.1.": "vision_projector.fc1.",
               "mlp1.3.": "vision_projector.fc2.", "mlp2.0.": "audio_projector.norm.",
               "mlp2.1.": "audio_projector.fc1.", "mlp2.3.": "audio_projector.fc2."}


def _rename(key: str, rules: tuple[tuple[str, str], ...]) -> str:
    for pattern, replacement in rules:
        key = re.sub(pattern, replacement, key)
    return key


def _split_wqkv(weight: torch.Tensor, config: ACMConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """InternLM2's fused wqkv is grouped per key-value head: [q * groups, k, v] for each head."""
    text = config.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    groups = text.num_attention_heads // text.num_key_value_heads
    w = weight.reshape(text.num_key_value_heads, groups + 2, head_dim, weight.shape[-1])
    q = w[:, :groups].reshape(-1, weight.shape[-1])
    return q, w[:, -2].reshape(-1, weight.shape[-1]), w[:, -1].reshape(-1, weight.shape[-1])


def convert_state_dict(original: dict[str, torch.Tensor], config: ACMConfig) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    vision_dim = config.vision_config.hidden_size if config.vision_config is not None else 0
    for key, value in original.items():
        if key.startswith("vision_model."):
            new = _rename(key, _VISION_RENAMES)
            if ".attention.qkv." in new:
                for i, part in enumerate(("q_proj", "k_proj", "v_proj")):
                    out[new.replace(".qkv.", f".{part}.")] = value[i * vision_dim:(i + 1) * vision_dim].clone()
                continue
            out[new] = value
        elif key.startswith("audio_model."):
            out["audio_encoder.model." + key[len("audio_model."):]] = value
        elif key.startswith("language_model."):
            new = _rename(key, _INTERNLM2_RENAMES)
            if ".attention.wqkv." in new:
                for part, tensor in zip(("q_proj", "k_proj", "v_proj"), _split_wqkv(value, config)):
                    out[new.replace(".attention.wqkv.", f".self_attn.{part}.")] = tensor.contiguous()
                continue
            out[new] = value
        else:
            prefix = next((p for p in _PROJECTORS if key.startswith(p)), None)
            if prefix is None:
                raise AnyCapError(f"Unknown key {key!r} in the InternVL-chat checkpoint.",
                                  hint="Only vision_model.*, audio_model.*, language_model.*, mlp1.* and mlp2.* convert.")
            out[_PROJECTORS[prefix] + key[len(prefix):]] = value
    return out


def convert_checkpoint(src: str | Path, dst: str | Path, config: ACMConfig) -> Path:
    """Read `src/*.safetensors`, convert, load strictly into ACM, save to `dst` (weights and config)."""
    from safetensors.torch import load_file

    from .modeling_acm import ACMForConditionalGeneration

    files = sorted(Path(src).glob("*.safetensors"))
    if not files:
        raise AnyCapError(f"No .safetensors files in {str(src)!r}.", hint="Pickled .bin checkpoints are not read.")
    original: dict[str, torch.Tensor] = {}
    for f in files:
        original.update(load_file(str(f)))
    converted = convert_state_dict(original, config)
    model = ACMForConditionalGeneration(config)
    expected = set(model.state_dict())
    tied = {"language_model.lm_head.weight"} if config.text_config.tie_word_embeddings else set()
    missing = sorted(expected - set(converted) - tied)
    unexpected = sorted(set(converted) - expected)
    if missing or unexpected:
        raise AnyCapError(f"The converted checkpoint does not fit ACM: missing {missing[:8]}, unexpected {unexpected[:8]}.",
                          hint="Check that the config matches the checkpoint (sizes, LM type, encoders present).")
    model.load_state_dict(converted, strict=not tied)
    model.save_pretrained(str(dst))
    return Path(dst)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--config", required=True, help="ACM config.json describing the target (sizes, token ids)")
    args = p.parse_args()
    config = ACMConfig(**json.loads(Path(args.config).read_text()))
    print(convert_checkpoint(args.src, args.dst, config))


if __name__ == "__main__":
    main()

