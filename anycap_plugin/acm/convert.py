"""InternVL-chat checkpoints (the published AnyCap ACM, official InternVL2.5, MetaCaptioner's family)
-> a complete ACM folder that `acm:` and `internvl:` both load, without remote code. Beside the model
files it writes, as transformers keeps its converters: `python -m anycap_plugin.acm.convert SRC DST`
(a folder or a hub id; the same as `anycap convert`).

Everything is read from the source `config.json`: the InternViT encoder (depth, width, `qkv_bias`,
`qk_normalization`, `norm_type`, `layer_norm_eps`), how it meets the language model
(`select_layer`, `downsample_ratio`, `ps_version`, `force_image_size`), the tiling
(`dynamic_image_size`, `max_dynamic_patch`, `use_thumbnail`), the conversation `template`, and the
`llm_config` (InternLM2, Qwen2, Llama, Phi-3). Weights keep their dtype and are mapped a tensor at
a time into output shards of a quarter of the largest source shard (peak memory near one source shard): InternViT's fused `attn.qkv` splits into q/k/v,
InternLM2's `wqkv` splits per key-value group into Llama's q/k/v, `w1/w2/w3`, `tok_embeddings` and
`output` take Llama's names, `mlp1` becomes the vision projector. Every source and target weight
name is checked before anything is written; the tokenizer becomes a fast tokenizer checked against
sentencepiece (`convert_tokenizer.py`). An audio branch is converted when it is in a layout we know (an AST
state dict under `audio_model.*` with `mlp2.*`), otherwise recorded as absent, loudly.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..errors import ConversionError, ModelNotFoundError
from .convert_tokenizer import load_tokenizer

_VISION_RENAMES = (
    (r"\.layers\.", ".layer."),
    (r"class_embedding", "cls_token"),
    (r"position_embedding\b", "position_embeddings"),
    (r"patch_embedding\.", "patch_embeddings.projection."),
    (r"\.ls(\d)\b", r".lambda_\1"),
    (r"\.attn\.proj\.", ".attention.projection_layer."),
    (r"\.attn\.", ".attention."),
    (r"\.norm1\.", ".layernorm_before."),
    (r"\.norm2\.", ".layernorm_after."),
)
_INTERNLM2_RENAMES = (
    (r"\.tok_embeddings\.", ".embed_tokens."),
    (r"\.attention\.wo\.", ".self_attn.o_proj."),
    (r"\.feed_forward\.w1\.", ".mlp.gate_proj."),
    (r"\.feed_forward\.w2\.", ".mlp.down_proj."),
    (r"\.feed_forward\.w3\.", ".mlp.up_proj."),
    (r"\.attention_norm\.", ".input_layernorm."),
    (r"\.ffn_norm\.", ".post_attention_layernorm."),
    (r"^language_model\.output\.", "language_model.lm_head."),
)
_PROJECTORS = {
    "mlp1.0.": "vision_projector.norm.",
    "mlp1.1.": "vision_projector.fc1.",
    "mlp1.3.": "vision_projector.fc2.",
    "mlp2.0.": "audio_projector.norm.",
    "mlp2.1.": "audio_projector.fc1.",
    "mlp2.3.": "audio_projector.fc2.",
}
_AUDIO_PREFIXES = ("audio_model.", "audio_encoder.", "audio_tower.", "mlp2.", "audio_projector.")
# the language models InternVL-chat checkpoints carry (InternVL 2.5: InternLM2, Qwen2, Llama, Phi-3; 3.5 and
# MetaCaptioner: Qwen3, Qwen3-MoE, GPT-OSS) -> transformers' own model type
_LLM_TYPES = {
    "InternLM2ForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "LlamaForCausalLM": "llama",
    "Phi3ForCausalLM": "phi3",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "GptOssForCausalLM": "gpt_oss",
}
_CONFIG_NOISE = {
    "architectures",
    "auto_map",
    "_name_or_path",
    "torch_dtype",
    "dtype",
    "transformers_version",
    "attn_implementation",
    "use_flash_attn",
    "_attn_implementation_autoset",
    "model_type",
    "bias",
    "use_bfloat16",
}
# an MoE expert saved one module per expert (transformers 4.x) -> stacked into transformers 5's fused tensors
_EXPERT = re.compile(
    r"^(language_model\.model\.layers\.\d+\.mlp\.experts)\.(\d+)\.(gate|up|down)_proj\.weight$"
)
WEIGHTS_INDEX = "model.safetensors.index.json"


@dataclass
class ConversionReport:
    """What a conversion did: kept for the user and written to `conversion.json` in the folder."""

    source: dict[str, Any]
    llm: str
    template: str
    tensors: int = 0
    audio: str = "absent"
    dropped: list[str] = field(default_factory=list)
    converter: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "converter": self.converter,
            "source": self.source,
            "llm": self.llm,
            "template": self.template,
            "tensors": self.tensors,
            "audio": self.audio,
            "dropped": self.dropped,
        }


def read_config(src: Path) -> dict[str, Any]:
    """The source `config.json`, refusing folders that are not InternVL-chat (and saying what they are)."""
    path = src / "config.json"
    if not path.exists():
        found = sorted(p.name for p in src.iterdir())[:12] if src.is_dir() else []
        raise ConversionError(
            f"{str(src)!r} has no config.json (found: {found or 'nothing'}).",
            hint="Pass the checkpoint folder itself (the one holding config.json and *.safetensors).",
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ConversionError(
            f"{path} is not valid JSON: {e}", hint="Re-download the checkpoint."
        ) from None
    if not is_internvl_chat(config):
        kind = config.get("model_type") or config.get("architectures") or "unknown"
        raise ConversionError(
            f"{str(src)!r} is not an InternVL-chat checkpoint (model_type/architectures: {kind}).",
            hint="Convertible folders have model_type 'internvl_chat' (InternVLChatModel); "
            "transformers-native (-hf) and AnyCap ACM folders load without converting.",
        )
    for key in ("vision_config", "llm_config"):
        if not isinstance(config.get(key), dict):
            raise ConversionError(
                f"{path} has no {key}.", hint="The checkpoint's config.json is incomplete."
            )
    return config


def is_internvl_chat(config: dict[str, Any]) -> bool:
    return config.get("model_type") == "internvl_chat" or "InternVLChatModel" in (
        config.get("architectures") or []
    )


def llm_type(config: dict[str, Any]) -> tuple[str, str]:
    """(source architecture, target model_type) of the language model."""
    arch = (config["llm_config"].get("architectures") or ["?"])[0]
    if arch not in _LLM_TYPES:
        raise ConversionError(
            f"Language model {arch!r} is not supported.",
            hint=f"Supported: {', '.join(_LLM_TYPES)}.",
        )
    return arch, _LLM_TYPES[arch]


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The `llm_config` as a transformers-native config dict (InternLM2 becomes Llama)."""
    arch, target = llm_type(config)
    llm = config["llm_config"]
    if arch == "InternLM2ForCausalLM":
        heads = llm["num_attention_heads"]
        out = {
            k: llm[k]
            for k in (
                "vocab_size",
                "hidden_size",
                "intermediate_size",
                "num_hidden_layers",
                "num_attention_heads",
                "hidden_act",
                "max_position_embeddings",
                "rms_norm_eps",
                "bos_token_id",
                "eos_token_id",
                "pad_token_id",
            )
            if k in llm
        }
        out.update(
            num_key_value_heads=llm.get("num_key_value_heads") or heads,
            head_dim=llm["hidden_size"] // heads,
            rope_theta=llm.get("rope_theta", 10000.0),
            attention_bias=bool(llm.get("bias", False)),
            mlp_bias=False,
            tie_word_embeddings=bool(llm.get("tie_word_embeddings", False)),
        )
        if llm.get("rope_scaling"):
            out["rope_scaling"] = dict(llm["rope_scaling"])
    else:
        out = {k: v for k, v in llm.items() if k not in _CONFIG_NOISE}
        out.setdefault("tie_word_embeddings", False)
    out["model_type"] = target
    return out


