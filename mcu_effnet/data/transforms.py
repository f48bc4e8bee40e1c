"""Resizing and augmentation on uint8 images, written with numpy and Pillow (no torchvision here).

Every transform returns a uint8 HWC RGB array of exactly ``size`` x ``size``. Randomness comes from
an explicit ``numpy.random.Generator`` so that a sample's augmentation depends only on
(seed, epoch, index): the same in any worker, and the same again after ``--resume``.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from mcu_effnet.data.sources import RawImage


def to_pil_rgb(image: RawImage) -> Image.Image:
    """Any source image (PIL of any mode, uint8 HW / HWC array with 1, 3 or 4 channels) as RGB PIL."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(array, mode="L").convert("RGB")
    if array.shape[2] == 4:
        array = array[:, :, :3]
    return Image.fromarray(np.ascontiguousarray(array), mode="RGB")


def resize_short_side(image: Image.Image, size: int) -> Image.Image:
    """Scales so the shorter side is ``size``, keeping the aspect ratio (a no-op when it already is)."""
    width, height = image.size
    if min(width, height) == size:
        return image
    scale = size / min(width, height)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    # reducing_gap: Pillow shrinks large images in integer steps first; fast and still antialiased.
    return image.resize(new_size, Image.Resampling.BILINEAR, reducing_gap=3.0)


def center_crop(array: np.ndarray, size: int) -> np.ndarray:
    top = (array.shape[0] - size) // 2
    left = (array.shape[1] - size) // 2
    return array[top : top + size, left : left + size]


def eval_transform(image: RawImage, size: int) -> np.ndarray:
    """Validation: shorter side to ``size``, centre square crop."""
    array = np.asarray(resize_short_side(to_pil_rgb(image), size))
    return np.ascontiguousarray(center_crop(array, size))


def random_resized_crop(
    image: Image.Image, size: int, scale: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """A crop covering a random fraction in ``scale`` of the image's area, aspect ratio in
    [3/4, 4/3] (log-uniform), resized to ``size`` x ``size``."""
    width, height = image.size
    for _ in range(10):
        area = width * height * rng.uniform(*scale)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w = round(math.sqrt(area * ratio))
        h = round(math.sqrt(area / ratio))
        if 0 < w <= width and 0 < h <= height:
            break
    else:  # an extreme aspect ratio: the largest centred square
        w = h = min(width, height)
    left = int(rng.integers(0, width - w + 1))
    top = int(rng.integers(0, height - h + 1))
    crop = image.crop((left, top, left + w, top + h))
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR))


def train_transform(
    image: RawImage,
    size: int,
    rng: np.random.Generator,
    *,
    hflip: float = 0.5,
    crop_scale: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Training: shorter side to ``size``, random square crop along the long side (or, when
    ``crop_scale`` is below 1, a random-resized crop of that area range), then a random crop of a
    reflect-padded copy (shifts up to size/8, the CIFAR recipe at any resolution) and a horizontal
    flip with probability ``hflip``."""
    pil = to_pil_rgb(image)
    if crop_scale[0] < 1.0:
        array = random_resized_crop(pil, size, crop_scale, rng)
    else:
        array = np.asarray(resize_short_side(pil, size))
        height, width = array.shape[:2]
        top = int(rng.integers(0, height - size + 1))
        left = int(rng.integers(0, width - size + 1))
        array = array[top : top + size, left : left + size]
    pad = max(1, size // 8)
    padded = np.pad(array, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    dy, dx = (int(v) for v in rng.integers(0, 2 * pad + 1, size=2))
    array = padded[dy : dy + size, dx : dx + size]
    # Always draw, so the flip setting does not shift the draws of later ops.
    if rng.random() < hflip:
        array = array[:, ::-1]
    return np.ascontiguousarray(array)
