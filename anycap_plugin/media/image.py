"""Image decoding rules: strict about truncated files, RGB on white for transparent images."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # PIL loads on first use, not when a plugin registers
    from PIL import Image


class _strict_decoding:
    """Truncated images fail even where a library set PIL's process-wide LOAD_TRUNCATED_IMAGES
    (LMDeploy and lmms-eval do, on import): a partly grey image would otherwise pass as a good one.

    The flag is global and images decode in parallel threads, so the flag stays off while any strict
    decode is under way, and the library's value comes back when the last one ends (saving and
    restoring it per decode let one thread restore True under another's decode)."""

    _lock = threading.Lock()
    _active = 0
    _saved = False

    def __enter__(self) -> None:
        from PIL import ImageFile

        cls = type(self)
        with cls._lock:
            if cls._active == 0:
                cls._saved = ImageFile.LOAD_TRUNCATED_IMAGES
            cls._active += 1
            ImageFile.LOAD_TRUNCATED_IMAGES = False

    def __exit__(self, *exc: object) -> None:
        from PIL import ImageFile

        cls = type(self)
        with cls._lock:
            cls._active -= 1
            if cls._active == 0:
                ImageFile.LOAD_TRUNCATED_IMAGES = cls._saved


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image.copy()
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        from PIL import Image

        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.split()[3])
        return background
    return image.convert("RGB")
