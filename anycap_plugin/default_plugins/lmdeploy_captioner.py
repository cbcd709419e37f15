"""An LMDeploy VLM pipeline as an AnyCap base captioner: `wrap(lmdeploy.pipeline(path))`.

A batch goes to the pipeline in one call, in its own OpenAI message format (an image as one
`image_url` data URL, a video as its sampled frames in order, each after `Frame{i}: ` and as one
tile, as InternVL models read video; then the instruction), with one
`GenerationConfig`; LMDeploy batches the requests itself. Running it needs LMDeploy's GPU
engine; building the messages does not (tested on CPU through LMDeploy's own request side).
"""

from __future__ import annotations

import sys
from typing import Any

from ..captioner import BaseCaptioner, Caption, prompt_for
from ..errors import CaptionerError, OptionsError
from ..media import Media
from ..media.chat_parts import media_parts
from ..transformers_captioner import GenerationOptions


def messages(media: Media, instruction: str | None, num_frames: int) -> list[dict[str, Any]]:
    """One request in LMDeploy's OpenAI message format."""
    text = {"type": "text", "text": prompt_for(media, instruction)}
    return [
        {
            "role": "user",
            "content": [*media_parts(media, num_frames, quality=95, frame_labels=True), text],
        }
    ]


class LMDeployPipelineCaptioner(BaseCaptioner[GenerationOptions]):
    """Captions with a pipeline the user already built (`lmdeploy.pipeline(...)`)."""

    modalities = frozenset({"image", "video"})

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.id = f"lmdeploy:{getattr(pipe, 'model_path', None) or type(pipe).__name__}"

    def _caption_batch(
        self, media: list[Media], instructions: list[str | None], options: GenerationOptions
    ) -> list[Caption]:
        from lmdeploy import GenerationConfig

        gen = GenerationConfig(**options.generate_kwargs())
        replies = self.pipe(
            [messages(m, i, options.num_frames) for m, i in zip(media, instructions)],
            gen_config=gen,
        )
        out = []
        for reply in replies:
            if getattr(reply, "finish_reason", None) == "error" or not isinstance(reply.text, str):
                why = getattr(reply, "error_message", None) or reply.text
                raise CaptionerError(f"{self.id} returned an error: {str(why)[:200]!r}.")
            out.append(
                Caption(
                    text=reply.text.strip(),
                    usage={
                        "prompt_tokens": reply.input_token_len,
                        "completion_tokens": reply.generate_token_len,
                    },
                )
            )
        return out


def adapt(obj: Any, options: dict[str, Any]) -> LMDeployPipelineCaptioner | None:
    """Claim an `lmdeploy.pipeline(...)` object."""
    if "lmdeploy" not in sys.modules:
        return None
    from lmdeploy.pipeline import Pipeline

    if not isinstance(obj, Pipeline):
        return None
    if options:
        raise OptionsError(
            f"wrap() of an LMDeploy pipeline takes no options (got {sorted(options)}).",
            hint="Configure the pipeline when you build it; generation options go to caption().",
        )
    return LMDeployPipelineCaptioner(obj)
