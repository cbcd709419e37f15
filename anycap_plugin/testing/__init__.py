"""Test helpers, for our tests and benchmarks and for plugin authors: sample media, tiny random-weight
models saved to disk, and a real OpenAI-compatible server on loopback with its responders.

The library never imports this package. The one command that does is `anycap demo`, the install's
smoke test, which runs the chain on these samples and a tiny ACM (`tests/test_architecture.py`
holds both rules). The offline `stats` and `instant` captioners are production code:
`anycap_plugin.offline_captioners`.
"""

from ..cache import cache_dir
from .responders import echo_responder, fitting_answer, judge_responder, last_text, synth_responder
from .samples import (
    generate_video,
    generate_wav,
    sample_audio,
    sample_image,
    sample_media,
    sample_video,
)
from .server import ChatCompletionsServer, Fault, server_process
from .tiny_models import (
    ACM_2B_VOCAB,
    acm_2b_config,
    build_acm_2b,
    build_tiny_acm,
    build_tiny_audio_flamingo3,
    build_tiny_causal_lm,
    build_tiny_gemma3n,
    build_tiny_internvl,
    build_tiny_qwen2_5_omni,
    build_tiny_qwen2_5_vl,
    build_tiny_qwen2_audio,
    build_tiny_qwen3_omni,
    build_tiny_qwen3_vl,
    build_tokenizer,
)

__all__ = [
    "ACM_2B_VOCAB",
    "ChatCompletionsServer",
    "Fault",
    "acm_2b_config",
    "build_acm_2b",
    "build_tiny_acm",
    "build_tiny_audio_flamingo3",
    "build_tiny_causal_lm",
    "build_tiny_gemma3n",
    "build_tiny_internvl",
    "build_tiny_qwen2_5_omni",
    "build_tiny_qwen2_5_vl",
    "build_tiny_qwen2_audio",
    "build_tiny_qwen3_omni",
    "build_tiny_qwen3_vl",
    "build_tokenizer",
    "cache_dir",
    "echo_responder",
    "fitting_answer",
    "generate_video",
    "generate_wav",
    "judge_responder",
    "last_text",
    "sample_audio",
    "sample_image",
    "sample_media",
    "sample_video",
    "server_process",
    "synth_responder",
]