def vision_config(config: dict[str, Any]) -> dict[str, Any]:
    """InternViT's config in transformers' InternVLVisionConfig names."""
    v = config["vision_config"]
    size = config.get("force_image_size") or v.get("image_size", 448)
    patch = v.get("patch_size", 14)
    return {
        "hidden_size": v["hidden_size"],
        "intermediate_size": v["intermediate_size"],
        "num_hidden_layers": v["num_hidden_layers"],
        "num_attention_heads": v["num_attention_heads"],
        "num_channels": v.get("num_channels", 3),
        "image_size": [size, size],
        "patch_size": [patch, patch],
        "layer_norm_eps": v.get("layer_norm_eps", 1e-6),
        "hidden_act": v.get("hidden_act", "gelu"),
        "norm_type": v.get("norm_type", "layer_norm"),
        "attention_bias": bool(v.get("qkv_bias", True)),
        "use_qk_norm": bool(v.get("qk_normalization", False)),
        "use_absolute_position_embeddings": True,
        "use_mean_pooling": True,
        "initializer_range": v.get("initializer_range", 0.02),
    }


# ---- weight names ---------------------------------------------------------------------------

Slicer = Callable[[Any], Any]


@dataclass(frozen=True)
class Piece:
    """Part of a target that several source tensors fill: `target[index][rows]` (an MoE layer's experts,
    stacked; gate and up projections one after the other, as transformers 5 fuses them)."""

    index: int
    rows: slice = field(default_factory=lambda: slice(None))
    count: int = 1  # how many pieces make the whole target


