"""Tiny random-weight models saved to disk, offline: a tokenizer trained here with the `tokenizers`
library, then Qwen2, Qwen2.5-VL, InternVL, Qwen3-VL, Qwen3-Omni, Audio Flamingo 3, Gemma 3n and ACM at toy sizes (and ACM at the real 2B size for
serving benchmarks). `anycap demo` runs its smoke chain on the tiny ACM; tests and benchmarks
load them through the same code paths as real checkpoints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_CORPUS = """A man in a black vest gestures on the sidelines near players in blue tracksuits.
The giraffe is centered in the frame, equidistant from the left and right edges.
In this audio, we hear a man talking while a saw cuts through wood in a steady rhythm.
A person stands next to a bed holding a bouquet of red flowers in a yellow room.
The camera pans slowly from left to right across a quiet harbour at dawn.
Describe the background of the image in at most three sentences.
Write a short poem about the scene, exactly four lines.
The existing caption is: a dog runs on the beach. The requirement is: a brief caption.
Brief, detail, genre, length, theme, background, event, instance, action, appearance,
position, movement, perspective, region. Image, video, audio, frame, sound, music, speech.
"""


def build_tokenizer(
    folder: str | os.PathLike,
    vocab_size: int = 512,
    extra_special_tokens: tuple[str, ...] = (),
    pad_vocab_to: int | None = None,
) -> Any:
    """Train a byte-level BPE tokenizer offline and save it as a transformers fast tokenizer.

    `pad_vocab_to` appends placeholder tokens (`<unused_N>`) until the vocabulary has that size, so a
    random-weight model with a real model's vocabulary can decode every id it samples.
    """
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>", *extra_special_tokens]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    if pad_vocab_to is not None:
        spec = json.loads(tok.to_str())
        vocab = spec["model"]["vocab"]
        if pad_vocab_to < len(vocab):
            raise ValueError(
                f"pad_vocab_to={pad_vocab_to} is below the trained vocabulary ({len(vocab)})"
            )
        vocab.update({f"<unused_{i}>": i for i in range(len(vocab), pad_vocab_to)})
        tok = Tokenizer.from_str(json.dumps(spec))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=["<|im_start|>", "<|im_end|>", *extra_special_tokens],
    )
    fast.padding_side = "left"
    fast.save_pretrained(str(folder))
    return fast


def build_tiny_causal_lm(
    folder: str | os.PathLike,
    seed: int = 0,
    hidden_size: int = 32,
    num_layers: int = 2,
    extra_special_tokens: tuple[str, ...] = (),
) -> Path:
    """A random-weight Qwen2 language model and its tokenizer, saved as safetensors in `folder`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(folder, extra_special_tokens=extra_special_tokens)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


