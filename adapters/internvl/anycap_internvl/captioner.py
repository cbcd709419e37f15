"""The captioner behind the plugin (imported when one is built; see the package docstring)."""

from __future__ import annotations

from typing import Any

from anycap_plugin.captioner import DEFAULT_PROMPT, BaseCaptioner, Caption
from anycap_plugin.errors import ModelNotFoundError
from anycap_plugin.media import Media
from anycap_plugin.transformers_captioner import GenerationOptions, HFChatCaptioner


class InternVLOptions(GenerationOptions):
    # asked when an item has no instruction ({modality} is filled in). MetaCaptioner-8B's own captioning
    # prompt is not published, so its default is ours; pass the one you use here.
    prompt: str = DEFAULT_PROMPT


class InternVLCaptioner(HFChatCaptioner[InternVLOptions]):
    """A transformers-native (`-hf`) InternVL folder."""

    spec_name = "internvl"

    def build_prompt(
        self, media: Media, instruction: str | None, options: InternVLOptions
    ) -> tuple[str, dict]:
        text = instruction or options.prompt.format(modality=media.modality)
        if media.modality == "image":
            content = [{"type": "image"}, {"type": "text", "text": text}]
            images = [media.image()]
        else:
            images = media.frames(num_frames=options.num_frames).images
            labels = "".join(
                f"Frame{i + 1}: {self.processor.image_token}\n" for i in range(len(images))
            )
            content = [{"type": "text", "text": labels + text}]
        prompt = self.processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True
        )
        return prompt, {"images": images}


class InternVLChatCaptioner(BaseCaptioner[InternVLOptions]):
    """An InternVL-chat checkpoint, answering the instruction as the reference `chat()` / `batch_chat()` do."""

    modalities = frozenset({"image", "video"})

    def __init__(self, model: str, *, device: str | None = None, dtype: Any = None) -> None:
        from anycap_plugin.acm_runtime import LoadedACM

        self.id = f"internvl:{model}"
        self.acm = LoadedACM(model, device, dtype)

    def _caption_batch(
        self, media: list[Media], instructions: list[str | None], options: InternVLOptions
    ) -> list[Caption]:
        questions = [
            i or options.prompt.format(modality=m.modality) for m, i in zip(media, instructions)
        ]
        inputs = self.acm.processor.chat(media, questions, num_frames=options.num_frames)
        results = self.acm.generate(inputs, **options.generate_kwargs())
        return [
            Caption(text=t, usage={"prompt_tokens": p, "completion_tokens": c})
            for t, p, c in results
        ]


def internvl(model: str | None = None, **kwargs: Any) -> BaseCaptioner:
    """InternVL-chat sources (and their conversions) run on our classes; native -hf folders on transformers'."""
    import json
    from pathlib import Path

    from anycap_plugin.acm_runtime import resolve_model

    if not model:
        raise ModelNotFoundError(
            "The internvl captioner needs a model folder or hub id.",
            hint="Use a spec like 'internvl:OpenGVLab/InternVL2_5-8B' or 'internvl:/path/to/model'.",
        )
    folder = Path(resolve_model(model))
    config = folder / "config.json"
    if (
        config.exists()
        and json.loads(config.read_text(encoding="utf-8")).get("model_type") == "anycap_acm"
    ):
        return InternVLChatCaptioner(model, **kwargs)
    return InternVLCaptioner(model, **kwargs)
