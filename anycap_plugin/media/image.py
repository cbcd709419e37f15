"""Image decoding rules: strict about truncated files, RGB on white for transparent images."""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageFile


class _strict_decoding:
    """Truncated images fail even where a library set PIL's process-wide LOAD_TRUNCATED_IMAGES
    (LMDeploy does, on import): a partly grey image would otherwise pass as a good one."""

    def __enter__(self) -> None:
        self.saved, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False

    def __exit__(self, *exc: Any) -> None:
        ImageFile.LOAD_TRUNCATED_IMAGES = self.saved


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image.copy()
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.split()[3])
        return background
    return image.convert("RGB")
