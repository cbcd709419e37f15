"""AnyCap: controllable captioning for images, video and audio.

from anycap_plugin import wrap, get_captioner
captioner = wrap(get_captioner("openai:gpt-4o-mini"), post="acm:/models/acm-2b")
caption = captioner.caption("photo.jpg", instruction="Describe only the background.")
"""

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
from .media import AudioClip, Media, VideoFrames
from .plugins import get_captioner, get_post_processor, list_captioners, list_post_processors
from .wrapping import wrap

__version__ = "0.1.0"

__all__ = [
    "wrap",
    "get_captioner",
    "get_post_processor",
    "list_captioners",
    "list_post_processors",
    "Media",
    "VideoFrames",
    "AudioClip",
    "Caption",
    "CaptionOptions",
    "BaseCaptioner",
    "PostProcessor",
    "hookimpl",
    "prompt_for",
    "AnyCapError",
    "MediaError",
    "ModalityNotSupportedError",
    "OptionsError",
    "UnknownCaptionerError",
    "PluginError",
    "CaptionerError",
]
