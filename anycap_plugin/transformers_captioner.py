"""The captioner base for local transformers chat models: options, left-padded batched generation,
per-item token usage, and audio cut to what a model hears.

Adapters subclass `HFChatCaptioner` and say only how one item becomes a prompt and its
pixels (`build_prompt`); everything a batch needs is here once.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .captioner import BaseCaptioner, Caption, CaptionOptions, prompt_for
from .errors import OptionsError
from .media import Media
from .model_loading import choose_device, choose_dtype, load_pretrained, preflight_model


class GenerationOptions(CaptionOptions):
    max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    num_frames: int = 8

    def generate_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample}
        if self.do_sample:
            kw.update(
                {
                    k: v
                    for k, v in (
                        ("temperature", self.temperature),
                        ("top_p", self.top_p),
                        ("top_k", self.top_k),
                    )
                    if v is not None
                }
            )
        return kw


GO = TypeVar(
    "GO", bound=GenerationOptions
)  # an HF adapter's options: GenerationOptions or a subclass of it


class HFChatCaptioner(BaseCaptioner[GO]):
    """A transformers image-text-to-text model driven through its processor, batched for real."""

    Options = GenerationOptions
    modalities = frozenset({"image", "video"})
    spec_name = "hf"
    # pad the texts only, leaving audio features at the window the feature extractor pads them to
    # (a top-level `padding=True` reaches the feature extractor too: Audio Flamingo 3 then breaks)
    pad_text_only = False

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        dtype: Any = None,
        **model_kwargs: Any,
    ) -> None:
        from transformers import AutoProcessor

        self.preflight(model)
        assert model is not None
        self.id = f"{self.spec_name}:{model}"
        self.device = choose_device(device)
        self.dtype = choose_dtype(dtype, self.device)
        self.processor = load_pretrained(AutoProcessor, model)
        self.ready_processor()
        self.model = self.load_model(model, dtype=self.dtype, **model_kwargs).to(self.device).eval()

    def ready_processor(self) -> None:
        """The engine's own processor made ready for batches: left padding."""
        self.processor.tokenizer.padding_side = "left"

    def load_model(self, model: str, **kwargs: Any) -> Any:
        """The model itself (image-text-to-text models through the Auto class; others override this)."""
        from transformers import AutoModelForImageTextToText

        return load_pretrained(AutoModelForImageTextToText, model, **kwargs)

    @classmethod
    def preflight(cls, model: str | None, **_: Any) -> None:
        preflight_model(model, cls.spec_name)

    @classmethod
    def claim(
        cls, obj: Any, options: dict[str, Any], *model_classes: str
    ) -> HFChatCaptioner | None:
        """What an adapter's `adapt_captioner` returns: this captioner around `obj` when it is one of the
        named transformers classes, else None. A loaded transformers model means transformers is
        imported, so nothing is imported for objects of other frameworks."""
        import sys

        if "transformers" not in sys.modules:
            return None
        transformers = sys.modules["transformers"]
        classes = tuple(getattr(transformers, name) for name in model_classes)
        return cls.from_loaded(obj, **options) if isinstance(obj, classes) else None

    @classmethod
    def from_loaded(cls, model: Any, processor: Any = None, **unknown: Any) -> HFChatCaptioner:
        """A model the user already holds, with its processor: nothing is loaded, moved or cast.

        The processor is copied (batching needs left padding; the user's own is left as it is)."""
        import copy

        if unknown:
            raise OptionsError(
                f"wrap() of a {type(model).__name__} takes processor=... only; got {sorted(unknown)}.",
                hint="Per-call options (max_new_tokens, num_frames, ...) go to caption().",
            )
        if processor is None:
            raise OptionsError(
                f"wrap() of a {type(model).__name__} needs its processor.",
                hint="wrap(model, processor=AutoProcessor.from_pretrained(...)).",
            )
        self = cls.__new__(cls)
        self.id = f"{cls.spec_name}:{getattr(model, 'name_or_path', '') or type(model).__name__}"
        self.device, self.dtype = model.device, model.dtype
        self.processor = copy.deepcopy(processor)
        self.ready_processor()
        self.model = model.eval()
        return self

    @abstractmethod
    def build_prompt(
        self, media: Media, instruction: str | None, options: GO
    ) -> tuple[str, dict[str, Any]]:
        """The prompt text for one item and its inputs: {"images": [...]}, {"videos": [...]} and/or {"audio":
        [16 kHz samples]}; "meta" says what went in (stamped on its `Caption.meta`)."""

    def _caption_batch(
        self, media: list[Media], instructions: list[str | None], options: GO
    ) -> list[Caption]:
        # decoding pictures (PIL, PyAV's video frames) releases the GIL: a batch's images and videos
        # are built in parallel. Audio is resampled frame by frame under the GIL, where threads only
        # contend for it (benchmarks/local_batching.py: 14% more CPU than one at a time): in turn.
        def build(i: int) -> tuple[str, dict[str, Any]]:
            return self.build_prompt(media[i], instructions[i], options)

        prompts: dict[int, tuple[str, dict[str, Any]]] = {}
        pictures = [i for i, m in enumerate(media) if m.modality != "audio"]
        if len(pictures) > 1:
            with ThreadPoolExecutor(min(len(pictures), 4)) as pool:
                prompts.update(zip(pictures, pool.map(build, pictures)))
        return self.generate_grouped(
            [prompts[i] if i in prompts else build(i) for i in range(len(media))], options
        )

    def generate_grouped(
        self, prompts: list[tuple[str, dict[str, Any]]], options: GenerationOptions
    ) -> list[Caption]:
        """One `generate` per group of items the processor takes in one call, in the batch's order.

        A call takes one frame rate (`parts["fps"]`, which times the video's position ids), and an
        omni processor interleaves videos' sound with their frames for a whole call
        (`parts["audio_of_video"]`, see `with_video_sound`): such items go in calls of their own."""
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

    def generate(
        self,
        prompts: list[tuple[str, dict[str, Any]]],
        options: GenerationOptions,
        processor_kwargs: dict[str, Any] | None = None,
        generate_kwargs: dict[str, Any] | None = None,
    ) -> list[Caption]:
        """One left-padded `generate` for the batch's prompts (`build_prompt`'s output)."""
        import torch

        texts, images, videos, audio, video_metadata = [], [], [], [], []
        for text, parts in prompts:
            texts.append(text)
            images += parts.get("images", [])
            videos += parts.get("videos", [])
            audio += parts.get("audio", [])
            video_metadata += parts.get("video_metadata", [])
        extra = dict(processor_kwargs or {})
        if audio:
            extra.update(audio=audio, sampling_rate=SAMPLING_RATE)
        if video_metadata:  # frames sampled here, with their times: the processor samples none
            extra.update(video_metadata=video_metadata, do_sample_frames=False)
        if self.pad_text_only:
            extra["text_kwargs"] = {"padding": True, **extra.get("text_kwargs", {})}
        else:
            extra["padding"] = True
        inputs = self.processor(
            text=texts, images=images or None, videos=videos or None, return_tensors="pt", **extra
        )
        inputs = inputs.to(self.device, dtype=self.dtype)
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                **options.generate_kwargs(),
                **(generate_kwargs or {}),
                pad_token_id=self.processor.tokenizer.pad_token_id,
            )
        new = out[:, inputs["input_ids"].shape[1] :]
        decoded = self.processor.batch_decode(new, skip_special_tokens=True)
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        completion_tokens = generated_lengths(
            new, self.model.generation_config.eos_token_id, self.processor.tokenizer.pad_token_id
        )
        return [
            Caption(
                text=t.strip(),
                usage={"prompt_tokens": int(p), "completion_tokens": int(c)},
                meta=dict(parts.get("meta", {})),
            )
            for t, p, c, (_, parts) in zip(decoded, prompt_tokens, completion_tokens, prompts)
        ]


