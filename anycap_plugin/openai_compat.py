"""The one transport to OpenAI-compatible chat endpoints, and what its callers share.

Used by the openai adapter, the remote ACM, the AnyCapEval judges (both protocols), the VidCapBench
judge and the call engine (CapFlow, synthesis; it adds roles, cache and usage on top):
- `ChatTransport`: one endpoint's SDK clients (the only place that builds them), its limits
  (requests in flight, timeout, the SDK's retries) and plain-JSON requests, async or sync.
- `ask_parsed`: the parse-and-re-ask loop: ask; while the reply does not parse, ask again saying
  what was wrong (`reask`), a bounded number of times.
- `api_key`: the key, or a refusal before any call. A server named by its base URL (LMDeploy, vLLM,
  ours) may take no key; the OpenAI API itself needs one, and asking it without one would only buy
  retried 401s.
- `reply_text`: the first choice's text, from a reply object or its JSON.
- `failure`: an SDK error in words (HTTP status, attempts, detail), the key never in it.
- `json_object`: the one JSON-reply parser (the first object, bare, fenced or inside prose).
- `reask`: the follow-up that asks again after an unusable reply, saying what was wrong, so that a
  model at temperature 0 does not just repeat itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import OptionsError

if TYPE_CHECKING:  # the SDK loads on the first request, never when plugins register
    import openai

T = TypeVar("T")
Messages = list[dict[str, Any]]

NO_KEY = "EMPTY"  # what the SDK is given for a server that takes no key
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def api_key(
    explicit: str | None = None,
    env: tuple[str, ...] = ("OPENAI_API_KEY",),
    base_url: str | None = None,
    who: str = "the OpenAI API",
    hint: str | None = None,
) -> str:
    """`explicit`, else the first non-empty variable of `env`; without one, `NO_KEY` for a server named
    by `base_url` (or `OPENAI_BASE_URL`), else `OptionsError` (nothing has been sent)."""
    key = explicit or next((os.environ[name] for name in env if os.environ.get(name)), None)
    if key:
        return key
    if base_url or os.environ.get(
        "OPENAI_BASE_URL"
    ):  # the SDK reads OPENAI_BASE_URL when given no base URL
        return NO_KEY
    raise OptionsError(
        f"No API key for {who}.",
        hint=hint or f"Set {env[0]}, or give a base URL for a server that needs none.",
    )


def reply_text(reply: Any) -> str:
    """The first choice's text of a chat-completions reply (SDK object or JSON); "" when there is none."""
    try:
        if isinstance(reply, dict):
            return reply["choices"][0]["message"]["content"] or ""
        return reply.choices[0].message.content or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


def attempts_of(error: Exception) -> int:
    """How many requests the OpenAI SDK sent: it numbers its retries in the `x-stainless-retry-count` header."""
    request = getattr(error, "request", None)
    try:
        return int(request.headers["x-stainless-retry-count"]) + 1 if request is not None else 1
    except (KeyError, ValueError):
        return 1


