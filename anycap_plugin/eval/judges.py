"""Judges: the reply contract, its validation, and the OpenAI-compatible judge.

Contract (documented in docs/anycapeval.md, so anyone can serve a judge):
- content: `{"key_points": [{"index": i, "matched": 0 or 1, "reason": "..."}, ...]}`,
  one entry per key point, indices 1..n in the order of the reference's `key_point` list;
- style: `{"score": 0..4, "reason": "..."}`.
A reply may wrap the JSON in prose or code fences. An invalid reply is asked again a bounded
number of times, then raised as `JudgeError`: counted as a failure, never scored as zero.
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from typing import Any, Protocol

from ..errors import AnyCapError
from .references import EvalItem

PROMPT_VERSION = "anycapeval-judge-v1"


class JudgeError(AnyCapError):
    """The judge gave no valid verdict for an item after its retries."""


class Judge(Protocol):
    """What the evaluator needs from a judge. `id` names model and prompt version (cache key)."""

    id: str

    async def judge_content(self, item: EvalItem, caption: str) -> list[int]: ...

    async def judge_style(self, item: EvalItem, caption: str) -> int: ...

    # optional: `prefetch(pairs)` is called once with every (item, caption) before judging


# ---- reply parsing ---------------------------------------------------------------------
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any:
    """The first JSON object in a reply, whether bare, fenced, or inside prose."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for chunk in candidates:
        for start in (i for i, ch in enumerate(chunk) if ch == "{"):
            try:
                value, _ = decoder.raw_decode(chunk[start:])
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    raise ValueError("no JSON object in the reply")


def parse_content_reply(text: str, n_points: int) -> list[int]:
    """Matched flags in key-point order; every point answered exactly once, flags 0 or 1."""
    data = extract_json(text)
    entries = data.get("key_points")
    if not isinstance(entries, list):
        raise ValueError("'key_points' must be a list")
    flags: dict[int, int] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("each key point entry must be an object")
        index, matched = entry.get("index"), entry.get("matched")
        if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= n_points:
            raise ValueError(f"index {index!r} is not in 1..{n_points}")
        if isinstance(matched, bool):
            matched = int(matched)
        if matched not in (0, 1) or isinstance(matched, float):
            raise ValueError(f"matched {matched!r} for point {index} is not 0 or 1")
        if index in flags:
            raise ValueError(f"key point {index} answered twice")
        flags[index] = matched
    missing = sorted(set(range(1, n_points + 1)) - set(flags))
    if missing:
        raise ValueError(f"key points {missing} not answered")
    return [flags[i] for i in range(1, n_points + 1)]


def parse_style_reply(text: str) -> int:
    data = extract_json(text)
    score = data.get("score")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 4:
        raise ValueError(f"score {score!r} is not an integer 0..4")
    return score


# ---- prompts ---------------------------------------------------------------------------
CONTENT_PROMPT = """You check whether a caption states given key points about a piece of media.

Instruction the caption was written for:
{instruction}

Caption (verbatim):
<<<
{caption}
>>>

Key points:
{points}

For each key point decide whether the caption states it correctly. A paraphrase or a
semantically equivalent statement counts as a match; a missing, vague or contradicting
statement does not. Reply with a JSON object only:
{{"key_points": [{{"index": 1, "matched": 0 or 1, "reason": "..."}}, ...]}}
with exactly one entry for each index from 1 to {n}."""

STYLE_PROMPT = """You rate how well a caption follows its instruction's style, against a reference caption.

Instruction:
{instruction}

Reference caption:
<<<
{reference}
>>>

Caption to rate (verbatim):
<<<
{caption}
>>>

Score on this rubric:
0: severe deviation from the instruction's style, or largely hallucinated content.
1: large deviation, or many hallucinations.
2: slight deviation, or some hallucination.
3: as good as the reference, and free of hallucination.
4: better than the reference, and free of hallucination.
Reply with a JSON object only: {{"score": 0-4, "reason": "..."}}"""


def content_prompt(item: EvalItem, caption: str) -> str:
    points = "\n".join(f"{i}. {p}" for i, p in enumerate(item.key_points or (), 1))
    return CONTENT_PROMPT.format(instruction=item.instruction, caption=caption, points=points,
                                 n=len(item.key_points or ()))


def style_prompt(item: EvalItem, caption: str) -> str:
    return STYLE_PROMPT.format(instruction=item.instruction, reference=item.reference, caption=caption)


