"""The captioner behind the plugin (imported when one is built; see the package docstring)."""

from __future__ import annotations

from typing import Any

from anycap_plugin import prompt_for
from anycap_plugin.media import Media
from anycap_plugin.model_loading import load_pretrained
from anycap_plugin.transformers_captioner import (
    GenerationOptions,
    HFChatCaptioner,
    fit_audio,
    with_video_sound,
)


class OmniOptions(GenerationOptions):
    use_audio_in_video: bool = True
    fps: float = 2.0
    max_frames: int = 64


class Qwen25OmniCaptioner(HFChatCaptioner[OmniOptions]):
    spec_name = "qwen2.5-omni"
    modalities = frozenset({"image", "video", "audio"})

    def load_model(self, model: str, **kwargs: Any) -> Any:
        """The Thinker, from a Thinker folder or from a whole Qwen2.5-Omni one (its `thinker.*` weights only:
        the talker, and its pickled `spk_dict.pt`, are never read)."""
        from transformers import Qwen2_5OmniThinkerForConditionalGeneration

        return load_pretrained(Qwen2_5OmniThinkerForConditionalGeneration, model, **kwargs)

    def build_prompt(
        self, media: Media, instruction: str | None, options: OmniOptions
    ) -> tuple[str, dict]:
        text = prompt_for(media, instruction)
        prompt = self.processor.apply_chat_template(
            [
                {
                    "role": "user",
                    "content": [{"type": media.modality}, {"type": "text", "text": text}],
                }
            ],
            add_generation_prompt=True,
            tokenize=False,
        )
        if media.modality == "image":
            return prompt, {"images": [media.image()]}
        if media.modality == "audio":
            samples, meta = fit_audio(
                media.audio().samples, self.processor.feature_extractor, "Qwen2.5-Omni"
            )
            return prompt, {"audio": [samples], "meta": meta}
        return prompt, self._video(media, options)

    def _video(self, media: Media, options: OmniOptions) -> dict[str, Any]:
        probe = media.frames(num_frames=2)
        duration = max(probe.duration, 1e-3)
        count = max(2, min(options.max_frames, round(duration * options.fps)))
        count += count % 2  # frames go in pairs (the vision encoder's temporal patch)
        frames = media.frames(num_frames=count)
        fps = round(count / duration, 4)
        parts: dict[str, Any] = {"videos": [frames.images], "fps": fps}
        parts["meta"] = {"frames": count, "fps": fps}
        return with_video_sound(
            parts,
            media,
            self.processor.feature_extractor,
            "Qwen2.5-Omni",
            wanted=options.use_audio_in_video,
        )
