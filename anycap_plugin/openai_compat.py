"""What every AnyCap client of an OpenAI-compatible endpoint shares, besides the request itself.

Used by the openai adapter, the remote ACM, the AnyCapEval judges (both protocols), the VidCapBench
judge and the call engine (CapFlow, synthesis):
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

import json
import os
import re
from typing import Any

from .errors import OptionsError

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
