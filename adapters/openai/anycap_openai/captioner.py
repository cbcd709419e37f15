"""GPT-4o and every OpenAI-compatible server as an AnyCap base captioner.

Media go as chat-completions content parts: an image as a base64 data URL, a video as its
sampled frames in order, audio as `input_audio` (wav) for models configured to take it.
Retries are the SDK's own (408/409/429/5xx, timeouts and dropped connections, exponential
backoff with jitter, Retry-After honoured; `benchmarks/api_throughput.py` measures them against
faults with and without Retry-After). Requests go through `openai_compat.ChatTransport`, the
one transport the judges, the remote ACM and the call engine share. The key is never shown.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any, Literal

from anycap_plugin import (
    BaseCaptioner,
    Caption,
    CaptionerError,
    CaptionOptions,
    Media,
    OptionsError,
)
from anycap_plugin.captioner import instructions_for, prompt_for
from anycap_plugin.media import Modality, audio_part, encoded, image_data_url, image_url_part
from anycap_plugin.openai_compat import ChatTransport
from anycap_plugin.openai_compat import api_key as resolve_key

if TYPE_CHECKING:  # the SDK loads when a captioner is built, not when the plugin registers
    import openai


class OpenAIOptions(CaptionOptions):
    max_tokens: int | None = 512
    temperature: float = 0.0
    top_p: float | None = None
    detail: Literal["auto", "low", "high"] = "auto"
    num_frames: int = 8
    system_prompt: str | None = None


class OpenAICaptioner(BaseCaptioner[OpenAIOptions]):
    """A chat-completions model; `modalities` says what the model takes (audio is opt-in)."""

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        modalities: tuple[Modality, ...] | list[Modality] = ("image", "video"),
        concurrency: int = 16,
        timeout: float | openai.Timeout = 60.0,
        max_retries: int = 5,
    ) -> None:
        base_url, key = self.preflight(model, base_url=base_url, api_key=api_key)
        self.id = f"openai:{model}"
        self.model = model
        self.modalities = frozenset(modalities)  # type: ignore[misc]
        self.transport = ChatTransport(
            base_url,
            key,
            timeout=timeout,
            max_retries=max_retries,
            concurrency=concurrency,
            sync=True,  # `caption` and the batch runner's threads
        )
        self.concurrency = concurrency

    @classmethod
    def preflight(
        cls, model: str | None, *, base_url: str | None = None, api_key: str | None = None, **_: Any
    ) -> tuple[str | None, str]:
        """What the captioner needs before any call: a model name, and a key unless `base_url` is a
        server that needs none. Returns the endpoint and key (checked on a Ray driver too)."""
        if not model:
            raise OptionsError(
                "The openai captioner needs a model name.",
                hint="Use a spec like 'openai:gpt-4o-mini'.",
            )
        base_url = (
            base_url or os.environ.get("OPENAI_BASE_URL") or None
        )  # an empty variable is no endpoint
        key = resolve_key(
            api_key,
            base_url=base_url,
            who="the OpenAI API",
            hint="Set OPENAI_API_KEY, or pass api_key=..., or point base_url at a server that needs none.",
        )
        return base_url, key

    @classmethod
    def from_client(cls, client: Any, model: str | None = None, **options: Any) -> OpenAICaptioner:
        """The endpoint, key, timeout and retry budget of a client the user already built.

        (The client's custom HTTP transport and default headers are not carried over.)"""
        if not model:
            raise OptionsError(
                "wrap() of an OpenAI client needs the model name.",
                hint='wrap(client, model="gpt-4o-mini").',
            )
        # the client's timeout as it is: a number, or the SDK's `Timeout` (its default among them)
        return cls(
            model,
            base_url=str(client.base_url),
            api_key=client.api_key,
            **{"timeout": client.timeout, "max_retries": client.max_retries, **options},
        )

    @property
    def client(self) -> openai.OpenAI:
        """The SDK client sync calls go through (its timeout and retries are the captioner's)."""
        return self.transport.client

    def __repr__(self) -> str:  # never show the key
        return (
            f"<OpenAICaptioner {self.model} base_url={self.transport.base_url or 'api.openai.com'}>"
        )

    # ---- request and reply ---------------------------------------------------------
    def build_messages(
        self, media: Media, instruction: str | None, options: OpenAIOptions
    ) -> list[dict[str, Any]]:
        prompt = prompt_for(media, instruction)
        parts: list[dict[str, Any]] = []
        if (
            media.modality == "image"
        ):  # the file's own bytes where the API takes its format (decoded first)
            parts.append(image_url_part(image_data_url(media, own_bytes=True), options.detail))
        elif media.modality == "video":
            frames = media.frames(num_frames=options.num_frames)
            parts.append(
                {
                    "type": "text",
                    "text": f"The following {len(frames)} images are frames of one video, "
                    f"in order ({frames.duration:.1f} s).",
                }
            )
            parts += [image_url_part(encoded(f), options.detail) for f in frames.images]
        else:
            parts.append(audio_part(media))
        parts.append({"type": "text", "text": prompt})
        messages: list[dict[str, Any]] = []
        if options.system_prompt:
            messages.append({"role": "system", "content": options.system_prompt})
        messages.append({"role": "user", "content": parts})
        return messages

    def _request(
        self, media: Media, instruction: str | None, options: OpenAIOptions
    ) -> dict[str, Any]:
        req: dict[str, Any] = {
            "model": self.model,
            "messages": self.build_messages(media, instruction, options),
            "temperature": options.temperature,
        }
        if options.max_tokens is not None:
            req["max_tokens"] = options.max_tokens
        if options.top_p is not None:
            req["top_p"] = options.top_p
        return req

    @staticmethod
    def _to_caption(response: Any) -> Caption:
        """A caption from the reply as plain JSON (`cast_to=dict`: no per-call response models)."""
        try:
            text = response["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            text = None
        if not isinstance(text, str):
            raise CaptionerError(
                "The model returned no caption (empty choices or content).",
                hint="Check the model's content filter or max_tokens.",
            )
        usage = {}
        reported = response.get("usage") if isinstance(response, dict) else None
        if isinstance(reported, dict):
            usage = {
                "prompt_tokens": reported.get("prompt_tokens"),
                "completion_tokens": reported.get("completion_tokens"),
            }
        return Caption(text=text.strip(), usage=usage)

    def _failure(self, error: openai.OpenAIError) -> CaptionerError:
        status, what = self.transport.failure(error)
        hint = {
            401: "Check OPENAI_API_KEY.",
            404: "Check the model name and base_url.",
            429: "Lower --concurrency or raise the rate limit.",
        }.get(status or 0)
        return CaptionerError(f"{self.id} failed {what}", hint=hint)

    # ---- sync and async calls ------------------------------------------------------
    def _caption(self, media: Media, instruction: str | None, options: OpenAIOptions) -> Caption:
        import openai

        request = self._request(media, instruction, options)
        try:
            return self._to_caption(self.transport.post_sync(request))
        except openai.OpenAIError as e:
            raise self._failure(e) from None

    async def _acaption(
        self, media: Media, instruction: str | None, options: OpenAIOptions
    ) -> Caption:
        import openai

        request = await asyncio.to_thread(self._request, media, instruction, options)
        try:
            return self._to_caption(await self.transport.post(request))
        except openai.OpenAIError as e:
            raise self._failure(e) from None

    async def acaption_batch(
        self, media: Any, instructions: Any = None, **options: Any
    ) -> list[Caption]:
        """Concurrent requests (bounded by `concurrency`) rather than one call in a thread."""
        items = list(media)
        paired = zip(items, instructions_for(len(items), instructions))
        return list(await asyncio.gather(*(self.acaption(m, i, **options) for m, i in paired)))
