"""The captioner behind the plugin (imported when one is built; see the package docstring)."""

from __future__ import annotations

from typing import Any

from anycap_plugin import Caption, prompt_for
from anycap_plugin.errors import MediaError
from anycap_plugin.media import Media
from anycap_plugin.model_loading import load_pretrained
from anycap_plugin.transformers_captioner import GenerationOptions, HFChatCaptioner, fit_audio


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
        meta: dict[str, Any] = {"frames": count, "fps": fps, "video_inputs": "frames only"}
        if options.use_audio_in_video:
            try:
                samples, heard = fit_audio(
                    media.audio().samples, self.processor.feature_extractor, "Qwen2.5-Omni"
                )
                parts.update(audio=[samples], audio_of_video=True)
                meta.update(heard, video_inputs="frames and sound")
            except MediaError:  # no track, or frames with no container behind them
                meta["video_inputs"] = "frames only: no audio track"
        parts["meta"] = meta
        return parts

    def _caption_batch(
        self, media: list[Media], instructions: list[str | None], options: OmniOptions
    ) -> list[Caption]:
        """Items whose videos bring their sound, and items at another frame rate, go in separate calls:
        the processor takes one frame rate per call, and interleaves sound for a whole call."""
        prompts = [self.build_prompt(m, i, options) for m, i in zip(media, instructions)]
        groups: dict[tuple[bool, float | None], list[int]] = {}
        for i, (_, parts) in enumerate(prompts):
            groups.setdefault((bool(parts.get("audio_of_video")), parts.get("fps")), []).append(i)
        out: list[Caption | None] = [None] * len(prompts)
        for (interleaved, fps), members in groups.items():
            processor_kwargs: dict[str, Any] = {}
            if fps is not None:
                processor_kwargs["videos_kwargs"] = {"fps": fps}
            if interleaved:  # each item's sound belongs to its own video, the i-th of the call
                processor_kwargs.update(
                    load_audio_from_video=True, audio_from_video_indices=list(range(len(members)))
                )
            captions = self.generate(
                [prompts[i] for i in members],
                options,
                processor_kwargs,
                {"use_audio_in_video": True} if interleaved else None,
            )
            for i, caption in zip(members, captions):
                out[i] = caption
        return out  # type: ignore[return-value]
