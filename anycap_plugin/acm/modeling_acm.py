"""ACM: the AnyCap post-processor model, everything its forward pass needs in one file.

Media features replace placeholder tokens in the prompt: each image tile gives
`config.image_seq_length` vision tokens (InternViT, pixel shuffle, MLP projector, as InternVL
does), each audio clip `config.audio_seq_length` audio tokens (AST encoder, neighbouring
patches merged, MLP projector). The language model is any causal LM transformers can build
from `text_config`. Training runs `forward` with labels; captions come from `generate`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import CausalLMOutputWithPast

from ..errors import ACMModalityError
from .configuration_acm import ACMConfig


def pixel_shuffle(features: torch.Tensor, ratio: float, version: str = "v2") -> torch.Tensor:
    """(B, N, C) patch grid -> (B, N*ratio^2, C/ratio^2): InternVL's token merge. `v1` leaves the
    grid transposed, as the InternVL checkpoints trained with it expect."""
    b, n, c = features.shape
    side = int(n**0.5)
    x = features.reshape(b, side, side, c)
    x = x.reshape(b, side, int(side * ratio), int(c / ratio))
    x = x.permute(0, 2, 1, 3).reshape(b, int(side * ratio), int(side * ratio), int(c / ratio**2))
    if version != "v1":
        x = x.permute(0, 2, 1, 3)
    return x.reshape(b, -1, int(c / ratio**2))


class ModalityProjector(nn.Module):
    """LayerNorm -> Linear -> act -> Linear into the language model's embedding space."""

    def __init__(self, in_features: int, out_features: int, act: str) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_features)
        self.fc1 = nn.Linear(in_features, out_features)
        self.act = ACT2FN[act]
        self.fc2 = nn.Linear(out_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class ASTAudioEncoder(nn.Module):
    """The audio-encoder interface ACM uses: (B, frames, mel) filterbanks -> (B, T, H) features.

    Another encoder (EAT, BEATs) replaces it by producing the same shape from `encode`.
    """

    def __init__(self, config: Any) -> None:
        super().__init__()
        from transformers import ASTModel

        self.model = ASTModel(config)

    def encode(self, input_values: torch.Tensor) -> torch.Tensor:
        return self.model(input_values=input_values).last_hidden_state[
            :, 2:, :
        ]  # drop cls and distillation


def build_media_modules(config: ACMConfig) -> dict[str, nn.Module | None]:
    """The encoders and projectors, by attribute name (the checkpoint's weight prefixes)."""
    text_hidden = config.text_config.hidden_size
    modules: dict[str, nn.Module | None] = dict.fromkeys(
        ("vision_model", "vision_projector", "audio_encoder", "audio_projector")
    )
    if config.vision_config is not None:
        from transformers.models.internvl.modeling_internvl import InternVLVisionModel

        modules["vision_model"] = InternVLVisionModel(config.vision_config)
        merged = config.vision_config.hidden_size * int(1 / config.downsample_ratio) ** 2
        modules["vision_projector"] = ModalityProjector(
            merged, text_hidden, config.projector_hidden_act
        )
    if config.audio_config is not None:
        modules["audio_encoder"] = ASTAudioEncoder(config.audio_config)
        modules["audio_projector"] = ModalityProjector(
            config.audio_config.hidden_size * config.audio_pool,
            text_hidden,
            config.projector_hidden_act,
        )
    return modules


class MediaFeatures:
    """Image and audio features in the language model's embedding space, for any module holding
    the `build_media_modules` parts and `config` (the transformers model and the LMDeploy one)."""

    config: ACMConfig
    vision_model: nn.Module | None
    vision_projector: nn.Module | None
    audio_encoder: Any
    audio_projector: nn.Module | None

    def _media_dtype(self) -> torch.dtype:
        for module in (self.vision_projector, self.audio_projector):
            if module is not None:
                return next(module.parameters()).dtype
        return torch.float32

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.vision_model is None:
            raise ACMModalityError(
                "This ACM checkpoint has no vision encoder: it cannot read images or video."
            )
        layer = getattr(self.config, "select_layer", -1)
        out = self.vision_model(
            pixel_values=pixel_values.to(self._media_dtype()), output_hidden_states=layer != -1
        )
        hidden = (out.last_hidden_state if layer == -1 else out.hidden_states[layer])[:, 1:, :]
        assert self.vision_projector is not None  # built together with the vision model
        return self.vision_projector(
            pixel_shuffle(
                hidden, self.config.downsample_ratio, getattr(self.config, "ps_version", "v2")
            )
        )

    def audio_features(self, audio_values: torch.Tensor) -> torch.Tensor:
        if self.audio_encoder is None:
            why = getattr(self.config, "audio_absent", None)
            raise ACMModalityError(
                "This ACM checkpoint has no audio encoder: it cannot read audio."
                + (f" {why}" if why else "")
            )
        hidden = self.audio_encoder.encode(audio_values.to(self._media_dtype()))
        b, t, h = hidden.shape
        merged = hidden.reshape(b, t // self.config.audio_pool, h * self.config.audio_pool)
        assert self.audio_projector is not None  # built together with the audio encoder
        return self.audio_projector(merged)


class ACMPreTrainedModel(PreTrainedModel):
    config_class = ACMConfig
    base_model_prefix = "acm"
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVLVisionLayer", "ASTLayer"]  # noqa: RUF012 - transformers reads it
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config.text_config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()


class ACMForConditionalGeneration(MediaFeatures, ACMPreTrainedModel, GenerationMixin):
    def __init__(self, config: ACMConfig) -> None:
        super().__init__(config)
        for name, module in build_media_modules(config).items():
            setattr(self, name, module)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def embed(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        audio_values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings with every image and audio placeholder replaced by media features, in order."""
        embeds = self.get_input_embeddings()(input_ids)
        for values, token_id, encode in (
            (pixel_values, self.config.image_token_id, self.image_features),
            (audio_values, self.config.audio_token_id, self.audio_features),
        ):
            mask = (
                input_ids == token_id
                if token_id is not None
                else torch.zeros_like(input_ids, dtype=torch.bool)
            )
            if values is None:
                if mask.any():
                    raise ValueError(
                        "The prompt has media placeholders but no media features were given."
                    )
                continue
            features = encode(values).reshape(-1, embeds.shape[-1]).to(embeds.dtype)
            if int(mask.sum()) != features.shape[0]:
                raise ValueError(
                    f"{int(mask.sum())} placeholder tokens for {features.shape[0]} media features."
                )
            embeds = embeds.masked_scatter(mask.unsqueeze(-1), features)
        return embeds

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        audio_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        answer_logits_only: bool = False,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """With `answer_logits_only`, logits (and the loss) are computed only where a label is set:
        the answer tokens. Same loss, but the vocabulary projection skips the prompt and padding."""
        if inputs_embeds is None:
            inputs_embeds = self.embed(input_ids, pixel_values, audio_values)
        # forward is for training and scoring (generate decodes through the LM directly): no cache,
        # which also lets transformers keep packed sequences apart by their position ids
        kwargs.setdefault("use_cache", False)
        decoder = (
            self.language_model.get_decoder() if answer_logits_only and labels is not None else None
        )
        if (
            decoder is None or decoder is self.language_model
        ):  # an LM without a separate decoder: full logits
            return self.language_model(
                inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels, **kwargs
            )
        num_items = kwargs.pop("num_items_in_batch", None)
        hidden = decoder(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, **kwargs
        ).last_hidden_state
        assert labels is not None  # a separate decoder is only taken when labels are given
        targets = labels[:, 1:]
        keep = targets != -100
        logits = self.get_output_embeddings()(hidden[:, :-1][keep])
        loss = nn.functional.cross_entropy(logits.float(), targets[keep], reduction="sum")
        denominator = num_items if num_items is not None else keep.sum().clamp(min=1)
        if torch.is_tensor(denominator):
            denominator = denominator.to(loss.device)
        return CausalLMOutputWithPast(loss=loss / denominator, logits=logits)

    @torch.inference_mode()
    def generate(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        audio_values: torch.Tensor | None = None,
        **generate_kwargs: Any,
    ) -> torch.Tensor:
        """New tokens only: media are embedded once, then the language model decodes from embeddings."""
        embeds = self.embed(input_ids, pixel_values, audio_values)
        return self.language_model.generate(
            inputs_embeds=embeds, attention_mask=attention_mask, **generate_kwargs
        )