def _chat_template(image_markup: str, video_markup: str) -> str:
    """A ChatML template that places each image or video part's markup before the text."""
    return (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
        "{% for part in message['content'] %}"
        f"{{% if part['type'] == 'image' %}}{image_markup}{{% elif part['type'] == 'video' %}}{video_markup}"
        "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
        "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


def _tiny_text_config(tokenizer: Any, hidden: int, init_std: float) -> dict[str, Any]:
    return {
        "model_type": "qwen2",
        "vocab_size": len(tokenizer),
        "hidden_size": hidden,
        "intermediate_size": hidden * 2,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": None,
        "tie_word_embeddings": True,
        "initializer_range": init_std,
    }


def build_tiny_qwen2_5_vl(
    folder: str | os.PathLike, seed: int = 0, hidden_size: int = 32, init_std: float = 0.02
) -> Path:
    """A random-weight Qwen2.5-VL (transformers' native class) with its processor, saved to `folder`."""
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
    )
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    folder = Path(folder)
    marks = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
    tok = build_tokenizer(folder, extra_special_tokens=marks)
    pixels = {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 16}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels),
        tokenizer=tok,
        chat_template=_chat_template(
            "<|vision_start|><|image_pad|><|vision_end|>",
            "<|vision_start|><|video_pad|><|vision_end|>",
        ),
    )
    processor.save_pretrained(str(folder))
    ids = {t: tok.convert_tokens_to_ids(t) for t in marks}
    text = _tiny_text_config(tok, hidden_size, init_std)
    text.pop("model_type")
    half = (
        hidden_size // text["num_attention_heads"] // 2
    )  # mrope sections (t, h, w) split half a head
    t = half // 4
    text["rope_scaling"] = {
        "type": "mrope",
        "mrope_section": [t, (half - t) // 2, half - t - (half - t) // 2],
    }
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
            "initializer_range": init_std,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(str(folder))
    return folder


def build_tiny_qwen2_audio(
    folder: str | os.PathLike, seed: int = 0, hidden_size: int = 32, init_std: float = 0.02
) -> Path:
    """A random-weight Qwen2-Audio (transformers' native class) with its processor (Whisper features, the
    processor's own chat template), saved to `folder`."""
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    folder = Path(folder)
    tok = build_tokenizer(
        folder, extra_special_tokens=("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")
    )
    Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tok
    ).save_pretrained(str(folder))
    text = _tiny_text_config(tok, hidden_size, init_std)
    text.pop("model_type")
    config = Qwen2AudioConfig(
        audio_config={
            "num_mel_bins": 128,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "d_model": 16,
            "initializer_range": init_std,
        },
        text_config=text,
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    Qwen2AudioForConditionalGeneration(config).save_pretrained(str(folder))
    return folder


OMNI_TOKENS = {
    "image_token": "<|IMAGE|>",
    "audio_token": "<|AUDIO|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}


def build_tiny_qwen2_5_omni(
    folder: str | os.PathLike,
    seed: int = 0,
    hidden_size: int = 32,
    whole: bool = False,
    init_std: float = 0.02,
) -> Path:
    """A random-weight Qwen2.5-Omni Thinker (transformers' native class) with its processor (Qwen2-VL image
    and video processors, Whisper features), saved to `folder`; `whole` saves it inside the whole model
    (`Qwen2_5OmniForConditionalGeneration`, the published layout; its talker not built)."""
    import json

    import torch
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2_5OmniConfig,
        Qwen2_5OmniForConditionalGeneration,
        Qwen2_5OmniProcessor,
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
        WhisperFeatureExtractor,
    )
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    folder = Path(folder)
    build_tokenizer(folder, extra_special_tokens=tuple(OMNI_TOKENS.values()))
    config_file = folder / "tokenizer_config.json"
    tok_config = json.loads(config_file.read_text())
    tok_config["extra_special_tokens"] = (
        OMNI_TOKENS  # the named tokens the processor reads off the tokenizer
    )
    config_file.write_text(json.dumps(tok_config))
    tok = PreTrainedTokenizerFast.from_pretrained(str(folder))
    pixels = {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 16}
    template = _chat_template(
        "<|vision_bos|><|IMAGE|><|vision_eos|>", "<|vision_bos|><|VIDEO|><|vision_eos|>"
    ).replace(
        "{% elif part['type'] == 'text' %}",
        "{% elif part['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
        "{% elif part['type'] == 'text' %}",
    )
    Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels),
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
        tokenizer=tok,
        chat_template=template,
    ).save_pretrained(str(folder))
    ids = {k: tok.convert_tokens_to_ids(v) for k, v in OMNI_TOKENS.items()}
    text = _tiny_text_config(tok, hidden_size, init_std)
    text.pop("model_type")
    half = hidden_size // text["num_attention_heads"] // 2
    t = half // 4
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 1e6,
        "mrope_section": [t, (half - t) // 2, half - t - (half - t) // 2],
    }
    thinker = Qwen2_5OmniThinkerConfig(
        audio_config={
            "num_mel_bins": 128,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "d_model": 16,
            "output_dim": hidden_size,
            "n_window": 100,
            "initializer_range": init_std,
        },
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "fullatt_block_indexes": [0],
            "window_size": 56,
            "initializer_range": init_std,
        },
        text_config=text,
        audio_token_index=ids["audio_token"],
        image_token_index=ids["image_token"],
        video_token_index=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"],
        audio_end_token_id=ids["audio_eos_token"],
        vision_start_token_id=ids["vision_bos_token"],
        vision_end_token_id=ids["vision_eos_token"],
        initializer_range=init_std,
    )
    torch.manual_seed(seed)
    if whole:
        Qwen2_5OmniForConditionalGeneration(
            Qwen2_5OmniConfig(thinker_config=thinker.to_dict(), enable_audio_output=False)
        ).save_pretrained(str(folder))
    else:
        Qwen2_5OmniThinkerForConditionalGeneration(thinker).save_pretrained(str(folder))
    return folder


