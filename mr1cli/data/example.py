"""The one internal example every adapter returns, with a lazily decoded image."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from mr1cli.core.errors import DataError

MAX_ASPECT_RATIO = 200  # Qwen2-VL's smart_resize refuses more
MIN_SIDE = 28  # patch 14 × spatial merge 2


@dataclass(frozen=True)
class ImageRef:
    """Where an example's image lives: encoded bytes (parquet/HF rows) or a file path."""

    data: bytes | None = None
    path: Path | None = None

    def open(self) -> Image.Image:
        """Decode to RGB. Raises OSError (unreadable) or FileNotFoundError (missing)."""
        source = io.BytesIO(self.data) if self.data is not None else self.path
        if source is None:
            raise FileNotFoundError("example has neither image bytes nor an image path")
        with Image.open(source) as image:
            image.load()
            return image.convert("RGB")


@dataclass(frozen=True)
class Example:
    """One task example: `truth` is already canonical for the task (Task.parse_truth)."""

    id: str
    task: str
    question: str
    truth: str
    image: ImageRef
    thinking: str = ""  # a reasoning trace when the source has one (synthetic warm-up data)

    def load_image(self, max_pixels: int | None = None, min_pixels: int | None = None) -> Image.Image:
        """The decoded image within the pixel budget; DataError naming the example if unusable."""
        try:
            image = self.image.open()
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            where = self.image.path or "embedded bytes"
            raise DataError(
                f"example {self.id}: field 'image' ({where}): not a readable image ({error})"
            ) from None
        width, height = image.size
        if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
            raise DataError(
                f"example {self.id}: field 'image': aspect ratio {width}x{height} is beyond "
                f"{MAX_ASPECT_RATIO}:1, which Qwen2-VL's processor cannot take"
            )
        image = fit_pixel_budget(image, max_pixels=max_pixels, min_pixels=min_pixels)
        if min(image.size) < MIN_SIDE:  # the vision tower needs at least one 28-pixel merged patch
            scale = MIN_SIDE / min(image.size)
            image = image.resize(
                (math.ceil(image.width * scale), math.ceil(image.height * scale)), Image.Resampling.BICUBIC
            )
        return image


def fit_pixel_budget(
    image: Image.Image, max_pixels: int | None, min_pixels: int | None = None
) -> Image.Image:
    """Resize keeping the aspect ratio so that width*height lies within [min_pixels, max_pixels].

    >>> fit_pixel_budget(Image.new("RGB", (200, 100)), max_pixels=5000).size
    (100, 50)
    """
    width, height = image.size
    area = width * height
    scale = 1.0
    if max_pixels is not None and area > max_pixels:
        scale = math.sqrt(max_pixels / area)
    elif min_pixels is not None and area < min_pixels:
        scale = math.sqrt(min_pixels / area)
    if scale == 1.0:
        return image
    new_size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
    return image.resize(new_size, Image.Resampling.BICUBIC)
