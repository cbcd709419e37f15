"""InternVL's evaluation-time image preprocessing, reproduced exactly (pixels equal to the reference's).

An image is cut into 448-px tiles on the grid whose aspect ratio is closest to the image's (at most
`max_dynamic_patch` tiles), plus a whole-image thumbnail when there is more than one tile; each
tile is converted to RGB, resized bicubic with PIL, scaled to [0, 1] and normalized with the
ImageNet mean and std. A video frame is one tile (`max_num=1`), as InternVL and the AnyCap
release feed video. transformers' `GotOcr2ImageProcessor` picks grids and resamples differently
(pixels off by up to 0.5), so InternVL-chat checkpoints use this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def closest_grid(
    aspect_ratio: float, grids: list[tuple[int, int]], width: int, height: int, tile: int
) -> tuple[int, int]:
    """InternVL's choice: the nearest aspect ratio; on a tie, the larger grid if the image has the pixels."""
    best_diff, best = float("inf"), (1, 1)
    for grid in grids:
        diff = abs(aspect_ratio - grid[0] / grid[1])
        if diff < best_diff:
            best_diff, best = diff, grid
        elif diff == best_diff and width * height > 0.5 * tile * tile * grid[0] * grid[1]:
            best = grid
    return best


def tile_image(
    image: Image.Image,
    tile: int = 448,
    min_num: int = 1,
    max_num: int = 6,
    use_thumbnail: bool = True,
) -> list[Image.Image]:
    """The tiles of one image, in InternVL's order (row by row, then the thumbnail)."""
    width, height = image.size
    # the same set, sorted the same (stable) way, so ties between grids resolve as in the reference
    grids = sorted(
        {
            (i, j)
            for n in range(min_num, max_num + 1)
            for i in range(1, n + 1)
            for j in range(1, n + 1)
            if min_num <= i * j <= max_num
        },
        key=lambda g: g[0] * g[1],
    )
    cols, rows = closest_grid(width / height, grids, width, height, tile)
    resized = image.resize((tile * cols, tile * rows))
    tiles = [
        resized.crop(
            ((k % cols) * tile, (k // cols) * tile, (k % cols + 1) * tile, (k // cols + 1) * tile)
        )
        for k in range(cols * rows)
    ]
    if use_thumbnail and len(tiles) != 1:
        tiles.append(image.resize((tile, tile)))
    return tiles


class ACMImageProcessor(BaseImageProcessor):
    model_input_names = ["pixel_values"]  # noqa: RUF012 - transformers reads it

    def __init__(
        self,
        image_size: int = 448,
        min_dynamic_patch: int = 1,
        max_dynamic_patch: int = 6,
        use_thumbnail: bool = True,
        dynamic_image_size: bool = True,
        image_mean: Sequence[float] = IMAGENET_MEAN,
        image_std: Sequence[float] = IMAGENET_STD,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.image_size = image_size
        self.min_dynamic_patch = min_dynamic_patch
        self.max_dynamic_patch = max_dynamic_patch
        self.use_thumbnail = use_thumbnail
        self.dynamic_image_size = dynamic_image_size
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)

    def to_tensor(self, tile: Image.Image) -> np.ndarray:
        if tile.mode != "RGB":
            tile = tile.convert("RGB")
        if tile.size != (self.image_size, self.image_size):
            tile = tile.resize((self.image_size, self.image_size), Image.Resampling.BICUBIC)
        x: np.ndarray = np.asarray(tile, dtype=np.float32) / 255.0
        x = (x - np.asarray(self.image_mean, dtype=np.float32)) / np.asarray(
            self.image_std, dtype=np.float32
        )
        return x.transpose(2, 0, 1)

    def tiles(self, image: Image.Image, max_num: int | None = None) -> list[Image.Image]:
        image = image.convert("RGB") if image.mode != "RGB" else image
        if not self.dynamic_image_size:
            return [image]
        return tile_image(
            image,
            self.image_size,
            self.min_dynamic_patch,
            self.max_dynamic_patch if max_num is None else max_num,
            self.use_thumbnail,
        )

    def preprocess(
        self,
        images: Sequence[Image.Image] | Image.Image,
        max_num: int | None = None,
        return_tensors: str | None = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """`max_num=1` for video frames: one tile each, no thumbnail. `num_patches` says how many per image."""
        if isinstance(images, Image.Image):
            images = [images]
        arrays, counts = [], []
        for image in images:
            tiles = self.tiles(image, max_num)
            arrays += [self.to_tensor(t) for t in tiles]
            counts.append(len(tiles))
        return BatchFeature(
            {"pixel_values": np.stack(arrays), "num_patches": counts}, tensor_type=return_tensors
        )