def build_tiny_internvl(
    folder: str | os.PathLike,
    seed: int = 0,
    hidden_size: int = 32,
    init_std: float = 0.02,
    text_model: str = "qwen2",
) -> Path:
    """A random-weight InternVL (transformers' native class) with its processor, saved to `folder`;
    `text_model="qwen3"` is InternVL3.5's `-HF` layout (a Qwen3 language model inside)."""
    import torch
    from transformers import (
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        PreTrainedTokenizerFast,
    )
    from transformers.models.got_ocr2.image_processing_got_ocr2 import GotOcr2ImageProcessor
    from transformers.models.internvl.video_processing_internvl import InternVLVideoProcessor

    folder = Path(folder)
    specials = {
        "start_image_token": "<img>",
        "end_image_token": "</img>",
        "context_image_token": "<IMG_CONTEXT>",
        "video_token": "<video>",
    }
    build_tokenizer(folder, extra_special_tokens=tuple(specials.values()))
    tok = PreTrainedTokenizerFast.from_pretrained(str(folder), extra_special_tokens=specials)
    tok.padding_side = "left"
    processor = InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(
            size={"height": 56, "width": 56}, crop_to_patches=True, min_patches=1, max_patches=4
        ),
        video_processor=InternVLVideoProcessor(size={"height": 56, "width": 56}),
        tokenizer=tok,
        image_seq_length=4,
        chat_template=_chat_template("<IMG_CONTEXT>\n", "<video>\n"),
    )
    processor.save_pretrained(str(folder))
    config = InternVLConfig(
        vision_config={
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "image_size": [56, 56],
            "patch_size": [14, 14],
            "initializer_range": init_std,
        },
        text_config={
            **_tiny_text_config(tok, hidden_size, init_std),
            "model_type": text_model,
            "head_dim": hidden_size // 4,
        },
        image_token_id=tok.context_image_token_id,
        downsample_ratio=0.5,
        image_seq_length=4,
    )
    torch.manual_seed(seed)
    InternVLForConditionalGeneration(config).save_pretrained(str(folder))
    return folder


def build_tiny_acm(
    folder: str | os.PathLike,
    seed: int = 0,
    hidden_size: int = 32,
    vision: bool = True,
    audio: bool = True,
    init_std: float = 0.02,
) -> Path:
    """A random-weight ACM (tiny InternViT, AST and Qwen2) with its processor, saved to `folder`."""
    folder = Path(folder)
    tok = _acm_tokenizer(folder)
    config = _acm_config(
        tok,
        image_size=56,
        text=_tiny_text_config(tok, hidden_size, init_std),
        vision={
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "image_size": [56, 56],
            "patch_size": [14, 14],
            "initializer_range": init_std,
        }
        if vision
        else None,
        audio={
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "num_mel_bins": 128,
            "max_length": 64,
            "frequency_stride": 10,
            "time_stride": 10,
        }
        if audio
        else None,
    )
    return _save_acm(folder, tok, config, seed=seed, max_patches=4, num_frames=4)


ACM_2B_VOCAB = 92553  # InternVL2.5-2B's language model (InternLM2.5-1.8B) with its special tokens


