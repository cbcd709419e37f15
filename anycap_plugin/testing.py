"""Offline helpers for plugin authors and our own tests: sample media and tiny models, in one import.

They live in `anycap_plugin.samples` and `anycap_plugin.tiny_models` (production code, such as
`anycap demo`, imports those; nothing outside the tests imports this module). The offline `stats`
and `instant` captioners are `anycap_plugin.offline_captioners`.
"""

from .cache import cache_dir
from .samples import generate_video, generate_wav, sample_audio, sample_image, sample_media, sample_video
from .tiny_models import (ACM_2B_VOCAB, acm_2b_config, build_acm_2b, build_tiny_acm, build_tiny_causal_lm,
                          build_tiny_internvl, build_tiny_qwen2_5_omni, build_tiny_qwen2_5_vl, build_tiny_qwen2_audio,
                          build_tokenizer)

__all__ = ["ACM_2B_VOCAB", "acm_2b_config", "build_acm_2b", "build_tiny_acm", "build_tiny_causal_lm",
           "build_tiny_internvl", "build_tiny_qwen2_5_omni", "build_tiny_qwen2_5_vl", "build_tiny_qwen2_audio",
           "build_tokenizer", "cache_dir", "generate_video", "generate_wav", "sample_audio", "sample_image",
           "sample_media", "sample_video"]
