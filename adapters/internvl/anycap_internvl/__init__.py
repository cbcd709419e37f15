"""AnyCap plugin: InternVL (`internvl:FOLDER_OR_HUB_ID`).

Two layouts load:
- InternVL-chat checkpoints (InternVL 2.5, 3 and 3.5, `OpenGVLab/MetaCaptioner-8B`; InternLM2, Qwen2, Llama,
  Phi-3, Qwen3, Qwen3-MoE and GPT-OSS language models): converted
  once by `anycap_plugin.acm.convert` and run through the same classes as ACM, with InternVL's own
  prompt (template and system message), tiling (448-px tiles, at most `max_dynamic_patch`, plus a
  thumbnail) and video input (one tile per frame, `Frame{i}: <image>` lines).
- transformers-native `-hf` folders, through `InternVLForConditionalGeneration` and its processor.
"""

from __future__ import annotations

from typing import Any

from anycap_plugin import hookimpl
from anycap_plugin.acm_runtime import preflight_source
from anycap_plugin.captioner import DEFAULT_PROMPT, BaseCaptioner, Caption
from anycap_plugin.errors import ModelNotFoundError
from anycap_plugin.hf import GenerationOptions, HFChatCaptioner
from anycap_plugin.media import Media


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


@hookimpl
def register_captioners(register: Any) -> None:
    register(
        "internvl",
        internvl,
        "InternVL: InternVL-chat checkpoints (official InternVL2.5, converted once) or native -hf folders; "
        "images, video as frames; model = local folder or hub id",
        needs_model=True,
        options=InternVLOptions,
        modalities=("image", "video"),
        preflight=preflight_source,
    )


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """A loaded transformers-native `InternVLForConditionalGeneration`: `wrap(model, processor=processor)`."""
    return InternVLCaptioner.claim(obj, options, "InternVLForConditionalGeneration")
