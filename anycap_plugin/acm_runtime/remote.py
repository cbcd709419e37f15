"""ACM behind an OpenAI-compatible endpoint (`acm:http://host:port/v1`).

The request protocol, which `anycap serve` and any other ACM server read: one user message
whose parts are the media (an image as an `image_url` data URL; a video as its frames, in
order, each after a `Frame{i}: ` text part and sent as one tile; audio as `input_audio` wav), then
one text part: the published ACM question (`prompt.question`), so a published ACM served as
InternVL-chat (LMDeploy, vLLM) receives exactly what the release's scripts send, with its own
chat template and media placeholders.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from ..acm.prompt import question as remote_prompt
from ..errors import CaptionerError, OptionsError
from ..media import Media
from ..media.chat_parts import media_parts
from ..openai_compat import ChatTransport, reply_text
from ..openai_compat import api_key as resolve_key
from .postprocessor import ACMOptions, ConstraintCheckedRefiner


class RemoteACM(ConstraintCheckedRefiner):
    """Refines through a served ACM; requests for a batch go out concurrently."""

    def __init__(
        self,
        base_url: str,
        *,
        model_name: str = "acm",
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        concurrency: int = 8,
        audio_part: Literal["input_audio", "audio_url"] = "input_audio",
    ) -> None:
        """`audio_part="audio_url"` for an ACM served by LMDeploy (`anycap serve --backend lmdeploy`)."""
        try:
            import openai  # noqa: F401 - refused here, not at the first request
        except ImportError:
            raise OptionsError(
                "A remote ACM needs the openai package.", hint="pip install 'anycap-plugin[eval]'"
            ) from None
        self.id = f"acm:{base_url}"
        self.model_name = model_name
        key = resolve_key(
            api_key, ("ANYCAP_ACM_API_KEY", "OPENAI_API_KEY"), base_url, who="the remote ACM"
        )
        self.transport = ChatTransport(
            base_url,
            key,
            timeout=timeout,
            max_retries=max_retries,
            concurrency=concurrency,
            sync=True,
        )
        self.concurrency = concurrency
        self.audio_part = audio_part

    def _one(
        self, media: Media, instruction: str | None, existing: str, options: ACMOptions
    ) -> tuple[str, int, int]:
        import openai

        content = [
            *media_parts(
                media, options.num_frames, audio_part_kind=self.audio_part, frame_labels=True
            ),
            {"type": "text", "text": remote_prompt(instruction, existing)},
        ]
        try:
            reply = self.transport.post_sync(
                {
                    "model": self.model_name,
                    "messages": [{"role": "user", "content": content}],
                    "max_tokens": options.max_new_tokens,
                    "temperature": 1.0 if options.do_sample else 0.0,
                }
            )
        except openai.OpenAIError as e:
            raise CaptionerError(f"{self.id} failed {self.transport.failure(e)[1]}") from None
        usage = (reply.get("usage") if isinstance(reply, dict) else None) or {}
        return (
            reply_text(reply).strip(),
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
        )

    def _generate(
        self,
        media: list[Media],
        instructions: list[str | None],
        existing: list[str],
        options: ACMOptions,
    ) -> list[tuple[str, int, int]]:
        with ThreadPoolExecutor(min(self.concurrency, max(len(media), 1))) as pool:
            return list(
                pool.map(lambda m, i, e: self._one(m, i, e, options), media, instructions, existing)
            )
