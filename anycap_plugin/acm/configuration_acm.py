"""ACM configuration: every hyperparameter of the vision, audio and language parts and how they meet."""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig
from transformers.models.audio_spectrogram_transformer import ASTConfig
from transformers.models.internvl import InternVLVisionConfig


class ACMConfig(PretrainedConfig):
    """ACM = InternViT vision encoder + AST audio encoder + one MLP projector each + a causal LM.

    `vision_config` / `audio_config` may be None for a checkpoint without that branch; media of
    that modality are then refused with a clear error (`audio_absent` says why, for a converted
    checkpoint whose audio branch could not be converted). `select_layer` and `ps_version` are
    InternVL-chat's: which ViT layer feeds the projector, and whether pixel shuffle swaps back (v2).
    `source` records where a converted checkpoint came from (format, path or hub id, revision).
    """

    model_type = "anycap_acm"
    sub_configs = {  # noqa: RUF012 - transformers reads it
        "vision_config": InternVLVisionConfig,
        "audio_config": ASTConfig,
        "text_config": AutoConfig,
    }

    def __init__(
        self,
        vision_config: Any = None,
        audio_config: Any = None,
        text_config: Any = None,
        image_token_id: int | None = None,
        audio_token_id: int | None = None,
        downsample_ratio: float = 0.5,
        projector_hidden_act: str = "gelu",
        image_size: int = 448,
        audio_pool: int = 4,
        select_layer: int = -1,
        ps_version: str = "v2",
        audio_absent: str | None = None,
        source: dict | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(vision_config, dict):
            vision_config = InternVLVisionConfig(**vision_config)
        if isinstance(audio_config, dict):
            audio_config = ASTConfig(**audio_config)
        if isinstance(text_config, dict):
            text_config = dict(text_config)
            text_config = AutoConfig.for_model(
                text_config.pop("model_type", "qwen2"), **text_config
            )
        self.vision_config = vision_config
        self.audio_config = audio_config
        self.text_config = text_config
        self.image_token_id = image_token_id
        self.audio_token_id = audio_token_id
        self.downsample_ratio = downsample_ratio
        self.projector_hidden_act = projector_hidden_act
        self.image_size = image_size
        self.audio_pool = audio_pool
        self.select_layer = select_layer
        self.ps_version = ps_version
        self.audio_absent = audio_absent
        self.source = source
        super().__init__(**kwargs)

    @property
    def image_seq_length(self) -> int:
        """Language-model tokens per image tile: patches after pixel-shuffle downsampling."""
        assert self.vision_config is not None
        patch = self.vision_config.patch_size
        patch = patch[0] if isinstance(patch, (list, tuple)) else patch
        return int((self.image_size // patch) ** 2 * self.downsample_ratio**2)

    @property
    def audio_seq_length(self) -> int:
        """Language-model tokens per audio clip: AST patches, `audio_pool` neighbours merged into one."""
        a = self.audio_config
        assert a is not None
        f = (a.num_mel_bins - a.patch_size) // a.frequency_stride + 1
        t = (a.max_length - a.patch_size) // a.time_stride + 1
        if (f * t) % self.audio_pool:
            raise ValueError(
                f"{f * t} AST patches do not split into groups of audio_pool={self.audio_pool}"
            )
        return f * t // self.audio_pool

    def get_text_config(self, *args: Any, **kwargs: Any) -> Any:
        return self.text_config