def _rename(key: str, rules: tuple[tuple[str, str], ...]) -> str:
    for pattern, replacement in rules:
        key = re.sub(pattern, replacement, key)
    return key


def weight_targets(
    key: str, config: dict[str, Any], arch: str, audio: bool
) -> list[tuple[str, Slicer | Piece]] | None:
    """The ACM weights one source tensor becomes, each with how to cut it; None for an unknown name."""
    if key.startswith("vision_model."):
        new = _rename(key, _VISION_RENAMES)
        if ".attention.qkv." in new:
            dim = config["vision_config"]["hidden_size"]
            # cast: mypy cannot type a lambda whose extra parameter has a default
            return [
                (
                    new.replace(".qkv.", f".{p}_proj."),
                    cast(Slicer, lambda t, i=i: t[i * dim : (i + 1) * dim]),
                )
                for i, p in enumerate("qkv")
            ]
        return [(new, _same)]
    if key.startswith("language_model."):
        expert = _EXPERT.match(key)
        if expert and arch == "Qwen3MoeForCausalLM":
            return [_expert_piece(expert, config["llm_config"])]
        if arch != "InternLM2ForCausalLM":
            return [(key, _same)]
        new = _rename(key, _INTERNLM2_RENAMES)
        if ".attention.wqkv." in new:
            return [
                (
                    new.replace(".attention.wqkv.", f".self_attn.{p}_proj."),
                    cast(Slicer, lambda t, i=i: split_wqkv(t, config)[i]),  # as above
                )
                for i, p in enumerate("qkv")
            ]
        return [(new, _same)]
    if audio and key.startswith("audio_model."):
        return [("audio_encoder.model." + key[len("audio_model.") :], _same)]
    prefix = next((p for p in _PROJECTORS if key.startswith(p)), None)
    if prefix is None or (prefix.startswith("mlp2") and not audio):
        return None
    return [(_PROJECTORS[prefix] + key[len(prefix) :], _same)]


def _same(t: Any) -> Any:
    return t


