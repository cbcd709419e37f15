"""Sniffing what a file holds from its bytes (never its name): image magic numbers, then PIL, then
FFmpeg's stream probe; what it holds said in words when it is not media."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UnsupportedMediaError
from .kinds import Modality

_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)


def _what_it_holds(head: bytes) -> str:
    """A short description of a file's first bytes, for errors about files that are not media."""
    text = None
    for cut in range(4):  # the head may end inside a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        return "bytes " + head[:8].hex(" ")
    if text.strip() and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        return f"text ({text[:32]!r})"
    return "bytes " + head[:8].hex(" ")


def _not_media(ref: str, head: bytes) -> UnsupportedMediaError:
    return UnsupportedMediaError(
        f"{ref!r} is not a recognised image, video or audio file: it holds {_what_it_holds(head)}.",
        hint="Check the file (a renamed or truncated download?); supported: common image "
        "formats, and the video and audio that FFmpeg reads.",
    )


def _detect_modality(head: bytes, opener: Any, ref: str) -> Modality:
    """Sniff the modality: image magic numbers, then PIL, then FFmpeg's stream probe.

    Text is never media (FFmpeg would guess a video from an image-like name, or follow a playlist)."""
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    from PIL import Image

    try:
        with Image.open(opener()):
            return "image"
    except Image.DecompressionBombError:
        return "image"  # image() raises the size error with its hint
    except Exception:  # noqa: S110 - not an image PIL reads: FFmpeg's probe is next
        pass
    if _what_it_holds(head).startswith("text"):
        raise _not_media(ref, head)
    try:
        import av

        with av.open(opener()) as c:
            if c.format.name.split(",")[0] in (
                "image2",
                "image2pipe",
            ):  # a guess from the name; PIL could not read it
                raise _not_media(ref, head)
            video = [
                s
                for s in c.streams.video
                if not (s.disposition & av.stream.Disposition.attached_pic)
            ]
            if video:
                return "video"
            if c.streams.audio:
                return "audio"
    except UnsupportedMediaError:
        raise
    except Exception as e:
        raise UnsupportedMediaError(
            f"{ref!r} is not an image, video or audio file that can be decoded ({type(e).__name__}).",
            hint="Check that the file is complete; supported: common image formats, and anything FFmpeg reads.",
        ) from None
    raise UnsupportedMediaError(f"{ref!r} holds no image, video or audio stream.")


def extension_for(path: Path, name: str = "") -> str:
    """The extension a file's media goes by: the one `name` ends with (a shard member `KEY.png`, a
    URL) when it is a media extension, else one sniffed from its bytes; '' when none fits."""
    from .kinds import MEDIA_EXTENSIONS

    known = set().union(*MEDIA_EXTENSIONS.values())
    tail = name.split("?", 1)[0].rsplit("#", 1)[-1].rsplit("/", 1)[-1]
    suffix = Path(tail).suffix.lower()
    if suffix in known:
        return suffix
    from PIL import Image

    try:
        with Image.open(path) as image:
            kind = image.format
    except Exception:  # not an image PIL reads: FFmpeg's probe is next
        kind = None
    if kind is not None:
        exts = [e for e, f in Image.registered_extensions().items() if f == kind]
        return next((e for e in exts if e in known), exts[0] if exts else "")
    try:
        import av

        with av.open(str(path)) as c:
            names = c.format.name.split(",")
    except Exception:  # nothing FFmpeg reads either
        return ""
    return next(
        (f".{n}" for n in names if f".{n}" in known), {"matroska": ".mkv"}.get(names[0], "")
    )
