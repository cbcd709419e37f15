"""ACM as a model of LMDeploy's PyTorch engine.

The encoders and projectors are ACM's own modules (`build_media_modules`), so image and audio
features equal the transformers model's; they run once per item at prefill and need no KV cache.
The language model is LMDeploy's own build of `text_config` (paged attention, CUDA graphs).
Media features replace the placeholder tokens in the prompt embeddings, as in `ACMForConditionalGeneration.embed`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from lmdeploy.pytorch.configurations.builder import AutoModelConfigBuilder
from lmdeploy.pytorch.configurations.default import DefaultModelConfigBuilder
from lmdeploy.pytorch.engine.input_process import BaseModelInputProcessor, PreprocessInputResult
from lmdeploy.pytorch.model_inputs import StepContext, StepContextManager
from lmdeploy.pytorch.models.patch import build_model_from_hf_config
from lmdeploy.pytorch.models.utils.cudagraph import CudaGraphMixin
from lmdeploy.pytorch.models.utils.model import DeployModelMixinV1
from lmdeploy.pytorch.multimodal.data_type import Modality, MultiModalData
from torch import nn

import anycap_plugin.acm  # noqa: F401  (registers the config with transformers, in every engine process)

from ...acm.modeling_acm import MediaFeatures, build_media_modules
from . import ARCH

LANGUAGE_PREFIX = "language_model."


class ModuleMapPath(str):
    """The module map's path, as LMDeploy's `custom_module_map` option takes it, carrying our registrations.

    LMDeploy's api_server builds the engine in a spawned process that imports nothing of ours, and reads
    the model's config there before it loads the module map: without ACM's config class (transformers)
    and `ACMModelConfigBuilder`, that fails. The engine config reaches that process pickled; unpickling
    this path imports this module first, which registers both.
    """

    def __reduce__(self) -> tuple:
        return ModuleMapPath, (str(self),)


class ACMModelConfigBuilder(AutoModelConfigBuilder):
    """The engine sizes its KV cache from the language model's config (registered on import)."""

    @classmethod
    def condition(cls, hf_config: Any) -> bool:
        return (getattr(hf_config, "architectures", None) or [None])[0] == ARCH

    @classmethod
    def build(cls, hf_config: Any, model_path: str | None = None, **kwargs: Any) -> Any:
        cfg = DefaultModelConfigBuilder.build(hf_config.text_config, model_path, **kwargs)
        cfg.hf_config = hf_config
        return cfg


def language_config(config: Any) -> Any:
    """`text_config`, naming its causal-LM class when the checkpoint does not (LMDeploy picks by that name)."""
    text = config.text_config
    if not getattr(text, "architectures", None):
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        text.architectures = [MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[text.model_type]]
    return text