def _expert_piece(match: re.Match, llm: dict[str, Any]) -> tuple[str, Piece]:
    """`...experts.E.{gate,up}_proj` -> rows of `...experts.gate_up_proj[E]`; `down_proj` -> `...experts.down_proj[E]`."""
    prefix, index, kind = match.group(1), int(match.group(2)), match.group(3)
    experts, rows = (
        cast(int, llm.get("num_experts", llm.get("num_local_experts"))),  # a MoE config has one
        llm["moe_intermediate_size"],
    )
    if kind == "down":
        return f"{prefix}.down_proj", Piece(index, count=experts)
    start = 0 if kind == "gate" else rows
    return f"{prefix}.gate_up_proj", Piece(index, slice(start, start + rows), count=2 * experts)


def split_wqkv(weight: Any, config: dict[str, Any]) -> tuple[Any, Any, Any]:
    """InternLM2's fused wqkv holds, per key-value head, its query heads, then its key, then its value."""
    llm = config["llm_config"]
    heads, kv = (
        llm["num_attention_heads"],
        llm.get("num_key_value_heads") or llm["num_attention_heads"],
    )
    head_dim, groups = llm["hidden_size"] // heads, heads // kv
    w = weight.reshape(kv, groups + 2, head_dim, weight.shape[-1])
    return (
        w[:, :groups].reshape(-1, weight.shape[-1]).contiguous(),
        w[:, -2].reshape(-1, weight.shape[-1]).contiguous(),
        w[:, -1].reshape(-1, weight.shape[-1]).contiguous(),
    )


# ---- the conversion -------------------------------------------------------------------------


