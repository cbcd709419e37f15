"""The `acm` post-processor: ACM in process (transformers, any device) or remote (any
OpenAI-compatible endpoint serving ACM), batched, with checked length constraints.

When the instruction states a length constraint and the refined caption breaks it, ACM is asked
again with the violation stated and its last caption as the existing one, a bounded number of
times. Every caption records in `meta` whether it complies, so nothing silently passes.
"""

from __future__ import annotations

from typing import Any

from ..captioner import Caption, CaptionOptions, PostProcessor
from ..errors import ModalityNotSupportedError
from ..instructions import parse_length_constraint
from ..media import Media


class ACMOptions(CaptionOptions):
    max_new_tokens: int = 256
    do_sample: bool = False
    num_frames: int = 8
    check_constraints: bool = True
    max_attempts: int = 3
    use_audio_in_video: bool = (
        True  # a video's sound goes in with its frames, where the ACM has an audio branch
    )


class ConstraintCheckedRefiner(PostProcessor[ACMOptions]):
    """The refine-again loop, shared by every ACM backend; subclasses implement `_generate`."""

    def _generate(
        self,
        media: list[Media],
        instructions: list[str | None],
        existing: list[str],
        options: ACMOptions,
    ) -> list[tuple[str, int, int]]:
        """(caption, prompt tokens, completion tokens) for each item."""
        raise NotImplementedError

    def _refine_batch(
        self,
        media: list[Media],
        instructions: list[str | None],
        captions: list[Caption],
        options: ACMOptions,
    ) -> list[Caption]:
        return _refine_with_checks(self, media, instructions, captions, options)


class ACMPostProcessor(ConstraintCheckedRefiner):
    """ACM in process: `model` is an ACM folder, an InternVL-chat folder (the published layout) or a hub id."""

    def __init__(
        self, model: str | None = None, *, device: str | None = None, dtype: Any = None
    ) -> None:
        if not model:
            from ..errors import OptionsError

            raise OptionsError(
                "The acm post-processor needs a model folder or hub id.",
                hint="Use a spec like 'acm:/path/to/acm' or 'acm:qishisuren/AnyCapModel'.",
            )
        from .loading import LoadedACM

        self.id = f"acm:{model}"
        self.acm = LoadedACM(model, device, dtype)
        self.processor, self.model, self.device = (
            self.acm.processor,
            self.acm.model,
            self.acm.device,
        )
        # per instance: BaseCaptioner declares `modalities` a ClassVar
        self.modalities = self.acm.modalities  # type: ignore[misc]

    def check_modality(self, media: Media) -> None:
        why = getattr(self.model.config, "audio_absent", None)
        if media.modality == "audio" and why:
            raise ModalityNotSupportedError(
                f"{self.id} does not take audio ({media.ref}): {why}",
                hint="Caption audio with an ACM that has an audio encoder.",
            )
        super().check_modality(media)

    def _generate(
        self,
        media: list[Media],
        instructions: list[str | None],
        existing: list[str],
        options: ACMOptions,
    ) -> list[tuple[str, int, int]]:
        sound = [self.video_inputs(m, options) == "frames and sound" for m in media]
        inputs = self.processor(
            media, instructions, existing, num_frames=options.num_frames, video_sound=sound
        )
        return self.acm.generate(
            inputs, max_new_tokens=options.max_new_tokens, do_sample=options.do_sample
        )

    def video_inputs(self, media: Media, options: ACMOptions) -> str | None:
        """What of a video goes in (`Media.video_inputs`): its frames, and its sound where this ACM can
        hear (None: not a video)."""
        if media.modality != "video":
            return None
        deaf = getattr(self.model.config, "audio_config", None) is None
        return media.video_inputs(
            options.use_audio_in_video, "this ACM has no audio branch" if deaf else None
        )

    def _refine_batch(
        self,
        media: list[Media],
        instructions: list[str | None],
        captions: list[Caption],
        options: ACMOptions,
    ) -> list[Caption]:
        random = bool(getattr(self.model.config, "anycap_random_weights", False))
        if random:  # noise is not judged against a constraint, nor asked again
            options = options.model_copy(update={"check_constraints": False})
        refined = _refine_with_checks(self, media, instructions, captions, options)
        for m, caption in zip(media, refined):
            used = self.video_inputs(m, options)
            if used is not None:
                caption.meta["video_inputs"] = used
            if random:
                caption.meta["random_weights"] = True
        return refined


def _refine_with_checks(
    refiner: ConstraintCheckedRefiner,
    media: list[Media],
    instructions: list[str | None],
    captions: list[Caption],
    options: ACMOptions,
) -> list[Caption]:
    results = refiner._generate(media, instructions, [c.text for c in captions], options)
    texts = [r[0] for r in results]
    usage = [{"prompt_tokens": r[1], "completion_tokens": r[2]} for r in results]
    constraints = [
        parse_length_constraint(i) if (i and options.check_constraints) else None
        for i in instructions
    ]
    attempts = [1] * len(media)
    for _ in range(options.max_attempts - 1):
        redo = [k for k, c in enumerate(constraints) if c is not None and not c.check(texts[k]).ok]
        if not redo:
            break
        asks: list[str | None] = []
        for k in redo:
            check = constraints[k].check(texts[k])  # type: ignore[union-attr]
            asks.append(
                f"{instructions[k]} (Your last caption had {check.count} {check.constraint.unit}; "
                f"it must have {check.constraint.describe()}.)"
            )
        again = refiner._generate([media[k] for k in redo], asks, [texts[k] for k in redo], options)
        for k, (text, p, c) in zip(redo, again):
            texts[k] = text
            attempts[k] += 1
            usage[k] = {
                "prompt_tokens": usage[k]["prompt_tokens"] + p,
                "completion_tokens": usage[k]["completion_tokens"] + c,
            }
    out = []
    for k, text in enumerate(texts):
        constraint = constraints[k]
        meta: dict[str, Any] = {"attempts": attempts[k]}
        if constraint is not None:
            check = constraint.check(text)
            meta.update(complies=check.ok, length=check.count, constraint=constraint.describe())
        else:
            meta["complies"] = None  # no constraint stated, or checking switched off
        out.append(Caption(text=text, usage=usage[k], meta=meta))
    return out