def acm_2b_config(tok: Any) -> Any:
    """ACM at the real AnyCap 2B size: InternVL2.5-2B's parts, plus AST audio (2.30 billion parameters).

    InternViT-300M-448px (24 layers, width 1024), AST-base (12 layers, width 768), and InternLM2.5-1.8B
    in the Llama layout that `anycap_plugin.acm.convert` writes (24 layers, width 2048, 16 heads, 8 key-value
    heads, MLP 8192, vocabulary 92553).
    """
    text = {
        "model_type": "llama",
        "vocab_size": ACM_2B_VOCAB,
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "max_position_embeddings": 32768,
        "rope_theta": 1_000_000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": False,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "bos_token_id": None,
    }
    # InternViT-300M-448px is the default InternVLVisionConfig size, with its qkv biases; AST-base is ASTConfig's
    return _acm_config(tok, image_size=448, vision={"attention_bias": True}, audio={}, text=text)


def build_acm_2b(folder: str | os.PathLike, seed: int = 0, device: str = "cpu") -> Path:
    """A random-weight ACM at the real 2B size (`acm_2b_config`), saved in bf16 (4.3 GB), for serving
    benchmarks: a step's cost depends on the sizes, not on the values. The tokenizer is trained here
    and padded to the real vocabulary; 448 px tiles (up to 12 and a thumbnail), 8 video frames.
    Building on CPU takes about 80 s and 10 GB of memory; on a GPU, pass device="cuda"."""
    import torch

    folder = Path(folder)
    tok = _acm_tokenizer(folder, pad_vocab_to=ACM_2B_VOCAB)
    return _save_acm(
        folder,
        tok,
        acm_2b_config(tok),
        seed=seed,
        max_patches=12,
        num_frames=8,
        device=device,
        dtype=torch.bfloat16,
    )


def _acm_tokenizer(folder: Path, pad_vocab_to: int | None = None) -> Any:
    from transformers import PreTrainedTokenizerFast

    from ..acm.processing_acm import SPECIAL_TOKENS

    build_tokenizer(folder, extra_special_tokens=SPECIAL_TOKENS, pad_vocab_to=pad_vocab_to)
    return PreTrainedTokenizerFast.from_pretrained(str(folder))


def _acm_config(
    tok: Any, image_size: int, vision: dict | None, audio: dict | None, text: dict
) -> Any:
    from ..acm import ACMConfig
    from ..acm.processing_acm import AUDIO_CONTEXT, IMG_CONTEXT

    return ACMConfig(
        vision_config=vision,
        audio_config=audio,
        text_config=text,
        image_token_id=tok.convert_tokens_to_ids(IMG_CONTEXT),
        audio_token_id=tok.convert_tokens_to_ids(AUDIO_CONTEXT),
        image_size=image_size,
        audio_pool=4,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )


def _save_acm(
    folder: Path,
    tok: Any,
    config: Any,
    *,
    seed: int,
    max_patches: int,
    num_frames: int,
    device: str = "cpu",
    dtype: Any = None,
) -> Path:
    """The processor and random weights (built on `device`, saved in `dtype`) of `config` into `folder`."""
    import torch

    from ..acm import ACMForConditionalGeneration, ACMImageProcessor, ACMProcessor
    from ..acm.processing_acm import ast_feature_extractor

    vision, audio, size = config.vision_config, config.audio_config, config.image_size
    processor = ACMProcessor(
        image_processor=ACMImageProcessor(image_size=size, max_dynamic_patch=max_patches),
        feature_extractor=ast_feature_extractor(max_length=audio.max_length if audio else 64),
        tokenizer=tok,
        image_seq_length=config.image_seq_length if vision is not None else 0,
        audio_seq_length=config.audio_seq_length if audio is not None else 0,
        num_frames=num_frames,
    )
    processor.save_pretrained(str(folder))
    torch.manual_seed(seed)
    config.anycap_random_weights = True  # its output is noise: records say so, and are not judged
    with torch.device(device):
        model = ACMForConditionalGeneration(config)
    if dtype is not None:
        model = model.to(dtype)
    model.generation_config.eos_token_id = [
        tok.convert_tokens_to_ids(processor.stop_token),
        tok.eos_token_id,
    ]
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(str(folder))
    return folder


