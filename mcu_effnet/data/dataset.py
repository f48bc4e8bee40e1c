"""The torch side of the data: a Dataset over an image source, and DataLoaders with workers.

Samples are uint8 CHW tensors: four times less to ship from worker processes than float, and the
exact integers the deployed int8 model sees. The training loop divides by 255 (the model input is
``pixel/255``; see ``mcu_effnet.quant.train``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mcu_effnet.data.augment import AugmentConfig, apply_policy
from mcu_effnet.data.sources import ImageSource
from mcu_effnet.data.transforms import eval_transform, train_transform


class ImageDataset(Dataset):
    """(uint8 CHW tensor at ``size`` x ``size``, label) pairs, augmented when ``augment`` is set.

    The augmentation of sample ``i`` in epoch ``e`` is drawn from a generator seeded with
    (seed, e, i), so it does not depend on the worker that loads it or on an interrupted epoch.
    Call ``set_epoch`` before creating each epoch's iterator (workers copy the dataset then).
    """

    def __init__(
        self,
        source: ImageSource,
        size: int,
        *,
        augment: bool,
        seed: int = 0,
        recipe: AugmentConfig | None = None,
    ) -> None:
        self.source = source
        self.size = size
        self.augment = augment
        self.recipe = recipe if recipe is not None else AugmentConfig()
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.source.load(index, self.size)
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            array = train_transform(
                image, self.size, rng, hflip=self.recipe.hflip, crop_scale=self.recipe.crop_scale
            )
        else:
            array = eval_transform(image, self.size)
        # The HWC -> CHW copy also makes the array writable (Pillow's arrays are read-only views).
        chw = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
        if self.augment:
            chw = apply_policy(chw, self.recipe.policy, rng)
        return chw, self.source.labels[index]


def make_loader(
    dataset: ImageDataset,
    *,
    batch_size: int,
    sampler: Sampler | None,
    workers: int,
    drop_last: bool,
    worker_init_fn=None,
) -> DataLoader:
    """A DataLoader with ``workers`` processes; workers are recreated each epoch so they pick up
    the dataset's epoch number (cheap next to an epoch of training)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=False,
        persistent_workers=False,
        worker_init_fn=worker_init_fn if workers > 0 else None,
    )


def stack_samples(dataset: ImageDataset, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` samples as uint8 NCHW images and int64 labels (for export checks)."""
    count = min(count, len(dataset))
    images = (
        np.stack([dataset[i][0].numpy() for i in range(count)])
        if count
        else np.zeros((0, 3, dataset.size, dataset.size), np.uint8)
    )
    labels = np.array([dataset.source.labels[i] for i in range(count)], dtype=np.int64)
    return images, labels
