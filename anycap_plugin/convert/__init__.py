"""Published checkpoint layouts -> folders AnyCap loads with its own classes, no remote code.

    anycap convert OpenGVLab/InternVL2_5-8B ./internvl2_5-8b      # or a local InternVL-chat folder
    resolve_model("qishisuren/AnyCapModel")                        # converted once into the cache

`acm:` and `internvl:` call `resolve_model` themselves, so specs can name the published folder or id.
"""

from __future__ import annotations

from pathlib import Path

from .internvl_chat import ConversionReport, convert_internvl_chat, is_internvl_chat
from .resolve import download, looks_like_path, preflight_source, resolve_model


def convert(src: str, dst: str | Path) -> ConversionReport:
    """Convert a local InternVL-chat folder or a hub id into `dst`."""
    if looks_like_path(src):
        return convert_internvl_chat(Path(src).expanduser(), dst)
    folder, revision = download(src)
    return convert_internvl_chat(folder, dst, source={"id": src, "revision": revision})


__all__ = ["convert", "resolve_model", "preflight_source", "convert_internvl_chat", "is_internvl_chat", "ConversionReport"]