def build_tiny_qwen3_vl(
    folder: str | os.PathLike,
    seed: int = 0,
    hidden_size: int = 32,
    init_std: float = 0.02,
    moe: bool = False,
) -> Path:
    """A random-weight Qwen3-VL (dense, or `moe` with 4 experts: transformers' native classes) with its
    processor (16 px patches, video frames with their timestamps), saved to `folder`."""
    import torch
    from transformers import Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    if moe:
        from transformers import Qwen3VLMoeConfig as Config
        from transformers import Qwen3VLMoeForConditionalGeneration as Model
    else:
        from transformers import Qwen3VLConfig as Config
        from transformers import Qwen3VLForConditionalGeneration as Model

    folder = Path(folder)
    marks = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
    tok = build_tokenizer(folder, extra_special_tokens=marks)
    pixels = {"shortest_edge": 32 * 32 * 4, "longest_edge": 32 * 32 * 16}
    Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=16),
        video_processor=Qwen3VLVideoProcessor(size=pixels, cap_pixels_per_frame=True),
        tokenizer=tok,
        chat_template=_chat_template(
            "<|vision_start|><|image_pad|><|vision_end|>",
            "<|vision_start|><|video_pad|><|vision_end|>",
        ),
    ).save_pretrained(str(folder))
    ids = {t: tok.convert_tokens_to_ids(t) for t in marks}
    text = _tiny_text_config(tok, hidden_size, init_std)
    text.pop("model_type")
    half = hidden_size // text["num_attention_heads"] // 2
    t = half // 4
    text["head_dim"] = hidden_size // text["num_attention_heads"]
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 5e6,
        "mrope_section": [t, (half - t) // 2, half - t - (half - t) // 2],
        "mrope_interleaved": True,
    }
    if moe:
        text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=hidden_size)
    config = Config(
        text_config=text,
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0],
            "initializer_range": init_std,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    Model(config).save_pretrained(str(folder))
    return folder


def build_tiny_audio_flamingo3(
    folder: str | os.PathLike, seed: int = 0, hidden_size: int = 32, init_std: float = 0.02
) -> Path:
    """A random-weight Audio Flamingo 3 (transformers' native class) with its processor (Whisper
    features in 30 s windows, up to 10 minutes), saved to `folder`."""
    import torch
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3ForConditionalGeneration,
        AudioFlamingo3Processor,
        WhisperFeatureExtractor,
    )

    folder = Path(folder)
    tok = build_tokenizer(folder, extra_special_tokens=("<sound>",))
    AudioFlamingo3Processor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128, return_attention_mask=True),
        tokenizer=tok,
        chat_template=_chat_template("", "").replace(
            "{% elif part['type'] == 'text' %}",
            "{% elif part['type'] == 'audio' %}<sound>{% elif part['type'] == 'text' %}",
        ),
    ).save_pretrained(str(folder))
    text = _tiny_text_config(tok, hidden_size, init_std)
    config = AudioFlamingo3Config(
        audio_config={
            "num_mel_bins": 128,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "hidden_size": 16,
            "initializer_range": init_std,
        },
        text_config=text,
        audio_token_id=tok.convert_tokens_to_ids("<sound>"),
    )
    torch.manual_seed(seed)
    AudioFlamingo3ForConditionalGeneration(config).save_pretrained(str(folder))
    return folder


