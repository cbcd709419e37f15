"""The captioner behind the plugin (imported when one is built; see the package docstring)."""

from __future__ import annotations

import os
from typing import Any

from anycap_plugin import BaseCaptioner, Caption, prompt_for
from anycap_plugin.errors import AnyCapError
from anycap_plugin.media import Media
from anycap_plugin.model_loading import choose_device, choose_dtype, load_pretrained
from anycap_plugin.transformers_captioner import GenerationOptions

TRUST_ENV = "ANYCAP_TRUST_REMOTE_CODE"


class RemoteCodeNotTrustedError(AnyCapError):
    """Loading would run a model repository's Python code and the user has not allowed it."""


def remote_code_allowed(option: bool | None) -> bool:
    return bool(option) or os.environ.get(TRUST_ENV, "").lower() in ("1", "true", "yes")


class MiniCPMOCaptioner(BaseCaptioner[GenerationOptions]):
    """Images, video frames and 16 kHz audio through the model's own `chat` interface."""

    def __init__(
        self,
        model: str | None = None,
        *,
        trust_remote_code: bool | None = None,
        device: str | None = None,
        dtype: Any = None,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        if not model:
            raise AnyCapError(
                "The minicpm-o captioner needs a model folder or hub id.",
                hint="Use a spec like 'minicpm-o:openbmb/MiniCPM-o-2_6'.",
            )
        if not remote_code_allowed(trust_remote_code):
            raise RemoteCodeNotTrustedError(
                f"Loading {model!r} runs Python code shipped with the model (MiniCPM-o has no transformers class).",
                hint=f"If you trust its source, pass trust_remote_code=True or set {TRUST_ENV}=1; or serve it "
                "with vLLM and use the 'openai:' captioner with base_url.",
            )
        self.id = f"minicpm-o:{model}"
        self.modalities = frozenset({"image", "video", "audio"})  # type: ignore[misc]
        self.device = choose_device(device)
        self.tokenizer = load_pretrained(AutoTokenizer, model, trust_remote_code=True)
        net = load_pretrained(
            AutoModel, model, trust_remote_code=True, dtype=choose_dtype(dtype, self.device)
        )
        self.model = net.to(self.device).eval()

    def _caption(
        self, media: Media, instruction: str | None, options: GenerationOptions
    ) -> Caption:
        content: list[Any]
        if media.modality == "image":
            content = [media.image()]
        elif media.modality == "video":
            content = list(media.frames(num_frames=options.num_frames).images)
        else:
            content = [media.audio().samples]
        content.append(prompt_for(media, instruction))
        text = self.model.chat(
            msgs=[{"role": "user", "content": content}],
            tokenizer=self.tokenizer,
            sampling=options.do_sample,
            max_new_tokens=options.max_new_tokens,
        )
        return Caption(text=str(text).strip())
