"""AnyCap plugin: Qwen2.5-Omni (`qwen2.5-omni:FOLDER_OR_HUB_ID`), its Thinker (text out), with transformers'
native classes: images, videos and audio in one model, batched (one left-padded `generate` per batch).

- A video goes in with its sound (the processor interleaves audio and frame tokens by time, as
  Qwen2.5-Omni was trained): `use_audio_in_video=False` sends the frames only. `meta["video_inputs"]`
  says which went in ("frames and sound", "frames only", or "frames only: no audio track").
- Frames are taken at `fps` (2, Qwen2.5-Omni's rate), at most `max_frames` of them (fewer per second
  for a longer video; `meta["fps"]` gives the rate used, which times the sound against the frames).
- Audio longer than the feature extractor's window is cut there, and `meta["audio"]` says so.
- A whole Qwen2.5-Omni folder (`Qwen/Qwen2.5-Omni-7B`) gives its Thinker only: the talker (speech
  out) and its pickled speaker file are never loaded. A Thinker folder loads as it is.
"""

from __future__ import annotations

from typing import Any

from anycap_plugin import Caption, hookimpl, prompt_for
from anycap_plugin.errors import MediaError
from anycap_plugin.hf import GenerationOptions, HFChatCaptioner, fit_audio, load_pretrained
from anycap_plugin.media import Media


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


@hookimpl
def register_captioners(register: Any) -> None:
    register(
        "qwen2.5-omni",
        Qwen25OmniCaptioner,
        needs_model=True,
        description="Qwen2.5-Omni's Thinker via transformers (image, video with its sound, audio); model = folder or hub id",
    )


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """A loaded Qwen2.5-Omni (the whole model or its Thinker): `wrap(model, processor=processor)`."""
    import sys

    whole = getattr(sys.modules.get("transformers"), "Qwen2_5OmniForConditionalGeneration", None)
    if whole is not None and isinstance(obj, whole):
        obj = obj.thinker
    return Qwen25OmniCaptioner.claim(obj, options, "Qwen2_5OmniThinkerForConditionalGeneration")