SAMPLING_RATE = 16000  # what the Whisper-style feature extractors of the audio models take


def fit_audio(
    samples: Any, feature_extractor: Any, family: str, window: int | None = None
) -> tuple[Any, dict[str, Any]]:
    """Audio as long as the model takes (`window` samples, else its feature extractor's window: 30 s
    for Qwen2-Audio), cut there, never silently: the returned meta says how much was heard."""
    window = window or int(getattr(feature_extractor, "n_samples", 0) or 0)
    seconds = len(samples) / SAMPLING_RATE
    if window and len(samples) > window:
        heard = window / SAMPLING_RATE
        return samples[:window], {
            "audio": f"the first {heard:.1f} s of {seconds:.1f} s ({family} hears {heard:.0f} s "
            "at most)"
        }
    return samples, {}


def features_over_audio_only(feature_extractor: Any) -> None:
    """Let a Whisper feature extractor that pads every clip to its whole window (30 s: Audio Flamingo
    3's processor, in windows of up to 10 minutes) compute log-mel frames over the audio only.

    The model still gets the whole window: its encoder adds one position embedding to each of the
    window's 3,000 frames, so the padding is part of what it sees. But a frame of the padding is a
    constant (silence, clamped to the window's loudest frame less 80 dB), so the frames past the
    audio (and past one STFT window of silence after it) are copies of the first silent frame rather
    than transforms of zeros; each clip of a batch over its own length. The result equals the
    extractor's own bit for bit: checked on the first batch it computes, which turns the shortcut off
    for good where it does not (another torch build, another extractor). Only a
    `WhisperFeatureExtractor` without dither is changed, and only the instance given (the engine's
    own processor: `from_loaded` copies the user's); it still saves and prints as one."""
    from transformers import WhisperFeatureExtractor

    if type(feature_extractor) is WhisperFeatureExtractor and not feature_extractor.dither:
        feature_extractor.__class__ = _audio_only_frames()
        feature_extractor._frames_checked = []  # [True]: the first batch matched; [False]: off


