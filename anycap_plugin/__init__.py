"""AnyCap: controllable captioning for images, video and audio.

from anycap_plugin import wrap, get_captioner
captioner = wrap(get_captioner("openai:gpt-4o-mini"), post="acm:/models/acm-2b")
caption = captioner.caption("photo.jpg", instruction="Describe only the background.")
"""

from typing import TYPE_CHECKING, Any

from .errors import (
    AnyCapError,
    CaptionerError,
    MediaError,
    ModalityNotSupportedError,
    OptionsError,
    PluginError,
    UnknownCaptionerError,
)
from .hookspecs import Deferred, hookimpl
from .plugins import get_post_processor, list_captioners, list_post_processors

if TYPE_CHECKING:
    from .captioner import BaseCaptioner, Caption, CaptionOptions, PostProcessor, prompt_for
    from .media import AudioClip, Media, VideoFrames
    from .wrapping import Chain, get_captioner, wrap

from .version import __version__ as __version__

_LAZY = {
    # pydantic and asyncio (captioner, wrapping), numpy and PIL (media) load on first use: a plugin
    # importing `hookimpl` from here, and `anycap --help`, pay for none of them
    **dict.fromkeys(
        ("BaseCaptioner", "Caption", "CaptionOptions", "PostProcessor", "prompt_for"), "captioner"
    ),
    **dict.fromkeys(("Media", "VideoFrames", "AudioClip"), "media"),
    **dict.fromkeys(("Chain", "get_captioner", "wrap"), "wrapping"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AnyCapError",
    "AudioClip",
    "BaseCaptioner",
    "Caption",
    "CaptionOptions",
    "CaptionerError",
    "Chain",
    "Deferred",
    "Media",
    "MediaError",
    "ModalityNotSupportedError",
    "OptionsError",
    "PluginError",
    "PostProcessor",
    "UnknownCaptionerError",
    "VideoFrames",
    "get_captioner",
    "get_post_processor",
    "hookimpl",
    "list_captioners",
    "list_post_processors",
    "prompt_for",
    "wrap",
]