def source_files(src: Path) -> list[Path]:
    from ..model_loading import require_safetensors

    return require_safetensors(src, ConversionError)


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """A safetensors file's tensor table and where its data starts."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
    except (OSError, ValueError) as e:
        raise ConversionError(
            f"{path} is not a readable safetensors file: {e}", hint="Re-download it."
        ) from None
    header.pop("__metadata__", None)
    return header, 8 + size


def _source_keys(files: list[Path]) -> dict[str, Path]:
    return {k: f for f in files for k in read_header(f)[0]}


def _audio_branch(
    config: dict[str, Any], keys: dict[str, Path]
) -> tuple[dict | None, str, list[str]]:
    """(AST config to convert it with, or None; what happened to audio; the audio weights left behind)."""
    audio_keys = sorted(k for k in keys if k.startswith(_AUDIO_PREFIXES))
    settings = {
        k: config[k]
        for k in config
        if "audio" in k.lower() and config[k] not in (None, False, {}, "")
    }
    ast = config.get("audio_config")
    if (
        audio_keys
        and isinstance(ast, dict)
        and ast.get("model_type") == "audio-spectrogram-transformer"
        and all(k.startswith(("audio_model.", "mlp2.")) for k in audio_keys)
    ):
        return ast, "converted (AST encoder and mlp2 projector)", []
    if audio_keys or settings:
        why = (
            "absent: the source checkpoint has an audio branch "
            f"({len(audio_keys)} weights, e.g. {audio_keys[:3]}; settings {sorted(settings)}) in a layout whose "
            "code is not released (the AnyCap release loads its audio encoder separately), so it was not "
            "converted. Image and video work; audio inputs are refused."
        )
        return None, why, audio_keys
    return None, "absent: the source checkpoint has no audio branch; audio inputs are refused.", []


def build_acm_config(
    config: dict[str, Any],
    tokenizer: Any,
    audio: dict | None,
    audio_note: str,
    source: dict[str, Any],
) -> Any:
    from .configuration_acm import ACMConfig
    from .processing_acm import AUDIO_CONTEXT, IMG_CONTEXT

    image_token = tokenizer.convert_tokens_to_ids(IMG_CONTEXT)
    if image_token is None or image_token == tokenizer.unk_token_id:
        raise ConversionError(
            f"The tokenizer has no {IMG_CONTEXT} token.",
            hint="InternVL-chat tokenizers carry <img>, </img> and <IMG_CONTEXT>.",
        )
    text = text_config(config)
    return ACMConfig(
        architectures=[
            "ACMForConditionalGeneration"
        ],  # what LMDeploy (and AutoModel's checks) read the model by
        vision_config=vision_config(config),
        audio_config=audio,
        text_config=text,
        image_token_id=image_token,
        audio_token_id=tokenizer.convert_tokens_to_ids(AUDIO_CONTEXT) if audio else None,
        downsample_ratio=config.get("downsample_ratio", 0.5),
        projector_hidden_act="gelu",
        image_size=config.get("force_image_size") or config["vision_config"].get("image_size", 448),
        select_layer=config.get("select_layer", -1),
        ps_version=config.get("ps_version", "v1"),
        audio_absent=None if audio else audio_note,
        source=source,
        tie_word_embeddings=text.get("tie_word_embeddings", False),
        eos_token_id=text.get("eos_token_id"),
        pad_token_id=text.get("pad_token_id"),
    )


def build_processor(config: dict[str, Any], acm_config: Any, tokenizer: Any) -> Any:
    from .chat_template import get_template
    from .image_processing_acm import ACMImageProcessor
    from .processing_acm import ACMProcessor, ast_feature_extractor

    template = get_template(config.get("template") or "internvl2_5")
    for token in (template.stop, "<img>", "</img>"):
        if tokenizer.convert_tokens_to_ids(token) in (None, tokenizer.unk_token_id):
            raise ConversionError(
                f"The tokenizer has no {token!r} token, which template {template.name!r} needs.",
                hint="The tokenizer files do not belong to this checkpoint.",
            )
    size = acm_config.image_size
    return ACMProcessor(
        image_processor=ACMImageProcessor(
            image_size=size,
            min_dynamic_patch=config.get("min_dynamic_patch", 1),
            max_dynamic_patch=config.get("max_dynamic_patch", 6),
            use_thumbnail=bool(config.get("use_thumbnail", True)),
            dynamic_image_size=bool(config.get("dynamic_image_size", True)),
        ),
        feature_extractor=ast_feature_extractor(),
        tokenizer=tokenizer,
        image_seq_length=acm_config.image_seq_length,
        audio_seq_length=acm_config.audio_seq_length if acm_config.audio_config is not None else 0,
        num_frames=8,
        template=template.name,
    )


def expected_weights(acm_config: Any) -> dict[str, tuple[int, ...]]:
    """Every weight name and shape the ACM model has, from a model built on the meta device (no memory)."""
    import torch

    from .modeling_acm import ACMForConditionalGeneration

    with torch.device("meta"):
        model = ACMForConditionalGeneration(acm_config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def plan(
    keys: dict[str, Path],
    config: dict[str, Any],
    arch: str,
    audio: bool,
    audio_left: list[str],
    expected: dict[str, tuple[int, ...]],
    tied: bool,
) -> dict[str, list[tuple[str, Slicer | Piece]]]:
    """Source name -> targets, after checking that the names fit exactly both ways."""
    mapping, unknown = {}, []
    for key in keys:
        if key in audio_left:
            continue
        targets = weight_targets(key, config, arch, audio)
        if targets is None:
            unknown.append(key)
        else:
            mapping[key] = targets
    produced = {t for targets in mapping.values() for t, _ in targets}
    pieces: dict[str, list[Piece]] = {}
    for targets in mapping.values():
        for t, cut in targets:
            if isinstance(cut, Piece):
                pieces.setdefault(t, []).append(cut)
    incomplete = sorted(t for t, got in pieces.items() if len(got) != got[0].count)
    unknown += [f"{t} (experts missing)" for t in incomplete]
    optional = {"language_model.lm_head.weight"} if tied else set()
    missing = sorted(set(expected) - produced - optional)
    unexpected = sorted(produced - set(expected))
    if unknown or missing or unexpected:
        parts = [
            f"{label} ({len(names)}): {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}"
            for label, names in (
                ("unknown source weights", unknown),
                ("target weights nothing fills", missing),
                ("converted weights ACM has no place for", unexpected),
            )
            if names
        ]
        raise ConversionError(
            "The checkpoint's weights do not fit its config: " + "; ".join(parts) + ".",
            hint="Nothing was written. The weights may be incomplete, or from another layout.",
        )
    return mapping


def write_weights(
    files: list[Path],
    mapping: dict[str, list[tuple[str, Slicer | Piece]]],
    expected: dict[str, tuple[int, ...]],
    dst: Path,
) -> int:
    """Tensors are read one at a time, mapped, and flushed to an output shard whenever a quarter of the largest
    source shard has gathered (serializing holds a second copy), so peak memory stays near one shard."""
    from safetensors.torch import save_file

    flush_at = max(min(max(f.stat().st_size for f in files) // 4, 2**30), 1)
    shards: list[tuple[Path, list[str]]] = []
    pending: dict[str, Any] = {}
    size = total = 0

    def flush() -> None:
        nonlocal pending, size
        if pending:
            path = dst / f"shard-{len(shards) + 1:05d}.safetensors"
            save_file(pending, str(path), metadata={"format": "pt"})
            shards.append((path, list(pending)))
        pending, size = {}, 0

    stacking: dict[
        str, tuple[Any, int]
    ] = {}  # targets being filled piece by piece: (tensor, pieces so far)

    def add(target: str, tensor: Any) -> None:
        nonlocal size, total
        pending[target] = tensor
        size += tensor.numel() * tensor.element_size()
        total += tensor.numel() * tensor.element_size()
        if size >= flush_at:
            flush()

    for f in files:
        for key, source in read_tensors(f, set(mapping)):
            for target, cut in mapping[key]:
                if isinstance(cut, Piece):
                    whole, filled = stacking.get(target) or (source.new_empty(expected[target]), 0)
                    slot = whole[cut.index][cut.rows]
                    if tuple(slot.shape) != tuple(source.shape):
                        raise ConversionError(
                            f"{key} -> {target}[{cut.index}]: shape {tuple(source.shape)}, the "
                            f"config says {tuple(slot.shape)}.",
                            hint="The config does not match the weights.",
                        )
                    slot.copy_(source)
                    stacking[target] = (whole, filled + 1)
                    if filled + 1 == cut.count:
                        add(target, stacking.pop(target)[0])
                    continue
                tensor = cut(source).contiguous()
                if (
                    len(mapping[key]) > 1
                ):  # slices of one tensor must not share its storage when saved
                    tensor = tensor.clone()
                if tuple(tensor.shape) != expected[target]:
                    raise ConversionError(
                        f"{key} -> {target}: shape {tuple(tensor.shape)}, the config says "
                        f"{expected[target]}.",
                        hint="The config does not match the weights.",
                    )
                add(target, tensor)
    flush()
    weight_map = {}
    for i, (path, names) in enumerate(shards):
        final = dst / f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        path.rename(final)
        weight_map.update(dict.fromkeys(names, final.name))
    (dst / WEIGHTS_INDEX).write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    return len(weight_map)


_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


def read_tensors(path: Path, wanted: set[str]) -> Iterator[tuple[str, Any]]:
    """The tensors of a safetensors file, read one by one with plain reads (no memory map, so the
    file's pages never count against this process's memory, and only the current tensor is held)."""
    import torch

    header, base = read_header(path)
    with open(path, "rb") as f:
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            if name not in wanted:
                continue
            start, end = info["data_offsets"]
            tensor = torch.empty(info["shape"], dtype=getattr(torch, _DTYPES[info["dtype"]]))
            f.seek(base + start)
            view = tensor.view(-1).view(torch.uint8).numpy() if tensor.numel() else bytearray()
            if f.readinto(view) != end - start:
                raise ConversionError(
                    f"{path} ends inside tensor {name!r}.",
                    hint="The file is truncated: re-download it.",
                )
            yield name, tensor


# Bumped when converted folders change: the cache keeps one folder per (source revision, version), so an
# upgrade converts again instead of serving an older conversion (2: config.json names its architecture).
CONVERTER_VERSION = 2


def convert_internvl_chat(
    src: str | Path, dst: str | Path, source: dict[str, Any] | None = None
) -> ConversionReport:
    """Convert `src` (an InternVL-chat folder) into a complete ACM folder at `dst`.

    Written into a temporary sibling and renamed at the end, so `dst` is complete or absent.
    """
    src, dst = Path(src), Path(dst)
    config = read_config(src)
    arch, target = llm_type(config)
    files = source_files(src)
    keys = _source_keys(files)
    tokenizer = load_tokenizer(src)
    audio, audio_note, audio_left = _audio_branch(config, keys)
    source = {"format": "internvl_chat", "path": str(src), **(source or {})}
    acm_config = build_acm_config(config, tokenizer, audio, audio_note, source)
    processor = build_processor(config, acm_config, tokenizer)
    expected = expected_weights(acm_config)
    mapping = plan(
        keys,
        config,
        arch,
        audio is not None,
        audio_left,
        expected,
        acm_config.text_config.tie_word_embeddings,
    )
    if audio_left:
        warnings.warn(f"{src}: {audio_note}", stacklevel=2)
    work = dst.with_name(dst.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        report = ConversionReport(
            converter=CONVERTER_VERSION,
            source=source,
            llm=f"{arch} -> {target}",
            template=processor.template,
            audio=audio_note if audio is None else "converted",
            dropped=audio_left,
        )
        report.tensors = write_weights(files, mapping, expected, work)
        acm_config.save_pretrained(str(work))
        processor.save_pretrained(str(work))
        generation_config(acm_config, tokenizer, processor.stop_token).save_pretrained(str(work))
        (work / "conversion.json").write_text(
            json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
        )
        shutil.rmtree(dst, ignore_errors=True)
        work.rename(dst)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return report


def generation_config(acm_config: Any, tokenizer: Any, stop: str) -> Any:
    """Greedy, stopping at the template's end-of-turn token, as the reference `chat()` does."""
    from transformers import GenerationConfig

    return GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids(stop)],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )


