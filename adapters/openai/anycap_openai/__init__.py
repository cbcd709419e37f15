"""AnyCap plugin: GPT-4o and any OpenAI-compatible server (`openai:MODEL`)."""

from typing import Any

from anycap_plugin import hookimpl

from .captioner import OpenAICaptioner, OpenAIOptions

__all__ = ["OpenAICaptioner", "OpenAIOptions"]


@hookimpl
def register_captioners(register: Any) -> None:
    register(
        "openai",
        OpenAICaptioner,
        needs_model=True,
        description="GPT-4o or any OpenAI-compatible server (OPENAI_BASE_URL, OPENAI_API_KEY)",
    )


@hookimpl
def adapt_captioner(obj: Any, options: dict[str, Any]) -> Any:
    """An `openai.OpenAI` / `AsyncOpenAI` client: `wrap(client, model="gpt-4o-mini", **captioner_options)`."""
    import sys

    openai = sys.modules.get("openai")
    if openai is None or not isinstance(obj, (openai.OpenAI, openai.AsyncOpenAI)):
        return None
    return OpenAICaptioner.from_client(obj, **options)
