"""The built-in data set: 10 classes of procedurally drawn shapes, generated on the fly per index.

A class is a shape kind (disc, square, triangle, cross, ring) times a fill texture (solid or
striped). Everything else is a nuisance drawn at random: position, size, tilt, the fill and
stripe colours (a darker background, a brighter shape), stripe period and angle, a two-colour
gradient background, pixel noise. So a
model has to learn shape and texture, not colour or place: learnable by a tiny network, not by a
linear one. Sample ``i`` of a split is a pure function of (seed, split, i), so nothing is stored
and every run, worker and resume sees the same images.
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.data.sources import DataBundle

SHAPES = ("disc", "square", "triangle", "cross", "ring")
TEXTURES = ("solid", "striped")
CLASS_NAMES = [f"{texture}-{shape}" for shape in SHAPES for texture in TEXTURES]
DEFAULT_TRAIN_SIZE = 10_000
DEFAULT_VAL_SIZE = 2_000
_SPLIT_IDS = {"train": 0, "val": 1}
_MIN_COLOUR_DISTANCE = 90.0  # in 0..255 RGB units: the shape must stand out from its background


def _shape_mask(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test of a unit-size shape in its own (rotated, scaled) coordinates."""
    if kind == "disc":
        return u * u + v * v < 1.0
    if kind == "square":
        return np.maximum(np.abs(u), np.abs(v)) < 0.82
    if kind == "triangle":
        # Equilateral, circumradius 1: inside all three edges, whose normals are 120 degrees apart.
        inside = np.ones_like(u, dtype=bool)
        for angle in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3):
            inside &= u * np.cos(angle) + v * np.sin(angle) < 0.5
        return inside
    if kind == "cross":
        bar = 0.34
        return ((np.abs(u) < bar) & (np.abs(v) < 1.0)) | ((np.abs(v) < bar) & (np.abs(u) < 1.0))
    if kind == "ring":
        r2 = u * u + v * v
        return (r2 < 1.0) & (r2 > 0.55**2)
    raise ValueError(kind)


def _colour_far_from(rng: np.random.Generator, others: list[np.ndarray]) -> np.ndarray:
    for _ in range(64):
        colour = rng.uniform(0, 255, size=3)
        if all(np.linalg.norm(colour - other) >= _MIN_COLOUR_DISTANCE for other in others):
            return colour
    return 255.0 - others[0]  # practically unreachable; still deterministic and distinct


def render(seed: int, split: str, index: int, size: int) -> tuple[np.ndarray, int]:
    """Image ``index`` of ``split`` as uint8 (size, size, 3), and its label."""
    label = index % len(CLASS_NAMES)
    shape = SHAPES[label // len(TEXTURES)]
    texture = TEXTURES[label % len(TEXTURES)]
    rng = np.random.default_rng([seed, _SPLIT_IDS[split], index])

    # Pixel centres in [-1, 1] image coordinates.
    axis = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    y, x = np.meshgrid(axis, axis, indexing="ij")

    # Any hue, but the shape is brighter than the background: with both polarities a network this
    # small needs several times more steps to learn the same shapes.
    bg_a = rng.uniform(0, 110, size=3)
    bg_b = rng.uniform(0, 110, size=3) if rng.random() < 0.5 else bg_a
    fill = rng.uniform(150, 255, size=3)
    stripe = _colour_far_from(rng, [fill])

    # Background: a linear gradient between two colours in a random direction.
    theta = rng.uniform(0, 2 * np.pi)
    t = np.clip((x * np.cos(theta) + y * np.sin(theta) + 1.0) / 2.0, 0.0, 1.0)[..., None]
    image = bg_a * (1.0 - t) + bg_b * t

    # The shape: random size (radius 0.45-0.7 of the half-width), place keeping most of it inside,
    # and a tilt of up to 25 degrees (upright enough that a triangle stays tellable from a square at
    # 32 px).
    radius = rng.uniform(0.5, 0.75)
    cx, cy = rng.uniform(-1.0 + radius * 0.8, 1.0 - radius * 0.8, size=2)
    angle = rng.uniform(-0.45, 0.45)
    dx, dy = (x - cx) / radius, (y - cy) / radius
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    mask = _shape_mask(shape, u, v)

    if texture == "striped":
        # Stripes 3-5 pixels wide at this resolution, whatever the resolution.
        period = rng.uniform(6.0, 10.0) * 2.0 / size
        phi = rng.uniform(0, np.pi)
        phase = rng.uniform(0, 2 * np.pi)
        waves = np.sin((x * np.cos(phi) + y * np.sin(phi)) * (2 * np.pi / period) + phase) > 0
        paint = np.where(waves[..., None], stripe, fill)
    else:
        paint = np.broadcast_to(fill, image.shape)
    image = np.where(mask[..., None], paint, image)

    image = image + rng.normal(0.0, rng.uniform(3.0, 10.0), size=image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), label


class SyntheticSource:
    """One split of the built-in set, rendered when an image is asked for."""

    def __init__(self, seed: int, split: str, count: int) -> None:
        self.seed = seed
        self.split = split
        self.count = count
        self.labels = [i % len(CLASS_NAMES) for i in range(count)]

    def __len__(self) -> int:
        return self.count

    def load(self, index: int, size_hint: int) -> np.ndarray:
        # Rendered at the model resolution directly (the scene is defined in resolution-free
        # coordinates), so no resize is needed.
        return render(self.seed, self.split, index, size_hint)[0]


def open_synthetic(
    *, seed: int = 0, train_size: int = DEFAULT_TRAIN_SIZE, val_size: int = DEFAULT_VAL_SIZE
) -> DataBundle:
    return DataBundle(
        name="builtin-shapes",
        kind="synthetic",
        class_names=list(CLASS_NAMES),
        train=SyntheticSource(seed, "train", train_size),
        val=SyntheticSource(seed, "val", val_size),
        val_split_name="val",
    )
