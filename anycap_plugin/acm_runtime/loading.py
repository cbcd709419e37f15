"""ACM-class models in process: load a folder, an InternVL-chat folder or a hub id; generate in batches.

Shared by the `acm` post-processor and the `internvl` captioner (which runs InternVL-chat checkpoints
through the same converted classes). Published layouts are converted once (`resolve.resolve_model`).
"""

from __future__ import annotations

from typing import Any

from ..errors import CheckpointError
from ..media import Modality
from ..model_loading import choose_device, choose_dtype, load_pretrained
from ..transformers_captioner import generated_lengths


class LoadedACM:
    """A processor and a model on one device, in eval mode."""

    def __init__(self, model: str, device: str | None = None, dtype: Any = None) -> None:
        from transformers import AutoModel, AutoProcessor

        from ..acm import ACMConfig  # noqa: F401  (registers the Auto classes)
        from ..acm.processing_acm import PROCESSOR_KWARGS, quiet_feature_extractor
        from .resolve import resolve_model

        folder = resolve_model(model)
        self.device = choose_device(device)
        with quiet_feature_extractor():
            self.processor = load_pretrained(AutoProcessor, folder, **PROCESSOR_KWARGS)
        net, info = load_pretrained(
            AutoModel, folder, dtype=choose_dtype(dtype, self.device), output_loading_info=True
        )
        missing = sorted(info.get("missing_keys") or [])
        if missing:  # transformers would fill them with random weights and carry on
            shown = ", ".join(missing[:8]) + (
                f" and {len(missing) - 8} more" if len(missing) > 8 else ""
            )
            raise CheckpointError(
                f"The ACM checkpoint {model!r} lacks {len(missing)} weights: {shown}.",
                hint="It is incomplete, or saved in another layout (InternVL-chat folders are "
                "converted automatically; other layouts are not read).",
            )
        self.model = net.to(self.device).eval()
        self.config = self.model.config

    @property
    def modalities(self) -> frozenset[Modality]:
        cfg = self.config
        vision: list[Modality] = ["image", "video"] if cfg.vision_config is not None else []
        audio: list[Modality] = ["audio"] if cfg.audio_config is not None else []
        return frozenset(vision + audio)

    def generate(self, inputs: Any, **generate_kwargs: Any) -> list[tuple[str, int, int]]:
        """(text, prompt tokens, completion tokens) per row of a processor batch."""
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        out = self.model.generate(**inputs, **generate_kwargs)
        texts = self.processor.batch_decode(out, skip_special_tokens=True)
        prompt = inputs["attention_mask"].sum(dim=1).tolist()
        completion = generated_lengths(
            out, self.model.generation_config.eos_token_id, self.processor.tokenizer.pad_token_id
        )
        return [(t.strip(), int(p), int(c)) for t, p, c in zip(texts, prompt, completion)]
