"""CIFAR-10 and CIFAR-100 "python version" folders, as unpacked from the official tarballs.

CIFAR-10: ``data_batch_1`` ... ``data_batch_5``, ``test_batch``, ``batches.meta``.
CIFAR-100: ``train``, ``test``, ``meta`` (the 100 fine labels are used).
Each batch is a pickle of a dict with ``data`` (N x 3072 uint8, channel-planar 32x32) and labels.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from mcu_effnet.data.sources import ArraySource, DataBundle
from mcu_effnet.errors import UserError

CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


def cifar_variant(root: Path) -> str | None:
    """The CIFAR flavour of a folder: "cifar-10", "cifar-100", or None for neither."""
    if (root / "batches.meta").is_file() and (root / "test_batch").is_file():
        return "cifar-10"
    if (root / "meta").is_file() and (root / "train").is_file() and (root / "test").is_file():
        return "cifar-100"
    return None


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise UserError(f"{path}: not a readable CIFAR pickle ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a CIFAR batch (expected a pickled dict)")
    # Keys are bytes in the official files; accept str keys too (re-pickled copies).
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


def _batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    if "data" not in batch or label_key not in batch:
        raise UserError(f"{path}: CIFAR batch without '{'data' if 'data' not in batch else label_key}'")
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise UserError(
            f"{path}: CIFAR data has shape {data.shape} for {len(labels)} labels (expected N x 3072)"
        )
    # Stored channel-planar (R plane, G plane, B plane); the sources hand out HWC.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _names(values: list) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def open_cifar(root: Path) -> DataBundle:
    variant = cifar_variant(root)
    if variant == "cifar-10":
        missing = [name for name in CIFAR10_TRAIN if not (root / name).is_file()]
        if missing:
            raise UserError(f"{root}: CIFAR-10 folder without {', '.join(missing)}")
        parts = [_batch(root / name, "labels") for name in CIFAR10_TRAIN]
        train_x = np.concatenate([p[0] for p in parts])
        train_y = np.concatenate([p[1] for p in parts])
        test_x, test_y = _batch(root / "test_batch", "labels")
        meta = _unpickle(root / "batches.meta")
        names = _names(meta.get("label_names", []))
    elif variant == "cifar-100":
        train_x, train_y = _batch(root / "train", "fine_labels")
        test_x, test_y = _batch(root / "test", "fine_labels")
        names = _names(_unpickle(root / "meta").get("fine_label_names", []))
    else:
        raise UserError(f"{root}: not a CIFAR-10/100 python-batches folder")
    classes = int(max(train_y.max(), test_y.max())) + 1
    if len(names) < classes:
        raise UserError(f"{root}: meta file names {len(names)} classes but labels go up to {classes - 1}")
    return DataBundle(
        name=variant,
        kind="cifar",
        class_names=names[:classes],
        train=ArraySource(train_x, train_y),
        val=ArraySource(test_x, test_y),
        val_split_name="test",
    )
