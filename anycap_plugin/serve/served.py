"""What a server serves: one spec, a post-processor (ACM alone) or a captioner (a whole chain).

A post-processor refines the base caption the request carries; a captioner (`qwen2.5-vl:PATH+acm:PATH`)
captions the media itself. Either way a batch of requests becomes one batched model call, grouped
by generation options; a failing batch is retried item by item so one bad request fails alone.
"""

from __future__ import annotations

from typing import Any

from ..captioner import BaseCaptioner, Caption, PostProcessor
from ..errors import (
    AnyCapError,
    InstructionError,
    MediaError,
    ModalityNotSupportedError,
    OptionsError,
    RequestError,
)
from ..plugins import get_post_processor, registrations, spec_name
from .protocol import CaptionRequest

CLIENT_ERRORS = (
    MediaError,
    ModalityNotSupportedError,
    OptionsError,
    InstructionError,
    RequestError,
)


class ServedModel:
    """`options` and `post_options` are per-call defaults (`anycap serve -O/-P`): a post-processor
    served alone takes `post_options` per call, a chain fixes them and takes `options`; a request's
    own settings win."""

    def __init__(
        self,
        spec: str,
        name: str | None = None,
        options: dict[str, Any] | None = None,
        post_options: dict[str, Any] | None = None,
    ) -> None:
        kind = spec_name(spec)
        self.target: BaseCaptioner | PostProcessor
        if kind in registrations("post-processor"):
            self.target = get_post_processor(spec)
            self.defaults = dict(post_options or {})
        else:
            from ..wrapping import Chain

            chain = Chain.parse(spec, options=options, post_options=post_options)
            self.target = chain.build()
            self.defaults = dict(chain.options)
        self.spec = spec
        self.name = name or kind  # what clients put in `model`: `acm`, or the chain's base name
        self.is_post_processor = isinstance(self.target, PostProcessor)

    def options(self, request: CaptionRequest) -> dict[str, Any]:
        """The request's generation settings, in the target's own option names where it has them."""
        fields = self.target.Options.model_fields
        out: dict[str, Any] = dict(self.defaults)
        if request.max_tokens is not None and "max_new_tokens" in fields:
            out["max_new_tokens"] = request.max_tokens
        if request.temperature and "do_sample" in fields:
            out["do_sample"] = True
            if "temperature" in fields:
                out["temperature"] = request.temperature
        return out

    def run(self, requests: list[CaptionRequest]) -> list[Caption | Exception]:
        """Captions for a batch, in order; a failure is returned in its item's place (`caption_each`)."""
        results: list[Caption | Exception] = [RuntimeError("no result")] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(tuple(sorted(self.options(r).items())), []).append(i)
        for key, indices in groups.items():
            group = [requests[i] for i in indices]
            media = [
                r.media
                if r.media is not None
                else RequestError(
                    "The request has no media: send an image, a video or an audio clip."
                )
                for r in group
            ]
            instructions = [r.instruction for r in group]
            try:
                if isinstance(self.target, PostProcessor):
                    bases = [Caption(text=r.base_caption or "") for r in group]
                    outcomes = self.target.refine_each(media, instructions, bases, **dict(key))
                else:
                    outcomes = self.target.caption_each(media, instructions, **dict(key))
            except Exception as e:  # options the target rejects: every request of the group gets it
                outcomes = [e] * len(group)
            for i, outcome in zip(indices, outcomes):
                results[i] = outcome
        return results


def usage_of(caption: Caption) -> dict[str, int]:
    """Prompt and completion tokens over every stage of a chain."""
    prompt = completion = 0
    for stage in caption.usage.values():  # keyed by stage (`Caption.usage`)
        prompt += int(stage.get("prompt_tokens", 0) or 0)
        completion += int(stage.get("completion_tokens", 0) or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def error_status(error: BaseException) -> tuple[int, str, str]:
    """(HTTP status, error code, message safe to show) for a failed request."""
    if isinstance(error, RequestError):
        return error.status, error.code, str(error)
    if isinstance(error, CLIENT_ERRORS):
        return 400, "invalid_request", str(error)
    if isinstance(error, AnyCapError):
        return 502, "model_error", f"The model failed: {type(error).__name__}."
    return 500, "server_error", "Internal server error."
