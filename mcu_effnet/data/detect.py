"""``--data PATH``: work out which format a path is and open it."""

from __future__ import annotations

from pathlib import Path

from mcu_effnet.data.cifar import cifar_variant, open_cifar
from mcu_effnet.data.folder import VAL_SPLIT_NAMES, is_image_folder, open_image_folder
from mcu_effnet.data.npz import open_npz
from mcu_effnet.data.sources import DataBundle, Warn, random_subset, warn_stderr
from mcu_effnet.data.synthetic import open_synthetic
from mcu_effnet.errors import UserError

FORMATS = (
    "a folder with train/ and val/ (or test/) class subfolders, "
    "a CIFAR-10/100 python-batches folder, or an .npz with x_train, y_train, x_test, y_test"
)


def open_data(
    path: str | Path | None,
    *,
    seed: int = 0,
    max_train: int | None = None,
    max_val: int | None = None,
    warn: Warn = warn_stderr,
) -> DataBundle:
    """Opens ``path`` (None: the built-in synthetic set) and optionally keeps a random subset.

    Raises UserError, in one line naming the path, for anything that is not a usable dataset.
    """
    if path is None:
        bundle = open_synthetic(seed=seed)
    else:
        bundle = _open_path(Path(path).expanduser(), warn)
    for name, limit in (("max_train", max_train), ("max_val", max_val)):
        if limit is not None and limit < 1:
            raise UserError(f"{name} must be at least 1, got {limit}")
    # The subset's seed is fixed apart from the training seed, so --seed changes the training,
    # not which images are in the data.
    bundle.train = random_subset(bundle.train, max_train, seed=12345)
    bundle.val = random_subset(bundle.val, max_val, seed=54321)
    return bundle


def _open_path(path: Path, warn: Warn) -> DataBundle:
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return open_npz(path)
        raise UserError(f"{path}: not a dataset; a dataset is {FORMATS}")
    if not any(path.iterdir()):
        raise UserError(f"{path}: data folder is empty; a dataset is {FORMATS}")
    if cifar_variant(path) is not None:
        return open_cifar(path)
    if is_image_folder(path):
        return open_image_folder(path, warn)
    if (path / "train").is_dir():
        raise UserError(
            f"{path}: has train/ but no {' or '.join(n + '/' for n in VAL_SPLIT_NAMES)} to validate on"
        )
    raise UserError(f"{path}: not a recognised dataset; a dataset is {FORMATS}")