def build_tiny_qwen3_omni(
    folder: str | os.PathLike,
    seed: int = 0,
    hidden_size: int = 32,
    whole: bool = False,
    init_std: float = 0.02,
) -> Path:
    """A random-weight Qwen3-Omni MoE Thinker (transformers' native class, 4 experts) with its processor
    (16 px patches, Whisper features), saved to `folder`; `whole` saves it inside the whole model
    (`Qwen3OmniMoeForConditionalGeneration`, the published layout; its talker not built)."""
    import json

    import torch
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen3OmniMoeConfig,
        Qwen3OmniMoeForConditionalGeneration,
        Qwen3OmniMoeProcessor,
        Qwen3OmniMoeThinkerConfig,
        Qwen3OmniMoeThinkerForConditionalGeneration,
        WhisperFeatureExtractor,
    )
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    folder = Path(folder)
    build_tokenizer(folder, extra_special_tokens=tuple(OMNI_TOKENS.values()))
    config_file = folder / "tokenizer_config.json"
    tok_config = json.loads(config_file.read_text())
    tok_config["extra_special_tokens"] = OMNI_TOKENS
    config_file.write_text(json.dumps(tok_config))
    tok = PreTrainedTokenizerFast.from_pretrained(str(folder))
    pixels = {"shortest_edge": 32 * 32 * 4, "longest_edge": 32 * 32 * 16}
    template = _chat_template(
        "<|vision_bos|><|IMAGE|><|vision_eos|>", "<|vision_bos|><|VIDEO|><|vision_eos|>"
    ).replace(
        "{% elif part['type'] == 'text' %}",
        "{% elif part['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
        "{% elif part['type'] == 'text' %}",
    )
    Qwen3OmniMoeProcessor(
        image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=16),
        video_processor=Qwen3VLVideoProcessor(size=pixels, cap_pixels_per_frame=True),
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
        tokenizer=tok,
        chat_template=template,
    ).save_pretrained(str(folder))
    ids = {k: tok.convert_tokens_to_ids(v) for k, v in OMNI_TOKENS.items()}
    text = _tiny_text_config(tok, hidden_size, init_std)
    text.pop("model_type")
    half = hidden_size // text["num_attention_heads"] // 2
    t = half // 4
    text.update(
        head_dim=hidden_size // text["num_attention_heads"],
        num_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=hidden_size,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 1e6,
            "mrope_section": [t, (half - t) // 2, half - t - (half - t) // 2],
            "mrope_interleaved": True,
        },
    )
    thinker = Qwen3OmniMoeThinkerConfig(
        audio_config={
            "num_mel_bins": 128,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "d_model": 16,
            "output_dim": hidden_size,
            "downsample_hidden_size": 8,
            "initializer_range": init_std,
        },
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "patch_size": 16,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0],
            "initializer_range": init_std,
        },
        text_config=text,
        audio_token_id=ids["audio_token"],
        image_token_id=ids["image_token"],
        video_token_id=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"],
        user_token_id=tok.convert_tokens_to_ids("<|im_start|>"),
        initializer_range=init_std,
        tie_word_embeddings=True,
    )
    thinker.vision_start_token_id = ids["vision_bos_token"]
    thinker.vision_end_token_id = ids["vision_eos_token"]
    torch.manual_seed(seed)
    if whole:
        Qwen3OmniMoeForConditionalGeneration(
            Qwen3OmniMoeConfig(thinker_config=thinker.to_dict(), enable_audio_output=False)
        ).save_pretrained(str(folder))
    else:
        Qwen3OmniMoeThinkerForConditionalGeneration(thinker).save_pretrained(str(folder))
    return folder


GEMMA3N_TOKENS = {  # the named tokens Gemma3nProcessor reads off the tokenizer
    "boi_token": "<start_of_image>",
    "boa_token": "<start_of_audio>",
    "eoi_token": "<end_of_image>",
    "image_token": "<image_soft_token>",
    "eoa_token": "<end_of_audio>",
    "audio_token": "<audio_soft_token>",
}