class ACMForLMDeploy(MediaFeatures, nn.Module, DeployModelMixinV1, CudaGraphMixin):
    def __init__(
        self,
        config: Any,
        ctx_mgr: StepContextManager,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
    ) -> None:
        nn.Module.__init__(self)
        self.config, self.ctx_mgr = config, ctx_mgr
        for name, module in build_media_modules(config).items():
            setattr(
                self, name, None if module is None else module.to(dtype=dtype, device=device).eval()
            )
        self.language_model = build_model_from_hf_config(
            language_config(config), dtype=dtype, device=device
        )
        self.lm_head = self.language_model.lm_head
        self.input_processor = ACMInputProcessor(dtype)

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def update_weights(self) -> None:
        self.language_model.update_weights()  # tying is the language model's own setting

    def merge_media(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None,
        image_mask: torch.Tensor | None,
        audio_values: torch.Tensor | None,
        audio_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Prompt embeddings with every placeholder replaced by its media feature, in order."""
        embeds = self.get_input_embeddings()(input_ids)
        for values, mask, encode in (
            (pixel_values, image_mask, self.image_features),
            (audio_values, audio_mask, self.audio_features),
        ):
            if values is not None:
                features = encode(values).reshape(-1, embeds.shape[-1]).to(embeds.dtype)
                assert mask is not None  # a mask comes with its values
                embeds = embeds.masked_scatter(mask[..., None], features)
        return embeds

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        past_key_values: list[list[torch.Tensor]],
        attn_metadata: Any = None,
        pixel_values: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        audio_values: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        if inputs_embeds is None and (pixel_values is not None or audio_values is not None):
            inputs_embeds = self.merge_media(
                input_ids, pixel_values, image_mask, audio_values, audio_mask
            )
        if inputs_embeds is not None:
            input_ids = None
        return self.language_model.forward(
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            past_key_values=past_key_values,
            position_ids=position_ids,
            attn_metadata=attn_metadata,
        )

    def prepare_inputs_for_generation(
        self,
        past_key_values: list[list[torch.Tensor]],
        inputs_embeds: torch.Tensor | None = None,
        context: StepContext | None = None,
    ) -> dict[str, Any]:
        assert context is not None  # LMDeploy's model agent always passes the step context
        if context.input_embeddings is not None and len(context.input_embeddings):
            # only a request side that encodes media itself hands the engine embeddings; ours hands it pixels
            raise NotImplementedError(
                "ACM encodes media inside the engine; precomputed input embeddings "
                "are not supported"
            )
        input_ids = context.input_ids
        media: dict[str, Any] = {
            "pixel_values": None,
            "image_mask": None,
            "audio_values": None,
            "audio_mask": None,
        }
        if context.input_multimodals is not None:
            for key, values_name, mask_name in (
                ("image", "pixel_values", "image_mask"),
                ("audio", "audio_values", "audio_mask"),
            ):
                items = [d for mm in context.input_multimodals for d in mm.get(key, [])]
                if items:
                    media[values_name] = torch.cat([d.data for d in items])
                    media[mask_name] = input_ids == items[0].meta["token_id"]
        return dict(
            input_ids=input_ids,
            position_ids=context.position_ids,
            past_key_values=past_key_values,
            attn_metadata=context.attn_metadata,
            inputs_embeds=inputs_embeds,
            **media,
        )

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """The transformers checkpoint as it is: `language_model.*` to LMDeploy's language model (which
        reads checkpoint names), everything else into our own modules, under the names transformers
        gives them on load (it renames legacy keys, e.g. AST's `attention.attention.key`)."""
        rename = checkpoint_renamer(self.config)
        own = {**dict(self.named_parameters()), **dict(self.named_buffers())}
        language: list[tuple[str, torch.Tensor]] = []
        for name, tensor in weights:
            if name.startswith(LANGUAGE_PREFIX):
                language.append((name[len(LANGUAGE_PREFIX) :], tensor))
                continue
            target = rename(name)
            if target not in own:
                raise KeyError(
                    f"{name} ({target}) is in the checkpoint but not in ACM's LMDeploy model"
                )
            own[target].data.copy_(tensor.to(own[target].dtype))
        self.language_model.load_weights(language)

    def get_input_processor(self) -> BaseModelInputProcessor:
        return self.input_processor


def checkpoint_renamer(config: Any) -> Any:
    """Checkpoint key -> module name, as transformers renames keys when it loads ACM."""
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightRenaming, rename_source_key

    from ...acm.modeling_acm import ACMForConditionalGeneration

    with torch.device("meta"):  # the skeleton only: no memory, no init
        skeleton = ACMForConditionalGeneration(config)
    transforms = get_model_conversion_mapping(skeleton)
    if any(not isinstance(t, WeightRenaming) for t in transforms):
        raise NotImplementedError(
            "this transformers version converts ACM weights beyond renaming them"
        )
    meta = skeleton.state_dict()
    return lambda key: rename_source_key(key, transforms, [], skeleton.base_model_prefix, meta)[0]


class ACMInputProcessor(BaseModelInputProcessor):
    """The request side's `multimodal` items (see preprocessor.py) as the engine's `MultiModalData`."""

    def __init__(self, dtype: torch.dtype | None) -> None:
        self.dtype = dtype

    def preprocess_input(
        self,
        input_ids: list[int],
        input_multimodals: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> PreprocessInputResult:
        if not input_multimodals:
            return PreprocessInputResult(input_ids=input_ids, input_multimodals=input_multimodals)
        grouped: dict[str, list[MultiModalData]] = {}
        for item in input_multimodals:
            modality = item["modality"]
            grouped.setdefault(modality, []).append(
                MultiModalData(
                    data=item["values"].to(self.dtype)
                    if self.dtype is not None
                    else item["values"],
                    start=item["offset"],
                    end=item["offset"] + item["tokens"],
                    meta={"token_id": item["token_id"]},
                    modality=Modality.IMAGE if modality == "image" else Modality.AUDIO,
                )
            )
        return PreprocessInputResult(input_ids=input_ids, input_multimodals=grouped)
