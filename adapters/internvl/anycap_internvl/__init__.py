"""AnyCap plugin: InternVL2.5 (`internvl:FOLDER_OR_HUB_ID`) with transformers' native class.

Images use the processor's dynamic tiling; a video is sent as its sampled frames, each an
image behind a `FrameN:` label, as InternVL's own chat scripts do.
"""

from typing import Any

from anycap_plugin import hookimpl
from anycap_plugin.hf import GenerationOptions, HFChatCaptioner
from anycap_plugin.media import Media

DEFAULT_PROMPT = "Describe this {modality} in detail."


class InternVLCaptioner(HFChatCaptioner):
    spec_name = "internvl"

    def build_prompt(self, media: Media, instruction: str | None, options: GenerationOptions) -> tuple[str, dict]:
        text = instruction or DEFAULT_PROMPT.format(modality=media.modality)
        if media.modality == "image":
            content = [{"type": "image"}, {"type": "text", "text": text}]
            images = [media.image()]
        else:
            images = media.frames(num_frames=options.num_frames).images
            labels = "".join(f"Frame{i + 1}: {self.processor.image_token}\n" for i in range(len(images)))
            content = [{"type": "text", "text": labels + text}]
        prompt = self.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        return prompt, {"images": images}


@hookimpl
def register_captioners(register: Any) -> None:
    register("internvl", lambda model=None, **kw: InternVLCaptioner(model, **kw),
             "InternVL2.5 via transformers (images, video as frames); model = local folder or hub id")