@functools.cache
def _audio_only_frames() -> type:
    """`WhisperFeatureExtractor` computing its frames over the audio only (`features_over_audio_only`)."""
    import numpy as np
    from transformers import WhisperFeatureExtractor

    class AudioOnlyFrames(WhisperFeatureExtractor):  # type: ignore[misc]
        def _torch_extract_fbank_features(self, waveform: Any, device: str = "cpu") -> Any:
            whole = super()._torch_extract_fbank_features
            checked = self._frames_checked
            if checked == [False] or device != "cpu" or waveform.ndim != 2:
                return whole(waveform, device)
            hop, width = self.hop_length, waveform.shape[1]
            out = np.empty((len(waveform), self.feature_size, width // hop), np.float32)
            for row, samples in enumerate(waveform):  # each clip over its own length
                heard = np.flatnonzero(samples)
                end = int(heard[-1]) + 1 if len(heard) else 0
                # past `end`, one STFT window and two hops of silence: the last frame computed is silent
                cut = min(-(-(end + self.n_fft + 2 * hop) // hop) * hop, width)
                head = whole(np.ascontiguousarray(samples[None, :cut]), device)[0]
                out[row, :, : head.shape[1]] = head
                out[row, :, head.shape[1] :] = head[:, -1:]
            if not checked:
                checked.append(bool(np.array_equal(out, reference := whole(waveform, device))))
                return reference
            return out

        def to_dict(self) -> dict[str, Any]:  # saved and printed as the extractor it is
            out = super().to_dict()
            out.pop("_frames_checked", None)
            out["feature_extractor_type"] = WhisperFeatureExtractor.__name__
            return dict(out)

    return AudioOnlyFrames


def with_video_sound(
    parts: dict[str, Any],
    media: Media,
    feature_extractor: Any,
    family: str,
    window: int | None = None,
    wanted: bool = True,
) -> dict[str, Any]:
    """A video's sound beside its frames (`video_inputs` output), for an omni model that hears it:
    the processor interleaves it with the frames by time (`generate_grouped`). Cut as `fit_audio`
    cuts audio; `meta["video_inputs"]` says what went in (`Media.video_inputs`: a silent video, or
    `wanted=False`, gives frames only)."""
    meta = parts.setdefault("meta", {})
    meta["video_inputs"] = used = media.video_inputs(wanted)
    if used == "frames and sound":
        samples, heard = fit_audio(media.audio().samples, feature_extractor, family, window)
        parts.update(audio=[samples], audio_of_video=True)
        meta.update(heard)
    return parts


def generated_lengths(new_tokens: Any, eos: Any, pad: int | None) -> list[int]:
    """Tokens generated per row: up to and including the first end-of-sequence token; a row that
    never stopped counts its tokens that are not padding (a batch pads rows that ended early)."""
    eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
    lengths = []
    for row in new_tokens.tolist():
        n = next((i + 1 for i, t in enumerate(row) if t in eos_ids), None)
        lengths.append(n if n is not None else sum(1 for t in row if t != pad))
    return lengths


class ChatTemplateOptions(GenerationOptions):
    fps: float | None = (
        None  # video frames per second; None: the model's own rate (its video processor's)
    )
    max_frames: int = 32


class ChatTemplateCaptioner(HFChatCaptioner[ChatTemplateOptions]):
    """Any transformers chat model through its processor's own chat template, as model cards send it:
    one user turn holding the media, then the instruction as text (no system turn unless the template
    adds one). Images go in whole; video as frames at the model's rate (cut at `max_frames`, with
    their times); audio at 16 kHz up to what the model hears. `meta` says what went in.

    A family subclasses this only where its model truly differs (`model_class`, `sends_instruction`)."""

    Options = ChatTemplateOptions
    spec_name = "transformers"
    family = "the model"  # named where meta says the audio was cut
    model_class: str | None = None  # transformers' class that loads it; None: the Auto classes
    sends_instruction = True  # False: the model takes no text (a captioner such as Qwen3-Omni's)
    # the most it hears, where its processor does not say (its `max_audio_len`, as Audio Flamingo 3's
    # does: 10 minutes) and its feature extractor's window is not it
    audio_seconds: float | None = None
    pad_text_only = True

    @classmethod
    def at_scale(cls) -> list[str]:
        """How to run the same checkpoint at corpus scale (`anycap models --options NAME` prints it;
        docs/adapters.md explains it): an engine serving the OpenAI API, captioned through `openai:`."""
        return [
            "this spec runs one process's batched generate; for a corpus, serve the checkpoint",
            "with vLLM or LMDeploy and caption through openai: (many requests in flight, -c):",
            "  vllm serve MODEL --port 8000",
            "  # or: lmdeploy serve api_server MODEL --server-port 8000",
            "  OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=unused \\",
            "    anycap caption FILES -m openai:MODEL -c 32 -o captions.jsonl",
            "where the engine's list of supported models names the family (its chat template and",
            "media preprocessing are its own: captions match this spec's only as far as those do)",
        ]

    def ready_processor(self) -> None:
        super().ready_processor()
        features_over_audio_only(getattr(self.processor, "feature_extractor", None))

    def load_model(self, model: str, **kwargs: Any) -> Any:
        import transformers

        if self.model_class is None:
            return super().load_model(model, **kwargs)
        return load_pretrained(getattr(transformers, self.model_class), model, **kwargs)

    def build_prompt(
        self, media: Media, instruction: str | None, options: ChatTemplateOptions
    ) -> tuple[str, dict[str, Any]]:
        content: list[dict[str, Any]] = [{"type": media.modality}]
        if self.sends_instruction:
            content.append({"type": "text", "text": prompt_for(media, instruction)})
        prompt = self.processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
        parts = self.media_inputs(media, options)
        if not self.sends_instruction:
            parts.setdefault("meta", {})["instruction"] = (
                "not sent: the model takes the media alone (a post-processor makes it follow one)"
            )
        return prompt, parts

    def media_inputs(self, media: Media, options: ChatTemplateOptions) -> dict[str, Any]:
        """The item's media as the processor takes them, and `meta` on what went in."""
        if media.modality == "image":
            return {"images": [media.image()]}
        if media.modality == "audio":
            samples, meta = fit_audio(
                media.audio().samples,
                getattr(self.processor, "feature_extractor", None),
                self.family,
                self.audio_window(),
            )
            return {"audio": [samples], "meta": meta}
        return self.video_inputs(media, options)

    def audio_window(self) -> int | None:
        """How many 16 kHz samples the model hears (None: its feature extractor's window)."""
        if seconds := getattr(self.processor, "max_audio_len", None) or self.audio_seconds:
            return int(seconds * SAMPLING_RATE)
        return None

    def video_inputs(self, media: Media, options: ChatTemplateOptions) -> dict[str, Any]:
        """Frames at `fps` (the video processor's own rate unless given), at most `max_frames`, an even
        count where the vision encoder pairs frames; each with its time, so the processor samples none."""
        from transformers.video_utils import VideoMetadata

        video_processor = self.processor.video_processor
        fps = options.fps or getattr(video_processor, "fps", None)
        limit = min(options.max_frames, getattr(video_processor, "max_frames", None) or 10**6)
        if fps:
            frames = media.frames(fps=fps, max_frames=limit)
        else:
            frames = media.frames(num_frames=min(options.num_frames, limit))
        if len(frames) % 2 and getattr(video_processor, "temporal_patch_size", 1) > 1:
            frames = media.frames(num_frames=len(frames) + (1 if len(frames) < limit else -1))
        rate = round(len(frames) / max(frames.duration, 1e-3), 4)
        meta: dict[str, Any] = {"frames": len(frames), "fps": rate}
        if fps and frames.duration * fps > limit:
            meta["frames_cut"] = f"{len(frames)} frames over {frames.duration:.1f} s (max_frames)"
        ticks = [round(t * 100) for t in frames.timestamps]  # times in hundredths of a second
        metadata = VideoMetadata(
            total_num_frames=len(frames),
            fps=100.0,
            duration=frames.duration,
            frames_indices=ticks,
            width=frames.images[0].width,
            height=frames.images[0].height,
        )
        return {"videos": [frames.images], "video_metadata": [metadata], "meta": meta}
