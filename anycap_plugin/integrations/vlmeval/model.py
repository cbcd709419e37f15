"""Any AnyCap captioner spec as a VLMEvalKit model (`vlmeval.vlm.base.BaseModel`).

VLMEvalKit hands a model a message: a list of `{"type": "image"|"video"|"text", "value": ...}`
(paths for media). The dataset's prompt is the instruction; the one media item is the media.
Several images in one message are a video given as frames (datasets do that for models that are
not video LLMs); we declare `VIDEO_LLM = True`, so video datasets send the file and our own
decoder samples it. A failed item returns VLMEvalKit's failure marker with the reason, so its
flow records it, goes on, and retries it on the next run.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ...contained.vlmeval import import_vlmeval
from ...errors import AnyCapError, MediaError
from ..media_items import MEDIA_TYPES, media_of

import_vlmeval()

from vlmeval.inference import FAIL_MSG
from vlmeval.vlm.base import BaseModel

log = logging.getLogger(__name__)


class AnyCapVLM(BaseModel):
    """`AnyCapVLM("qwen2.5-vl:/models/qwen+acm:/models/acm", post_options={"max_new_tokens": 128})`.

    Keyword options are the base captioner's per-call options; `post_options` the post-processor's.
    `concurrent=True` lets VLMEvalKit call the model from `--api-nproc` threads at once (its API
    path, with its checkpointing): for API base captioners (`openai:`), whose calls wait on the network.
    """

    INTERLEAVE = False
    VIDEO_LLM = True  # takes the video file and samples frames itself
    allowed_types = ["text", "image", "video", "audio"]  # noqa: RUF012 - VLMEvalKit reads it
    is_api = False  # item by item; `concurrent=True` takes VLMEvalKit's threaded API path instead

    def __init__(
        self,
        spec: str,
        post_options: dict[str, Any] | None = None,
        concurrent: bool = False,
        **options: Any,
    ) -> None:
        from ...wrapping import build_captioner

        super().__init__()
        self.spec = spec
        self.captioner = build_captioner(spec, post_options=post_options)
        self.options = options
        self.is_api = concurrent

    def use_custom_prompt(self, dataset: str | None) -> bool:
        return False  # the dataset's own prompt is the instruction

    def build_prompt(self, line: Any, dataset: str | None = None) -> list[dict[str, str]]:
        raise NotImplementedError("AnyCapVLM uses each dataset's own prompt")

    def generate(self, message: Any, dataset: str | None = None) -> str:
        """A message of typed items goes straight to `generate_inner`: VLMEvalKit's own check guesses each
        path's type from its suffix and asserts, so a .flac, .m4a or .mkv file, or a missing one, would
        stop the whole run. Our decoder sniffs content, and a bad item fails alone."""
        if isinstance(message, list) and message and all(isinstance(m, dict) for m in message):
            for m in message:
                if m.get("type") not in self.allowed_types:
                    return self._failure(
                        MediaError(f"Unsupported message item type {m.get('type')!r}.")
                    )
                if m["type"] in MEDIA_TYPES and not os.path.exists(str(m.get("value"))):
                    return self._failure(MediaError(f"No such file: {m.get('value')}."))
            return self.generate_inner(message, dataset)
        return super().generate(
            message, dataset
        )  # str / list-of-str forms: VLMEvalKit normalises them

    def generate_inner(self, message: list[dict[str, str]], dataset: str | None = None) -> str:
        try:
            media, instruction = to_media(message)
            return self.captioner.caption(
                media, instruction=instruction or None, **self.options
            ).text
        except AnyCapError as e:
            return self._failure(e)

    @staticmethod
    def _failure(e: AnyCapError) -> str:
        log.warning("AnyCap item failed (%s): %s", type(e).__name__, e)
        return f"{FAIL_MSG} ({type(e).__name__}: {e})"


def to_media(message: list[dict[str, str]]) -> tuple[Any, str]:
    """The one media item of a VLMEvalKit message (several images: a video's frames) and its text."""
    text = "\n".join(m["value"] for m in message if m["type"] == "text").strip()
    return media_of([(m["type"], m["value"]) for m in message if m["type"] in MEDIA_TYPES]), text
