"""The names plugin authors import for local transformers models, as docs/plugins.md lists them.

Kept for plugins written against it; they live in `model_loading` (checkpoints: device, dtype,
safetensors-only loading) and `transformers_captioner` (the `HFChatCaptioner` base).
"""

from .model_loading import (
    CONVERT_HINT,
    PICKLE_SUFFIXES,
    check_model_folder,
    choose_device,
    choose_dtype,
    load_pretrained,
    looks_like_path,
    preflight_model,
    require_safetensors,
)
from .transformers_captioner import (
    SAMPLING_RATE,
    GenerationOptions,
    HFChatCaptioner,
    fit_audio,
    generated_lengths,
)

__all__ = [
    "CONVERT_HINT",
    "PICKLE_SUFFIXES",
    "SAMPLING_RATE",
    "GenerationOptions",
    "HFChatCaptioner",
    "check_model_folder",
    "choose_device",
    "choose_dtype",
    "fit_audio",
    "generated_lengths",
    "load_pretrained",
    "looks_like_path",
    "preflight_model",
    "require_safetensors",
]