# ---- the OpenAI-compatible judge -------------------------------------------------------
def _reply_text(reply: Any) -> str:
    """The first choice's text of a chat-completions reply; a malformed reply reads as empty (invalid)."""
    try:
        return reply["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        return ""


class ChatJudge:
    """Any chat-completions endpoint asked for verdicts; async, with a concurrency limit.

    The transport (429, 5xx, timeouts) is retried by the SDK; a reply that `parse` rejects is
    asked again up to `invalid_retries` times, then raised as `JudgeError`.
    """

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 concurrency: int = 16, timeout: float = 60.0, max_retries: int = 5, invalid_retries: int = 2) -> None:
        import os

        key = api_key or os.environ.get("OPENAI_API_KEY") or ("EMPTY" if base_url else None)
        if key is None:
            raise AnyCapError("No API key for the judge.",
                              hint="Set OPENAI_API_KEY, or pass --judge-base-url for a server that needs none.")
        self.model = model
        self._client_args = {"base_url": base_url, "api_key": key, "timeout": timeout, "max_retries": max_retries}
        self.concurrency = concurrency
        self._per_loop: weakref.WeakKeyDictionary[Any, tuple[Any, asyncio.Semaphore]] = weakref.WeakKeyDictionary()
        self.invalid_retries = invalid_retries
        self._json_mode = True  # dropped once if the server rejects response_format

    async def _ask(self, content: Any, json_reply: bool = True) -> str:
        import openai

        request: dict[str, Any] = {"model": self.model, "temperature": 0.0,
                                   "messages": [{"role": "user", "content": content}]}
        loop = asyncio.get_running_loop()
        if loop not in self._per_loop:  # async clients and semaphores belong to one event loop
            self._per_loop[loop] = (openai.AsyncOpenAI(**self._client_args), asyncio.Semaphore(self.concurrency))
        client, slots = self._per_loop[loop]
        async with slots:
            if json_reply and self._json_mode:
                try:
                    reply = await client.post("/chat/completions", cast_to=dict,
                                              body={**request, "response_format": {"type": "json_object"}})
                    return _reply_text(reply)
                except openai.BadRequestError as e:
                    if "response_format" not in str(e):
                        raise
                    self._json_mode = False
            # plain JSON both ways: `post` skips the SDK's per-call TypedDict transform (~1 ms) and
            # `cast_to=dict` its response models (~0.3 ms); the client's CPU bounds judging throughput
            reply = await client.post("/chat/completions", cast_to=dict, body=request)
            return _reply_text(reply)

    async def _verdict(self, content: Any, parse: Any, what: str, json_reply: bool = True) -> Any:
        import openai

        problems: list[str] = []
        for _ in range(self.invalid_retries + 1):
            try:
                text = await self._ask(content, json_reply)
            except openai.OpenAIError as e:
                raise JudgeError(f"Judge request failed for {what}: {type(e).__name__}: "
                                 f"{getattr(e, 'message', e)}") from None
            try:
                return parse(text)
            except ValueError as e:
                problems.append(str(e))
        raise JudgeError(f"Invalid judge replies for {what}: {'; '.join(problems)}.")


class OpenAIJudge(ChatJudge):
    """The AnyCapEval judge on any chat-completions endpoint.

    Media go to the style judge when `media_root` is given (images; video as frames; audio
    only with `audio=True`); otherwise it judges text only.
    """

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 concurrency: int = 16, timeout: float = 60.0, max_retries: int = 5, invalid_retries: int = 2,
                 media_root: str | None = None, audio: bool = False, num_frames: int = 4) -> None:
        super().__init__(model, base_url=base_url, api_key=api_key, concurrency=concurrency, timeout=timeout,
                         max_retries=max_retries, invalid_retries=invalid_retries)
        self.id = f"openai:{model}|{PROMPT_VERSION}|{'media' if media_root else 'text'}"
        self.media_root, self.audio, self.num_frames = media_root, audio, num_frames

    async def judge_content(self, item: EvalItem, caption: str) -> list[int]:
        n = len(item.key_points or ())
        return await self._verdict(content_prompt(item, caption), lambda t: parse_content_reply(t, n),
                                   f"{item.modality} content item {item.id}")

    async def judge_style(self, item: EvalItem, caption: str) -> int:
        text = style_prompt(item, caption)
        parts = await asyncio.to_thread(self._media_parts, item)
        content: Any = [*parts, {"type": "text", "text": text}] if parts else text
        return await self._verdict(content, parse_style_reply, f"{item.modality} style item {item.id}")

    def _media_parts(self, item: EvalItem) -> list[dict[str, Any]]:
        from pathlib import Path

        from ..chat_parts import media_parts
        from ..media import Media

        if not self.media_root:
            return []
        path = Path(self.media_root) / item.media
        if not path.exists():
            return []  # judged on text alone; the report's meta says media were optional
        media = Media.load(path)
        if media.modality == "audio" and not self.audio:
            return []
        return media_parts(media, self.num_frames, quality=85)


def anycapeval_judge(model: str, **kwargs: Any) -> Any:
    """The judge `model` names: `offline` (the embedding judge), else an `OpenAIJudge` with `kwargs`."""
    if model == "offline":
        from .offline import OfflineJudge

        return OfflineJudge()
    return OpenAIJudge(model, **kwargs)
