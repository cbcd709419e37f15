"""The captioner behind the plugin (imported when one is built; see the package docstring)."""

from __future__ import annotations

from typing import Any

from anycap_plugin import prompt_for
from anycap_plugin.media import Media
from anycap_plugin.model_loading import load_pretrained
from anycap_plugin.transformers_captioner import GenerationOptions, HFChatCaptioner, fit_audio


class Qwen2AudioCaptioner(HFChatCaptioner):
    spec_name = "qwen2-audio"
    modalities = frozenset({"audio"})

    def load_model(self, model: str, **kwargs: Any) -> Any:
        from transformers import Qwen2AudioForConditionalGeneration

        return load_pretrained(Qwen2AudioForConditionalGeneration, model, **kwargs)

    def build_prompt(
        self, media: Media, instruction: str | None, options: GenerationOptions
    ) -> tuple[str, dict]:
        text = prompt_for(media, instruction)
        prompt = self.processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": text}]}],
            add_generation_prompt=True,
            tokenize=False,
        )
        samples, meta = fit_audio(
            media.audio().samples, self.processor.feature_extractor, "Qwen2-Audio"
        )
        return prompt, {"audio": [samples], "meta": meta}
