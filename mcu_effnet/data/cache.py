"""Decode-once cache: every image of a source decoded and resized to the training resolution once,
kept as uint8 arrays in memory.

An ImageFolder run otherwise decodes each JPEG/PNG again in every epoch (and the calibration and
validation passes decode the same files again); for small images at 32-96 px decoding dominates the
loader's time. The cache holds the image with its *shorter side* at the resolution (the long side
keeps the aspect ratio), which is what every transform starts from, so the validation samples and
the default augmentation are the same as without the cache (a ``--crop-scale`` below 1 crops from
the cached image, not from the full-size file). Memory: about images x resolution^2 x 3 bytes.
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.data.sources import ImageSource, RawImage
from mcu_effnet.data.transforms import resize_short_side, to_pil_rgb


class DecodedCache:
    """An ``ImageSource`` whose images were decoded once at ``size`` (shorter side)."""

    def __init__(self, source: ImageSource, size: int) -> None:
        self.size = size
        self.labels = list(source.labels)
        # Decoded in the main process, before the DataLoader forks: workers share the arrays.
        self.images: list[np.ndarray] = [
            np.asarray(resize_short_side(to_pil_rgb(source.load(i, size)), size)) for i in range(len(source))
        ]

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, index: int, size_hint: int) -> RawImage:
        return self.images[index]
