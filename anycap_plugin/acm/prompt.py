"""The ACM prompt: the one wire format every ACM path writes and reads.

The published AnyCap ACM was evaluated with this question (the release's `gen_acm.py` scripts),
inside the checkpoint's chat template, after the media placeholders:

    <image>\\n                                  (an image: its tiles go where <image> is)
    Frame1: <image>\\nFrame2: <image>\\n ...     (a video: one 448-px tile per frame)
    <audio>\\n                                  (audio)
    You are a multimodal aligner. Transform the existing caption to meet the requirement:
    '{instruction}'. Existing caption: '{caption}'. Only respond with the improved caption.

The processor (in process), the trainer, the remote client (`acm:http://...`) and the server's
parser all use `question` / `parse_question` from here, so a model trained by `anycap train` and
the published weights receive the same text. ACD training records carry a longer variant of the
same ask ("... your task is to transform the existing caption into a caption that better meets
the requirements ..."); `parse_question` reads it too, and training re-renders every record with
`question`, because the model must learn the prompt that inference sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..media.chat_parts import frame_label

IMAGE_PLACEHOLDER = "<image>"
AUDIO_PLACEHOLDER = "<audio>"
DEFAULT_INSTRUCTION = "Describe the content in detail."

_PUBLISHED = (
    "You are a multimodal aligner. Transform the existing caption to meet the requirement: '{instruction}'. "
    "Existing caption: '{caption}'. Only respond with the improved caption."
)

_READERS = (
    # the published inference prompt (what `question` writes)
    re.compile(
        r"You are a multimodal aligner\. Transform the existing caption to meet the requirement: '(?P<req>.*?)'\. "
        r"Existing caption: '(?P<cap>.*)'\. Only respond with the improved caption\.\s*$",
        re.DOTALL,
    ),
    # the ACD records' longer variant; quoting and spacing vary across the release
    re.compile(
        r"The requirement is:\s*(?P<req>.*?)\s*The existing caption is:\s*(?P<cap>.*?)\s*"
        r"(?:You only need to answer.*)?$",
        re.DOTALL,
    ),
    # the plain-text protocol of AnyCap 0.1 clients
    re.compile(
        r"^Instruction: (?P<req>.*?)\nExisting caption: (?P<cap>.*?)\n"
        r"Write the caption that follows the instruction\. Answer with the caption only\.\s*$",
        re.DOTALL,
    ),
)
_MEDIA_TAG = re.compile(r"(?:Frame\d+: )?<(?:image|video|audio)>\s*")


@dataclass(frozen=True)
class ParsedQuestion:
    instruction: str
    caption: str | None


def question(instruction: str | None, caption: str | None) -> str:
    """The published ask for one item, without media placeholders."""
    return _PUBLISHED.format(instruction=instruction or DEFAULT_INSTRUCTION, caption=caption or "")


def media_prefix(modality: str, frames: int = 0) -> str:
    """The placeholders that go before the ask: `<image>\\n`, `Frame{i}: <image>\\n` per frame, `<audio>\\n`."""
    if modality == "image":
        return f"{IMAGE_PLACEHOLDER}\n"
    if modality == "video":
        return "".join(f"{frame_label(i)}{IMAGE_PLACEHOLDER}\n" for i in range(frames))
    if modality == "audio":
        return f"{AUDIO_PLACEHOLDER}\n"
    return ""  # text only: training records whose media are not at hand


def parse_question(text: str) -> ParsedQuestion | None:
    """(instruction, existing caption) from any ACM prompt variant; None for anything else."""
    body = strip_placeholders(text)
    for reader in _READERS:
        m = reader.search(body)
        if m:
            caption = _unquote(m.group("cap"))
            return ParsedQuestion(_unquote(m.group("req")), caption or None)
    return None


def strip_placeholders(text: str) -> str:
    """`text` without media placeholders (`<image>`, `Frame{i}: <image>`, `<video>`, `<audio>`)."""
    return _MEDIA_TAG.sub("", text).strip()


def _unquote(text: str) -> str:
    text = text.strip()
    if text.endswith(("'.", "'")):
        text = text.rstrip(".")
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
    return strip_placeholders(text)