def redact(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key and key != NO_KEY and len(key) >= 4 else text


def failure(error: Exception, key: str | None) -> tuple[int | None, str]:
    """(HTTP status or None, "after 3 attempt(s): HTTP 401: detail") for an SDK error, the key redacted."""
    status = getattr(error, "status_code", None)
    detail = redact(str(getattr(error, "message", None) or error), key)
    what = f"HTTP {status}" if status else type(error).__name__
    return status, f"after {attempts_of(error)} attempt(s): {what}: {detail}"


def json_object(text: str) -> dict[str, Any]:
    """The first JSON object in a reply, whether bare, fenced, or inside prose; ValueError otherwise."""
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
    raise ValueError(f"no JSON object in the reply ({text[:80]!r})")


def reask(messages: list[dict[str, Any]], reply: str, problem: str) -> list[dict[str, Any]]:
    """The conversation that asks again: the unusable reply, then what was wrong with it."""
    return [
        *messages,
        {"role": "assistant", "content": reply},
        {
            "role": "user",
            "content": f"That reply could not be used: {problem}. Answer again, exactly in the "
            "format asked for above.",
        },
    ]


async def ask_parsed(
    ask: Callable[[Messages], Awaitable[str]],
    messages: Messages,
    parse: Callable[[str], T],
    attempts: int,
    refuse: Callable[[list[str]], Exception],
) -> tuple[str, T]:
    """`(reply, parse(reply))`: `ask(messages)`, and while `parse` rejects the reply (ValueError,
    KeyError, TypeError) ask again with `reask` saying what was wrong, `attempts` asks in all; then
    raise `refuse(problems)`, the caller's own error, with each rejection in order."""
    problems: list[str] = []
    asked = messages
    for _ in range(max(attempts, 1)):
        text = await ask(asked)
        try:
            return text, parse(text)
        except (ValueError, KeyError, TypeError) as e:
            problems.append(str(e))
            asked = reask(messages, text, str(e))  # from the first request: one re-ask, not a pile
    raise refuse(problems)


class ChatTransport:
    """One OpenAI-compatible endpoint, as every caller here talks to it: at most `concurrency`
    requests in flight, the SDK's timeout and retries (408/409/429/5xx, timeouts, dropped
    connections; Retry-After honoured), plain JSON both ways.

    Async callers get an `AsyncOpenAI` and a semaphore per event loop (both belong to the loop that
    made them: `asyncio.run` twice, or the call engine's own thread, each get theirs); sync callers
    share one `OpenAI` client under a thread semaphore of the same size. The key is never shown.
    """

    def __init__(
        self,
        base_url: str | None,
        key: str,
        *,
        timeout: float | openai.Timeout = 60.0,
        max_retries: int = 5,
        concurrency: int = 16,
        sync: bool = False,
    ) -> None:
        """The SDK loads here, not in the first request's time (its import takes seconds on a busy
        machine); `sync=True` builds the sync client now too, for callers that call from threads."""
        import openai

        self.base_url, self.key = base_url, key
        self.timeout, self.max_retries, self.concurrency = timeout, max_retries, concurrency
        self._per_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[openai.AsyncOpenAI, asyncio.Semaphore]
        ] = weakref.WeakKeyDictionary()
        self._sync = openai.OpenAI(**self._client_args()) if sync else None
        self._sync_slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<ChatTransport {self.base_url or 'api.openai.com'}>"

    def _client_args(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "api_key": self.key,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }

    @property
    def client(self) -> openai.OpenAI:
        """The sync client, built on first use and shared by every thread (no lock once built)."""
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    import openai

                    self._sync = openai.OpenAI(**self._client_args())
        return self._sync

    def _loop_state(self) -> tuple[openai.AsyncOpenAI, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        state = self._per_loop.get(loop)
        if state is None:
            import openai

            state = (openai.AsyncOpenAI(**self._client_args()), asyncio.Semaphore(self.concurrency))
            self._per_loop[loop] = state
        return state

    async def post(self, body: dict[str, Any]) -> Any:
        """One chat completion, its reply as JSON; the SDK's `openai.OpenAIError` when it fails.

        `post` skips the SDK's per-call TypedDict transform (~1 ms) and `cast_to=dict` its response
        models (~0.3 ms): the client's CPU bounds judging and captioning throughput."""
        client, slots = self._loop_state()
        async with slots:
            return await client.post("/chat/completions", body=body, cast_to=dict)

    def post_sync(self, body: dict[str, Any]) -> Any:
        """`post` for a caller without an event loop (it blocks its thread)."""
        with self._sync_slots:
            return self.client.post("/chat/completions", body=body, cast_to=dict)

    async def aclose(self) -> None:
        """Close the running loop's client (an async client is closed on the loop that uses it)."""
        state = self._per_loop.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state[0].close()

    def failure(self, error: Exception) -> tuple[int | None, str]:
        """`failure(error, key)`: the HTTP status and the error in words, the key redacted."""
        return failure(error, self.key)
