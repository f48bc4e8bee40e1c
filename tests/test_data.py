"""mcu_effnet.data: format detection, the three file formats, the synthetic set, transforms, loaders."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mcu_effnet.data import ImageDataset, make_loader, open_data
from mcu_effnet.data.synthetic import CLASS_NAMES, render
from mcu_effnet.data.transforms import eval_transform, train_transform
from mcu_effnet.errors import UserError


def _png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _image_folder(root: Path, classes=("cat", "dog"), per_class: int = 3, val: str = "val") -> Path:
    for split in ("train", val):
        for c, name in enumerate(classes):
            for i in range(per_class):
                _png(root / split / name / f"{i}.png", (100 * c, 10 * i, 50))
    return root


# ---- synthetic set ---------------------------------------------------------------------------


def test_synthetic_is_deterministic_by_seed_and_index():
    a, label_a = render(3, "train", 17, 32)
    b, label_b = render(3, "train", 17, 32)
    assert a.dtype == np.uint8 and a.shape == (32, 32, 3)
    assert np.array_equal(a, b) and label_a == label_b == 17 % 10
    assert not np.array_equal(a, render(4, "train", 17, 32)[0])
    assert not np.array_equal(a, render(3, "val", 17, 32)[0])
    assert not np.array_equal(a, render(3, "train", 27, 32)[0])  # same class, another image


def test_synthetic_bundle_has_ten_balanced_classes_at_the_model_resolution():
    bundle = open_data(None, max_train=200, max_val=50)
    assert bundle.kind == "synthetic" and bundle.class_names == CLASS_NAMES and bundle.classes == 10
    assert len(bundle.train) == 200 and len(bundle.val) == 50
    counts = np.bincount(open_data(None).train.labels, minlength=10)
    assert counts.min() == counts.max()
    image = bundle.train.load(0, 40)
    assert image.shape == (40, 40, 3)


def test_synthetic_classes_are_not_told_apart_by_mean_colour():
    # Colours are nuisance variables: a nearest-centroid classifier on an image's mean colour
    # (what a linear model on pooled pixels sees) stays near the 10% of chance.
    def mean_colours(split: str, count: int):
        pairs = [render(0, split, i, 24) for i in range(count)]
        return np.array([image.reshape(-1, 3).mean(0) for image, _ in pairs]), np.array(
            [label for _, label in pairs]
        )

    x, y = mean_colours("train", 600)
    centroids = np.stack([x[y == c].mean(0) for c in range(10)])
    vx, vy = mean_colours("val", 300)
    predicted = ((vx[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (predicted == vy).mean() < 0.25


# ---- transforms ------------------------------------------------------------------------------


def test_eval_transform_resizes_short_side_and_centre_crops():
    array = np.zeros((20, 60, 3), np.uint8)
    array[:, 20:40] = 255  # a white centre third
    out = eval_transform(array, 10)
    assert out.shape == (10, 10, 3)
    assert out.min() > 200  # only the centre survives the crop


def test_train_transform_is_a_function_of_the_generator_and_flips_sometimes():
    image = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    first = train_transform(image, 32, np.random.default_rng(5))
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, train_transform(image, 32, np.random.default_rng(5)))
    outs = [train_transform(image, 32, np.random.default_rng(s)) for s in range(20)]
    assert len({o.tobytes() for o in outs}) > 10
    gray = np.tile(np.arange(32, dtype=np.uint8)[None, :, None], (32, 1, 3))  # increases to the right
    directions = {
        bool(train_transform(gray, 32, np.random.default_rng(s))[16, 20, 0] > gray[16, 10, 0])
        for s in range(20)
    }
    assert directions == {True, False}


# ---- ImageFolder -----------------------------------------------------------------------------


def test_image_folder_detected_with_sorted_class_names(tmp_path):
    root = _image_folder(tmp_path / "pets", classes=("dog", "cat"), val="test")
    bundle = open_data(root)
    assert bundle.kind == "imagefolder" and bundle.name == "pets"
    assert bundle.class_names == ["cat", "dog"] and bundle.val_split_name == "test"
    assert len(bundle.train) == 6 and sorted(bundle.train.labels) == [0, 0, 0, 1, 1, 1]
    sample, label = ImageDataset(bundle.train, 16, augment=False)[0]
    assert sample.dtype == torch.uint8 and tuple(sample.shape) == (3, 16, 16) and label == 0


def test_image_folder_skips_unreadable_images_with_a_warning_naming_them(tmp_path):
    root = _image_folder(tmp_path / "d")
    (root / "train" / "cat" / "broken.jpg").write_bytes(b"not an image")
    (root / "train" / "dog" / "notes.txt").write_text("hello")
    warnings: list[str] = []
    bundle = open_data(root, warn=warnings.append)
    assert len(bundle.train) == 6
    assert len(warnings) == 1
    assert "skipped 2 unreadable images" in warnings[0] and "broken.jpg" in warnings[0]


def test_truncated_image_is_replaced_by_another_of_its_class(tmp_path, capsys):
    root = _image_folder(tmp_path / "d")
    bad = root / "train" / "cat" / "0.png"
    bad.write_bytes(bad.read_bytes()[:60])  # header intact, pixels cut off
    bundle = open_data(root)
    index = [str(p) for p in bundle.train.paths].index(str(bad))
    image = np.asarray(bundle.train.load(index, 16))
    assert tuple(image[0, 0]) == (0, 10, 50)  # cat/1.png, same class
    assert "0.png: cannot decode image" in capsys.readouterr().err


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: None, "no such file or directory"),
        (lambda root: root.mkdir(), "data folder is empty"),
        (lambda root: (root / "train" / "cat").mkdir(parents=True), "no val/ or test/"),
        (lambda root: (root / "stuff").mkdir(parents=True), "not a recognised dataset"),
    ],
)
def test_unusable_data_paths_raise_one_line_user_errors(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(UserError, match=message) as info:
        open_data(root)
    assert "\n" not in str(info.value) and str(root) in str(info.value)


def test_class_folder_without_readable_images_is_an_error(tmp_path):
    root = _image_folder(tmp_path / "d")
    (root / "val" / "dog" / "0.png").unlink()
    for i in (1, 2):
        (root / "val" / "dog" / f"{i}.png").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"val/dog: class folder has no readable images \(2 files"):
        open_data(root, warn=lambda m: None)


def test_mismatched_class_sets_are_an_error_listing_both_sides(tmp_path):
    root = _image_folder(tmp_path / "d")
    _png(root / "train" / "bird" / "0.png", (1, 2, 3))
    _png(root / "val" / "fish" / "0.png", (1, 2, 3))
    with pytest.raises(UserError, match=r"only in train/: bird; only in val/: fish"):
        open_data(root)


# ---- CIFAR and npz ---------------------------------------------------------------------------


def _cifar_images(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)]


def _write_cifar10(root: Path) -> dict[str, np.ndarray]:
    root.mkdir()
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images, labels = _cifar_images(4, len(written))
        planar = images.transpose(0, 3, 1, 2).reshape(4, -1)  # CIFAR stores R, G, B planes
        with open(root / name, "wb") as handle:
            pickle.dump({b"data": planar, b"labels": labels, b"batch_label": name.encode()}, handle)
        written[name] = images
    names = [
        n.encode() for n in ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    ]
    with open(root / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": names}, handle)
    return written


def test_cifar10_batches_folder_is_read_as_hwc_with_meta_names(tmp_path):
    written = _write_cifar10(tmp_path / "cifar-10-batches-py")
    bundle = open_data(tmp_path / "cifar-10-batches-py")
    assert bundle.name == "cifar-10" and bundle.class_names[1] == "car" and bundle.classes == 10
    assert len(bundle.train) == 20 and len(bundle.val) == 4
    assert np.array_equal(bundle.train.load(5, 32), written["data_batch_2"][1])
    assert np.array_equal(bundle.val.load(3, 32), written["test_batch"][3])
    sample, _ = ImageDataset(bundle.val, 32, augment=False)[3]
    assert np.array_equal(sample.permute(1, 2, 0).numpy(), written["test_batch"][3])


def test_cifar100_uses_fine_labels(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    for name, n in (("train", 6), ("test", 2)):
        images, _ = _cifar_images(n, 1)
        data = {b"data": images.transpose(0, 3, 1, 2).reshape(n, -1), b"fine_labels": [99] + [0] * (n - 1)}
        with open(root / name, "wb") as handle:
            pickle.dump(data, handle)
    with open(root / "meta", "wb") as handle:
        pickle.dump({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}, handle)
    bundle = open_data(root)
    assert bundle.name == "cifar-100" and bundle.classes == 100 and bundle.class_names[99] == "c99"


def test_npz_arrays_with_and_without_class_names(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 20, 24, 3), dtype=np.uint8)
    path = tmp_path / "mini.npz"
    np.savez(path, x_train=x, y_train=np.arange(12) % 3, x_test=x[:4], y_test=np.arange(4) % 3)
    bundle = open_data(path)
    assert bundle.kind == "npz" and bundle.name == "mini" and bundle.class_names == ["0", "1", "2"]
    sample, label = ImageDataset(bundle.train, 16, augment=True, seed=1)[4]
    assert tuple(sample.shape) == (3, 16, 16) and label == 1
    np.savez(path, x_train=x[..., 0], y_train=np.arange(12)[:, None] % 2, x_test=x[:2, ..., 0], y_test=[0, 1],
             class_names=np.array(["no", "yes"]))  # fmt: skip
    bundle = open_data(path)
    assert bundle.class_names == ["no", "yes"]
    assert tuple(ImageDataset(bundle.val, 16, augment=False)[0][0].shape) == (3, 16, 16)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x_train": np.zeros((2, 4, 4, 3), np.float32)}, "x_train has dtype float32"),
        ({"y_test": np.zeros(3, np.int64)}, "y_test has 3 labels for 2 images"),
        ({"x_test": None}, "without x_test"),
    ],
)
def test_bad_npz_is_a_user_error(tmp_path, arrays, message):
    base = {
        "x_train": np.zeros((2, 4, 4, 3), np.uint8),
        "y_train": np.zeros(2, np.int64),
        "x_test": np.zeros((2, 4, 4, 3), np.uint8),
        "y_test": np.zeros(2, np.int64),
    }
    base.update(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    with pytest.raises(UserError, match=message):
        open_data(path)


# ---- Dataset and loaders ---------------------------------------------------------------------


def test_augmentation_depends_on_seed_epoch_and_index_only():
    bundle = open_data(None, max_train=8)
    dataset = ImageDataset(bundle.train, 32, augment=True, seed=7)
    first = dataset[3][0]
    assert torch.equal(first, dataset[3][0])
    dataset.set_epoch(1)
    assert not torch.equal(first, dataset[3][0])
    dataset.set_epoch(0)
    assert torch.equal(first, dataset[3][0])


def test_loader_with_worker_processes_gives_the_same_batches_as_without():
    bundle = open_data(None, max_train=24)
    dataset = ImageDataset(bundle.train, 24, augment=True, seed=1)
    dataset.set_epoch(2)
    batches = {}
    for workers in (0, 2):
        loader = make_loader(dataset, batch_size=8, sampler=None, workers=workers, drop_last=False)
        batches[workers] = [(x.clone(), y.clone()) for x, y in loader]
    assert len(batches[0]) == 3
    for (x0, y0), (x2, y2) in zip(batches[0], batches[2], strict=True):
        assert torch.equal(x0, x2) and torch.equal(y0, y2)
