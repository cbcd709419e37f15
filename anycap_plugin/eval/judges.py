"""Judges: any chat-completions endpoint asked for verdicts under a judge protocol.

What is asked and how replies are read is the protocol's (`protocols/`); this module sends the
requests, shows the style judge the media, and turns every way an item can go wrong (a request
that fails or times out, replies that stay invalid, media that is missing, corrupt or too large)
into a `JudgeError`: counted as that item's failure, never scored as zero, never fatal to the run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Protocol

from ..errors import AnyCapError, JudgeError
from ..openai_compat import ChatTransport, ask_parsed, reply_text
from ..openai_compat import api_key as resolve_key
from .protocols import JudgeProtocol
from .protocols.anycap import PROMPT_VERSION, AnyCapProtocol
from .references import EvalItem

__all__ = [
    "PROMPT_VERSION",
    "ChatJudge",
    "Judge",
    "JudgeError",
    "OpenAIJudge",
    "anycapeval_judge",
]


class Judge(Protocol):
    """What the evaluator needs from a judge. `id` names model and prompt version (cache key)."""

    id: str

    async def judge_content(self, item: EvalItem, caption: str) -> list[int]: ...

    async def judge_style(self, item: EvalItem, caption: str) -> int: ...

    # optional: `prefetch(pairs)` is called once with every (item, caption) before judging
    # optional: `judge_content_why` / `judge_style_why` return (verdict, the judge's reasons), which
    # reports and the cache keep; a judge without them reports no reasons


# ---- the OpenAI-compatible judge -------------------------------------------------------
class ChatJudge:
    """Any chat-completions endpoint asked for verdicts; async, with a concurrency limit.

    The transport (429, 5xx, timeouts) is retried by the SDK; a reply that `parse` rejects is
    asked again up to `invalid_retries` times, then raised as `JudgeError`.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 16,
        timeout: float = 60.0,
        max_retries: int = 5,
        invalid_retries: int = 2,
        temperature: float = 0.0,
        json_mode: bool = True,
    ) -> None:
        key = resolve_key(
            api_key,
            base_url=base_url,
            who="the judge",
            hint="Set OPENAI_API_KEY, or pass --judge-base-url for a server that needs none.",
        )
        self.model = model
        self.transport = ChatTransport(
            base_url, key, timeout=timeout, max_retries=max_retries, concurrency=concurrency
        )
        self.concurrency = concurrency
        self.invalid_retries = invalid_retries
        self.temperature = temperature
        self._json_mode = json_mode  # dropped once if the server rejects response_format

    async def _ask(self, messages: list[dict[str, Any]], json_reply: bool = True) -> str:
        import openai

        request: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "messages": messages,
        }
        if json_reply and self._json_mode:
            try:
                return reply_text(
                    await self.transport.post(
                        {**request, "response_format": {"type": "json_object"}}
                    )
                )
            except openai.BadRequestError as e:
                if "response_format" not in str(e):
                    raise
                self._json_mode = False
        return reply_text(await self.transport.post(request))

    async def _verdict(self, content: Any, parse: Any, what: str, json_reply: bool = True) -> Any:
        import openai

        try:
            _, verdict = await ask_parsed(
                lambda messages: self._ask(messages, json_reply),
                [{"role": "user", "content": content}],
                parse,
                self.invalid_retries + 1,
                lambda problems: JudgeError(
                    f"Invalid judge replies for {what}: {'; '.join(problems)}."
                ),
            )
        except openai.OpenAIError as e:
            raise JudgeError(
                f"Judge request for {what} failed {self.transport.failure(e)[1]}"
            ) from None
        return verdict


