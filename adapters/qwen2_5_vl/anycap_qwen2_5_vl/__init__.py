"""AnyCap plugin: Qwen2.5-VL (`qwen2.5-vl:FOLDER_OR_HUB_ID`) with transformers' native class.

Images use the processor's own dynamic resolution; video goes through the model's video path
(sampled frames as one video input), not as separate images.
"""

from typing import Any

from anycap_plugin import hookimpl, prompt_for
from anycap_plugin.hf import GenerationOptions, HFChatCaptioner
from anycap_plugin.media import Media


class Qwen25VLCaptioner(HFChatCaptioner):
    spec_name = "qwen2.5-vl"

    def build_prompt(
        self, media: Media, instruction: str | None, options: GenerationOptions
    ) -> tuple[str, dict]:
        kind = "image" if media.modality == "image" else "video"
        text = prompt_for(media, instruction)
        prompt = self.processor.apply_chat_template(
            [{"role": "user", "content": [{"type": kind}, {"type": "text", "text": text}]}],
            add_generation_prompt=True,
        )
        if kind == "image":
            return prompt, {"images": [media.image()]}
        frames = media.frames(num_frames=max(2, options.num_frames))
        return prompt, {"videos": [frames.images]}


@hookimpl
def register_captioners(register: Any) -> None:
    register(
        "qwen2.5-vl",
        Qwen25VLCaptioner,
        needs_model=True,
        description="Qwen2.5-VL via transformers (images, video); model = local folder or hub id",
    )


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """A loaded `Qwen2_5_VLForConditionalGeneration`: `wrap(model, processor=processor)`."""
    return Qwen25VLCaptioner.claim(obj, options, "Qwen2_5_VLForConditionalGeneration")
