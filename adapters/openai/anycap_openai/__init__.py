"""AnyCap plugin: GPT-4o and any OpenAI-compatible server (`openai:MODEL`)."""

from __future__ import annotations

import sys
from typing import Any

from anycap_plugin import Deferred, hookimpl

__all__ = ["OpenAICaptioner", "OpenAIOptions"]


def _captioner() -> type:
    from .captioner import OpenAICaptioner

    return OpenAICaptioner


def __getattr__(name: str) -> Any:
    """The classes load on first use: registering the plugin imports neither pydantic nor the SDK."""
    if name in __all__:
        from . import captioner

        return getattr(captioner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_captioners(register: Any) -> None:
    register(
        "openai",
        Deferred(_captioner),
        needs_model=True,
        description="GPT-4o or any OpenAI-compatible server (OPENAI_BASE_URL, OPENAI_API_KEY)",
    )


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """An `openai.OpenAI` / `AsyncOpenAI` client: `wrap(client, model="gpt-4o-mini", **captioner_options)`."""
    openai = sys.modules.get("openai")
    if openai is None or not isinstance(obj, (openai.OpenAI, openai.AsyncOpenAI)):
        return None
    return _captioner().from_client(obj, **options)
