"""Datasets for training: ImageFolder trees, CIFAR-10/100 python batches, ``.npz`` arrays, and the
built-in synthetic shapes set; resizing and augmentation; DataLoaders.

``open_data(path, resolution=...)`` detects the format and returns a ``DataBundle`` (both splits
as lazy image sources plus the class names); ``ImageDataset`` turns a source into uint8 CHW
tensors at the model resolution, augmented for training.
"""

from mcu_effnet.data.dataset import ImageDataset, make_loader, stack_samples
from mcu_effnet.data.detect import open_data
from mcu_effnet.data.sources import DataBundle, ImageSource, warn_stderr

__all__ = [
    "DataBundle",
    "ImageDataset",
    "ImageSource",
    "make_loader",
    "open_data",
    "stack_samples",
    "warn_stderr",
]
