"""The captioners behind the plugin (imported when one is built; see the package docstring)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from anycap_plugin import Caption
from anycap_plugin.errors import CheckpointError, ModelNotFoundError, OptionsError
from anycap_plugin.media import Media
from anycap_plugin.model_loading import load_pretrained, looks_like_path
from anycap_plugin.transformers_captioner import (
    SAMPLING_RATE,
    ChatTemplateCaptioner,
    ChatTemplateOptions,
    with_video_sound,
)

REMOTE_CODE_HINT = (
    "AnyCap runs no code shipped with a checkpoint. Use the model's transformers-native version "
    "(often an '-hf' folder), an adapter that knows it (`anycap models`), or serve it with vLLM or "
    "LMDeploy and caption through `openai:`."
)


class Qwen3VLCaptioner(ChatTemplateCaptioner):
    """Qwen3-VL, dense or MoE (the Auto class picks which from the folder's config)."""

    spec_name = "qwen3-vl"
    family = "Qwen3-VL"
    modalities = frozenset({"image", "video"})


class AudioFlamingo3Captioner(ChatTemplateCaptioner):
    """Audio Flamingo 3: the processor cuts audio into 30 s windows, up to its `max_audio_len`."""

    spec_name = "audio-flamingo-3"
    family = "Audio Flamingo 3"
    modalities = frozenset({"audio"})
    model_class = "AudioFlamingo3ForConditionalGeneration"


class Gemma3nCaptioner(ChatTemplateCaptioner):
    """Gemma 3n: images (each 256 soft tokens) and audio (30 s windows: longer is cut there and
    `meta["audio"]` says so). Video is refused, as its card lists text, image and audio input only:
    caption frames as images, or a video's sound through `Media.as_modality("audio")`."""

    spec_name = "gemma3n"
    family = "Gemma 3n"
    modalities = frozenset({"image", "audio"})
    model_class = "Gemma3nForConditionalGeneration"
    audio_seconds = 30.0  # its feature extractor's max_length (480,000 samples at 16 kHz)

    def load_model(self, model: str, **kwargs: Any) -> Any:
        import importlib.util

        if importlib.util.find_spec("timm") is None:
            raise OptionsError(
                "Gemma 3n's vision tower (MobileNetV5) is built by timm, which is not installed.",
                hint="pip install 'anycap-transformers[gemma3n]' (or: pip install timm).",
            )
        return super().load_model(model, **kwargs)


class Qwen3OmniOptions(ChatTemplateOptions):
    use_audio_in_video: bool = True  # a video's sound with its frames, as the card sends it


CONTEXT_RESERVED = (
    1024  # of Qwen3-Omni's context, tokens kept for the prompt's text and the caption
)


class Qwen3OmniCaptioner(ChatTemplateCaptioner):
    """Qwen3-Omni's Thinker (text out; a whole folder gives its Thinker, never its talker): Instruct,
    Thinking (its reasoning goes to `meta["reasoning"]`, not the caption) and Captioner, which hears
    audio alone and takes no text, as its card says (`captioner=None`: a name with "Captioner")."""

    spec_name = "qwen3-omni"
    family = "Qwen3-Omni"
    modalities = frozenset({"image", "video", "audio"})
    model_class = "Qwen3OmniMoeThinkerForConditionalGeneration"
    Options = Qwen3OmniOptions

    def __init__(
        self, model: str | None = None, *, captioner: bool | None = None, **kw: Any
    ) -> None:
        super().__init__(model, **kw)
        self._as_captioner(captioner, model)

    @classmethod
    def from_loaded(cls, model: Any, processor: Any = None, **unknown: Any) -> Any:
        self = super().from_loaded(getattr(model, "thinker", model), processor, **unknown)
        self._as_captioner(None, self.id)
        return self

    def _as_captioner(self, captioner: bool | None, name: str | None) -> None:
        if captioner if captioner is not None else "captioner" in str(name).lower():
            self.sends_instruction = False
            self.modalities = frozenset({"audio"})  # type: ignore[misc]

    def video_inputs(self, media: Media, options: Any) -> dict[str, Any]:
        """Frames at the model's rate, and the video's sound interleaved with them by time (unless
        `use_audio_in_video=False`); the rate goes to the processor, which times each frame grid."""
        parts = super().video_inputs(media, options)
        parts["fps"] = parts["meta"]["fps"]
        feature_extractor, window = self.processor.feature_extractor, self.audio_window()
        return with_video_sound(
            parts, media, feature_extractor, self.family, window, options.use_audio_in_video
        )

    def audio_window(self) -> int:
        """Qwen3-Omni's processor takes audio of any length: it pads a call's clips to the longest and
        cuts none (its feature extractor is called with `truncation=False`, not at Whisper's 30 s), and
        the encoder reads the features in 1 s chunks. What bounds it is the Thinker's context: 13 audio
        tokens a second (the processor's own count), less `CONTEXT_RESERVED` tokens for the prompt
        and the caption (about 40 minutes for a 32,768-token context)."""
        from transformers.models.qwen3_omni_moe.processing_qwen3_omni_moe import (
            _get_feat_extract_output_lengths,
        )

        frames_per_second = SAMPLING_RATE // self.processor.feature_extractor.hop_length
        per_second = int(_get_feat_extract_output_lengths(frames_per_second))
        context = self.model.config.text_config.max_position_embeddings
        return (context - CONTEXT_RESERVED) // per_second * SAMPLING_RATE

    def generate(self, prompts: Any, options: Any, *args: Any, **kwargs: Any) -> list[Caption]:
        return [without_reasoning(c) for c in super().generate(prompts, options, *args, **kwargs)]


def without_reasoning(caption: Caption) -> Caption:
    """A Thinking model's `<think>...</think>` goes to `meta["reasoning"]`; the caption is the answer."""
    thought, sep, answer = caption.text.partition("</think>")
    if not sep:
        return caption
    reasoning = thought.replace("<think>", "").strip()
    return replace(caption, text=answer.strip(), meta={**caption.meta, "reasoning": reasoning})


class TransformersCaptioner(ChatTemplateCaptioner):
    """Any checkpoint `AutoModelForMultimodalLM` loads, with a chat template: it takes what its
    processor takes (an image processor: images; a video processor: video; a feature extractor: audio)."""

    spec_name = "transformers"

    def __init__(self, model: str | None = None, **kwargs: Any) -> None:
        self.preflight(model)
        assert model is not None
        check_multimodal_chat(model, config_of(model))
        super().__init__(model, **kwargs)
        self.modalities = processor_modalities(self.processor)  # type: ignore[misc]
        if not getattr(self.processor, "chat_template", None):
            raise CheckpointError(
                f"{model!r} has no chat template: its processor cannot build a chat prompt.",
                hint="Use a chat (instruct) checkpoint, or save a chat_template with its processor.",
            )

    @classmethod
    def preflight(cls, model: str | None, **kwargs: Any) -> None:
        """A local folder is checked before anything loads (a hub id when its config is fetched)."""
        super().preflight(model, **kwargs)
        assert model is not None
        config = Path(model).expanduser() / "config.json"
        if looks_like_path(model) and config.exists():
            check_multimodal_chat(model, json.loads(config.read_text()))

    def load_model(self, model: str, **kwargs: Any) -> Any:
        from transformers import AutoModelForMultimodalLM

        return load_pretrained(AutoModelForMultimodalLM, model, **kwargs)


def config_of(model: str) -> dict[str, Any]:
    """The checkpoint's config.json as it is (no class built: one that needs remote code still reads)."""
    from transformers import PretrainedConfig

    try:
        return PretrainedConfig.get_config_dict(model)[0]
    except OSError as e:
        raise ModelNotFoundError(
            f"Cannot read the config of {model!r}: {e}",
            hint="Check the hub id; offline, pass a local folder instead.",
        ) from None


def check_multimodal_chat(model: str, config: dict[str, Any]) -> None:
    """Refuse a checkpoint that needs remote code, or that transformers does not load as a multimodal
    chat model (`AutoModelForMultimodalLM`), before its weights load."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES

    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING_NAMES and "auto_map" in config:
        raise CheckpointError(
            f"{model!r} needs remote code ({model_type!r} is not a transformers model).",
            hint=REMOTE_CODE_HINT,
        )
    if model_type not in MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES:
        raise CheckpointError(
            f"{model!r} is a {model_type!r} model, not one transformers loads as a multimodal chat "
            "model (AutoModelForMultimodalLM).",
            hint="Name a vision- or audio-language chat checkpoint, or its adapter (`anycap models`).",
        )


def processor_modalities(processor: Any) -> frozenset[str]:
    kinds = {
        "image": "image_processor",
        "video": "video_processor",
        "audio": "feature_extractor",
    }
    return frozenset(k for k, attr in kinds.items() if getattr(processor, attr, None) is not None)