# ---- sources: a folder or a hub id ---------------------------------------------------------------

FETCHED = [
    "*.json",
    "*.safetensors",
    "*.model",
    "*.txt",
    "*.tiktoken",
    "*.jinja",
]  # never pickles or .py


def download(repo_id: str) -> tuple[Path, str]:
    """(snapshot folder, commit) of a hub checkpoint, fetched or taken from the local cache."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=FETCHED))
    except Exception as e:
        raise ModelNotFoundError(
            f"Cannot fetch {repo_id!r} ({type(e).__name__}: {e}).",
            hint="Offline, the files must be in the local Hugging Face cache.",
        ) from None
    return folder, folder.name


def convert(src: str, dst: str | Path) -> ConversionReport:
    """Convert a local InternVL-chat folder or a hub id into `dst` (what `anycap convert` runs)."""
    from ..model_loading import looks_like_path

    if looks_like_path(src):
        return convert_internvl_chat(Path(src).expanduser(), dst)
    folder, revision = download(src)
    return convert_internvl_chat(folder, dst, source={"id": src, "revision": revision})


def main(argv: list[str] | None = None) -> None:
    """`python -m anycap_plugin.acm.convert SRC DST`, as AnyCap 0.1 ran it (0.1's `--config` is no longer
    needed: everything is read from the source's own config.json)."""
    import argparse

    p = argparse.ArgumentParser(
        description="Convert an InternVL-chat checkpoint (folder or hub id) into an ACM folder."
    )
    p.add_argument("src")
    p.add_argument("dst")
    args = p.parse_args(argv)
    report = convert(args.src, args.dst)
    print(
        f"{args.dst}: {report.tensors} tensors, {report.llm}, template {report.template}; audio: {report.audio}"
    )


if __name__ == "__main__":
    main()
