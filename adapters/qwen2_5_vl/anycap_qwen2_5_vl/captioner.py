"""The captioner behind the plugin (imported when one is built; see the package docstring)."""

from anycap_plugin import prompt_for
from anycap_plugin.media import Media
from anycap_plugin.transformers_captioner import GenerationOptions, HFChatCaptioner


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
