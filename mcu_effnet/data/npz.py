"""``.npz`` archives with ``x_train, y_train, x_test, y_test``: uint8 HWC (or HW) images, int labels.

An optional ``class_names`` array names the classes; without it they are "0", "1", ...
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from mcu_effnet.data.sources import ArraySource, DataBundle
from mcu_effnet.errors import UserError

KEYS = ("x_train", "y_train", "x_test", "y_test")


def _images(path: Path, key: str, array: np.ndarray) -> np.ndarray:
    if array.dtype != np.uint8:
        raise UserError(f"{path}: {key} has dtype {array.dtype}; expected uint8 images (N, H, W, C)")
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[3] not in (1, 3, 4):
        raise UserError(f"{path}: {key} has shape {array.shape}; expected (N, H, W, C) with C of 1, 3 or 4")
    if len(array) == 0:
        raise UserError(f"{path}: {key} holds no images")
    return array


def _labels(path: Path, key: str, array: np.ndarray, count: int) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 2 and array.shape[1] == 1:  # Keras-style (N, 1) labels
        array = array[:, 0]
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise UserError(
            f"{path}: {key} must be a 1-D integer array of labels, got {array.dtype} {array.shape}"
        )
    if len(array) != count:
        raise UserError(f"{path}: {key} has {len(array)} labels for {count} images")
    if array.min() < 0:
        raise UserError(f"{path}: {key} has negative labels")
    return array.astype(np.int64)


def open_npz(path: Path) -> DataBundle:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not a readable .npz archive ({exc})") from None
    with archive:
        missing = [key for key in KEYS if key not in archive.files]
        if missing:
            raise UserError(f"{path}: .npz without {', '.join(missing)} (needs {', '.join(KEYS)})")
        train_x = _images(path, "x_train", archive["x_train"])
        test_x = _images(path, "x_test", archive["x_test"])
        train_y = _labels(path, "y_train", archive["y_train"], len(train_x))
        test_y = _labels(path, "y_test", archive["y_test"], len(test_x))
        names = [str(v) for v in archive["class_names"]] if "class_names" in archive.files else []
    classes = int(max(train_y.max(), test_y.max())) + 1
    if not names:
        names = [str(i) for i in range(classes)]
    elif len(names) < classes:
        raise UserError(f"{path}: class_names has {len(names)} entries but labels go up to {classes - 1}")
    return DataBundle(
        name=path.stem,
        kind="npz",
        class_names=names[:classes],
        train=ArraySource(train_x, train_y),
        val=ArraySource(test_x, test_y),
        val_split_name="test",
    )
