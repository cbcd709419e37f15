"""AnyCap: controllable captioning for images, video and audio.

from anycap_plugin import wrap, get_captioner
captioner = wrap(get_captioner("openai:gpt-4o-mini"), post="acm:/models/acm-2b")
caption = captioner.caption("photo.jpg", instruction="Describe only the background.")
"""

from typing import TYPE_CHECKING, Any

from .captioner import BaseCaptioner, Caption, CaptionOptions, PostProcessor, prompt_for
from .errors import (
    AnyCapError,
    CaptionerError,
    MediaError,
    ModalityNotSupportedError,
    OptionsError,
    PluginError,
    UnknownCaptionerError,
)
from .hookspecs import hookimpl
from .plugins import get_captioner, get_post_processor, list_captioners, list_post_processors
from .wrapping import Chain, wrap

if TYPE_CHECKING:
    from .media import AudioClip, Media, VideoFrames

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`Media`, `VideoFrames` and `AudioClip` load numpy and PIL: on first use, not on import."""
    if name in ("Media", "VideoFrames", "AudioClip"):
        from . import media

        return getattr(media, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AnyCapError",
    "AudioClip",
    "BaseCaptioner",
    "Caption",
    "CaptionOptions",
    "CaptionerError",
    "Chain",
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