def build_tiny_gemma3n(
    folder: str | os.PathLike, seed: int = 0, hidden_size: int = 32, init_std: float = 0.02
) -> Path:
    """A random-weight Gemma 3n (transformers' native class; its vision tower timm's
    `mobilenetv5_300m_enc` at 1/16 of its channels, its Conformer audio tower one layer deep) with its
    processor (64 px images as 4 soft tokens, audio in 30 s windows), saved to `folder`.

    The token layout is Gemma 3n's: text ids, then the vision ids (from `<end_of_image>`, the image
    soft token among them), then the audio ids (from `<end_of_audio>`), each embedded by its tower's
    own table; `<start_of_image>` and `<start_of_audio>` are text ids, as in the published vocabulary."""
    import json

    import torch
    from tokenizers import AddedToken
    from transformers import (
        Gemma3nAudioFeatureExtractor,
        Gemma3nConfig,
        Gemma3nForConditionalGeneration,
        Gemma3nProcessor,
        PreTrainedTokenizerFast,
        SiglipImageProcessor,
    )

    folder = Path(folder)
    text_vocab, tower_vocab = 512, 4
    turns = ("<start_of_turn>", "<end_of_turn>")
    tok = build_tokenizer(
        folder,
        extra_special_tokens=(*turns, GEMMA3N_TOKENS["boi_token"], GEMMA3N_TOKENS["boa_token"]),
        pad_vocab_to=text_vocab,
    )
    tower_tokens = []
    for first, soft in (("eoi_token", "image_token"), ("eoa_token", "audio_token")):
        tower_tokens += [GEMMA3N_TOKENS[first], GEMMA3N_TOKENS[soft]]
        tower_tokens += [f"<unused_{first}_{i}>" for i in range(tower_vocab - 2)]
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in tower_tokens])
    tok.save_pretrained(str(folder))
    config_file = folder / "tokenizer_config.json"
    tok_config = json.loads(config_file.read_text())
    tok_config["extra_special_tokens"] = GEMMA3N_TOKENS
    config_file.write_text(json.dumps(tok_config))
    tok = PreTrainedTokenizerFast.from_pretrained(str(folder))
    template = (  # Gemma's turn markers, media parts as their soft tokens (our own template)
        "{% for message in messages %}<start_of_turn>"
        "{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] | trim }}{% else %}"
        "{% for part in message['content'] %}"
        "{% if part['type'] == 'image' %}<image_soft_token>"
        "{% elif part['type'] == 'audio' %}<audio_soft_token>"
        "{% elif part['type'] == 'text' %}{{ part['text'] | trim }}{% endif %}{% endfor %}{% endif %}"
        "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    )
    soft_tokens = 4  # msfa_output_resolution 2: a 2 x 2 grid per image
    Gemma3nProcessor(
        feature_extractor=Gemma3nAudioFeatureExtractor(),
        image_processor=SiglipImageProcessor(size={"height": 64, "width": 64}),
        tokenizer=tok,
        chat_template=template,
        image_seq_length=soft_tokens,
    ).save_pretrained(str(folder))
    ids = {k: tok.convert_tokens_to_ids(v) for k, v in GEMMA3N_TOKENS.items()}
    heads = 4
    config = Gemma3nConfig(
        text_config={
            "vocab_size": text_vocab + 2 * tower_vocab,
            "vocab_size_per_layer_input": text_vocab,
            "hidden_size": hidden_size,
            "hidden_size_per_layer_input": 8,
            "intermediate_size": hidden_size * 2,
            "num_hidden_layers": 2,
            "num_attention_heads": heads,
            "num_key_value_heads": 2,
            "head_dim": hidden_size // heads,
            "layer_types": ["sliding_attention", "full_attention"],
            "num_kv_shared_layers": 0,
            "laurel_rank": 4,
            "sliding_window": 64,
            "max_position_embeddings": 4096,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
            "bos_token_id": None,
            "initializer_range": init_std,
        },
        vision_config={
            "architecture": "mobilenetv5_300m_enc",
            "model_args": {"channel_multiplier": 0.0625, "msfa_output_resolution": 2},
            "vocab_size": tower_vocab,
            "vocab_offset": ids["eoi_token"],
            "initializer_range": init_std,
        },
        audio_config={
            "vocab_size": tower_vocab,
            "vocab_offset": ids["eoa_token"],
            "hidden_size": 16,
            "conf_num_attention_heads": 2,
            "conf_num_hidden_layers": 1,
            "sscp_conv_channel_size": [8, 4],
            "initializer_range": init_std,
        },
        vision_soft_tokens_per_image=soft_tokens,
        boi_token_id=ids["boi_token"],
        eoi_token_id=ids["eoi_token"],
        image_token_id=ids["image_token"],
        boa_token_id=ids["boa_token"],
        eoa_token_id=ids["eoa_token"],
        audio_token_id=ids["audio_token"],
        initializer_range=init_std,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Gemma3nForConditionalGeneration(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(str(folder))
    return folder