class OpenAIJudge(ChatJudge):
    """The AnyCapEval judge on any chat-completions endpoint, under a judge protocol.

    With `media_root`, the style judge sees each item's media (audio only with `audio=True`
    under the anycap protocol; always under the release protocol, which requires media). Media
    that is missing, does not decode, or exceeds `max_media_mb` fails that item.
    """

    def __init__(
        self,
        model: str,
        *,
        protocol: JudgeProtocol | None = None,
        temperature: float | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 16,
        timeout: float = 60.0,
        max_retries: int = 5,
        invalid_retries: int = 2,
        media_root: str | None = None,
        audio: bool = False,
        max_media_mb: float = 20.0,
    ) -> None:
        self.protocol = protocol or AnyCapProtocol()
        super().__init__(
            model,
            base_url=base_url,
            api_key=api_key,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            invalid_retries=invalid_retries,
            temperature=self.protocol.temperature if temperature is None else temperature,
            json_mode=self.protocol.json_mode,
        )
        self.media_root, self.audio, self.max_media_bytes = (
            media_root,
            audio,
            int(max_media_mb * 2**20),
        )
        self.id = f"openai:{model}|{self.protocol.id}|t={self.temperature:g}|{self.style_media}"

    @property
    def style_media(self) -> str:
        """What the style judge sees besides text: `media`, `media+audio`, or `text`."""
        if not self.media_root:
            return "text"
        return "media+audio" if (self.audio or self.protocol.style_media_required) else "media"

    def describe(self) -> dict[str, Any]:
        """The settings that decide whether two reports' numbers are comparable (report `meta.setup`)."""
        return {
            "protocol": self.protocol.name,
            "prompts": self.protocol.prompt_hashes(),
            "judge_model": self.model,
            "temperature": self.temperature,
            "style_media": self.style_media,
        }

    async def judge_content(self, item: EvalItem, caption: str) -> list[int]:
        return (await self.judge_content_why(item, caption))[0]

    async def judge_style(self, item: EvalItem, caption: str) -> int:
        return (await self.judge_style_why(item, caption))[0]

    async def judge_content_why(
        self, item: EvalItem, caption: str
    ) -> tuple[list[int], list[str | None] | None]:
        """The flags and the judge's reason for each key point (None where it gives none)."""

        def parse(text: str) -> tuple[list[int], list[str | None] | None]:
            return self.protocol.parse_content(text, item), self.protocol.content_reasons(
                text, item
            )

        return await self._verdict(
            self.protocol.content_prompt(item, caption),
            parse,
            f"{item.modality} content item {item.id}",
        )

    async def judge_style_why(self, item: EvalItem, caption: str) -> tuple[int, str | None]:
        """The score and the judge's reason."""
        text = self.protocol.style_prompt(item, caption)
        parts = await asyncio.to_thread(self._media_parts, item)
        text_part = {"type": "text", "text": text}
        content: Any = (
            text
            if not parts
            else ([*parts, text_part] if self.protocol.media_first else [text_part, *parts])
        )
        return await self._verdict(
            content,
            lambda t: (self.protocol.parse_style(t), self.protocol.style_reason(t)),
            f"{item.modality} style item {item.id}",
        )

    def _media_parts(self, item: EvalItem) -> list[dict[str, Any]]:
        """The item's media as content parts; any way the media is unusable is this item's JudgeError."""
        from ..media import Media

        what = f"{item.modality} style item {item.id}"
        if not self.media_root:
            if self.protocol.style_media_required:
                raise JudgeError(
                    f"The {self.protocol.name} protocol shows the style judge the media; {what} has none "
                    "(no media root).",
                    hint="Pass --media-root.",
                )
            return []
        path = Path(self.media_root) / item.media
        if not path.is_file():
            raise JudgeError(
                f"No media for {what}: {str(path)!r} does not exist.", hint="Check --media-root."
            )
        if item.modality != "video" and path.stat().st_size > self.max_media_bytes:
            raise self._too_large(what, path.stat().st_size)
        try:
            parts = self.protocol.style_media(Media.from_path(path, item.modality), self.audio)
        except Exception as e:
            raise JudgeError(f"Unusable media for {what}: {type(e).__name__}: {e}") from None
        size = sum(
            len(p["image_url"]["url"]) if "image_url" in p else len(p["input_audio"]["data"])
            for p in parts
        )
        size = size * 3 // 4  # base64
        if size > self.max_media_bytes:
            raise self._too_large(what, size)
        return parts

    def _too_large(self, what: str, size: int) -> JudgeError:
        return JudgeError(
            f"Media for {what} is {size / 2**20:.1f} MB, over the judge's "
            f"{self.max_media_bytes / 2**20:g} MB limit.",
            hint="Raise --max-media-mb, or shrink the file.",
        )


def protocol_for_items(
    items: list[EvalItem],
    protocol: str = "anycap",
    prompts: str | None = None,
    media_root: str | None = None,
) -> JudgeProtocol:
    """The judge protocol an AnyCapEval run over `items` uses, checked against the (modality, axis) pairs
    the items need and against the media root it requires. Builds no judge (loads nothing)."""
    from .protocols import make_protocol

    needed = {(i.modality, i.axis) for i in items}
    judge_protocol = make_protocol(protocol, prompts, needed)
    if (
        judge_protocol.style_media_required
        and media_root is None
        and any(a == "style" for _, a in needed)
    ):
        raise AnyCapError(
            f"The {protocol} protocol shows the media to the style judge: pass --media-root."
        )
    return judge_protocol


def judge_for_items(
    items: list[EvalItem],
    model: str,
    *,
    protocol: str = "anycap",
    prompts: str | None = None,
    media_root: str | None = None,
    **kwargs: Any,
) -> Any:
    """The judge of an AnyCapEval run over `items`: what `anycap eval anycapeval` and the lmms-eval tasks
    both build, so their figures agree."""
    return anycapeval_judge(
        model,
        protocol=protocol_for_items(items, protocol, prompts, media_root),
        media_root=media_root,
        **kwargs,
    )


def anycapeval_judge(model: str, **kwargs: Any) -> Any:
    """The judge `model` names: `offline` (the embedding judge, which asks no endpoint and reads no
    media, so the endpoint options are not its), else an `OpenAIJudge` with `kwargs`."""
    if model == "offline":
        from .offline import OfflineJudge

        protocol = kwargs.get("protocol")
        if protocol is not None and protocol.name != "anycap":
            raise AnyCapError(
                f"The offline judge asks no prompts, so it cannot follow the {protocol.name} protocol.",
                hint="Use an LLM judge (--judge-model NAME) for --protocol release.",
            )
        return OfflineJudge()
    return OpenAIJudge(model, **kwargs)
