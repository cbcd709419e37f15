"""AnyCap plugin: Qwen2-Audio (`qwen2-audio:FOLDER_OR_HUB_ID`) with transformers' native class.

Audio in, text out, batched (one left-padded `generate` per batch). The model hears at most its
feature extractor's window (30 s for Qwen2-Audio-7B): longer audio is cut there and the caption's
`meta["audio"]` says how much was heard. A video's sound track is captioned like an audio file when
the input is read as audio (`Media.load(video).as_modality("audio")`); video inputs are refused: the model has no eyes.
"""

from __future__ import annotations

from typing import Any

from anycap_plugin import hookimpl, prompt_for
from anycap_plugin.hf import GenerationOptions, HFChatCaptioner, fit_audio, load_pretrained
from anycap_plugin.media import Media


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


@hookimpl
def register_captioners(register: Any) -> None:
    register(
        "qwen2-audio",
        Qwen2AudioCaptioner,
        needs_model=True,
        description="Qwen2-Audio via transformers (audio); model = local folder or hub id",
    )


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """A loaded `Qwen2AudioForConditionalGeneration`: `wrap(model, processor=processor)`."""
    return Qwen2AudioCaptioner.claim(obj, options, "Qwen2AudioForConditionalGeneration")
