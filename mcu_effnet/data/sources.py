"""Image sources: indexable collections of (image, label) before any resizing or augmentation.

A source hands out raw images (a PIL image or a uint8 HWC array) lazily by index, so a folder of
large JPEGs is decoded one image at a time in a DataLoader worker, never all at once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

RawImage = Image.Image | np.ndarray
Warn = Callable[[str], None]


def warn_stderr(message: str) -> None:
    """The default warning channel: one line on stderr, in the CLI's style."""
    print(f"mcu-effnet: warning: {message}", file=sys.stderr, flush=True)


class ImageSource(Protocol):
    """What every dataset format provides: a length, integer labels and lazy image loading."""

    labels: Sequence[int]

    def __len__(self) -> int: ...

    def load(self, index: int, size_hint: int) -> RawImage:
        """The image at ``index``; ``size_hint`` lets a decoder skip detail it would throw away."""
        ...


class ArraySource:
    """Images already in memory as one uint8 array (N, H, W, C): CIFAR batches and ``.npz`` files.

    These formats are small images by nature (32x32 CIFAR is 150 MB for 50k images), and the
    array is shared copy-on-write with forked DataLoader workers.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = images
        self.labels = [int(v) for v in labels]

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, index: int, size_hint: int) -> RawImage:
        return self.images[index]


class SubsetSource:
    """A fixed selection of another source's indices (``--max-train-images`` and friends)."""

    def __init__(self, base: ImageSource, indices: Sequence[int]) -> None:
        self.base = base
        self.indices = list(indices)
        self.labels = [base.labels[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, index: int, size_hint: int) -> RawImage:
        return self.base.load(self.indices[index], size_hint)


def random_subset(source: ImageSource, count: int | None, seed: int) -> ImageSource:
    """A random ``count`` of the source's images (all of them when ``count`` is None or larger)."""
    if count is None or count >= len(source):
        return source
    order = np.random.default_rng(seed).permutation(len(source))[:count]
    return SubsetSource(source, sorted(int(i) for i in order))


@dataclass
class DataBundle:
    """A dataset as training sees it: both splits, the class names, and where it came from."""

    name: str
    kind: str  # "imagefolder" | "cifar" | "npz" | "synthetic"
    class_names: list[str]
    train: ImageSource
    val: ImageSource
    val_split_name: str = "val"

    @property
    def classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> dict:
        """Name and sizes, as recorded in ``metrics.json``."""
        return {
            "name": self.name,
            "kind": self.kind,
            "classes": self.classes,
            "train_images": len(self.train),
            "val_images": len(self.val),
            "val_split": self.val_split_name,
        }
