"""Settable training augmentation: flips, crop scale, a light RandAugment-style policy, mixup/cutmix.

The per-image policy works on uint8 CHW tensors with plain torch ops (no torchvision): a small
affine warp (rotation, shear, translation) and brightness/contrast changes, drawn from the same
``numpy.random.Generator`` as the crop, so a sample's augmentation still depends only on
(seed, epoch, index). Mixup and cutmix act on whole batches in the training loop and are drawn
from a generator seeded by (seed, epoch, batch).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mcu_effnet.errors import UserError

POLICIES = ("none", "light", "strong")


@dataclass(frozen=True)
class AugmentConfig:
    hflip: float = 0.5  # probability of a horizontal flip; 0 for digits, text, arrows, gauges
    crop_scale: tuple[float, float] = (1.0, 1.0)  # random-resized-crop area range; (1, 1): shift only
    policy: str = "none"  # none | light | strong
    mixup: float = 0.0  # Beta(a, a) mixing of two images and their labels; 0 = off
    cutmix: float = 0.0  # Beta(a, a) area of a pasted patch; 0 = off

    def __post_init__(self) -> None:
        lo, hi = self.crop_scale
        # (holds, the parameter it is about, the message in its name; the CLI names the flag)
        checks = [
            (0.0 <= self.hflip <= 1.0, "hflip", f"hflip must be in [0, 1], got {self.hflip:g}"),
            (0.0 < lo <= hi <= 1.0, "crop_scale", f"crop_scale must be 0 < LO <= HI <= 1, got {lo:g} {hi:g}"),
            (
                self.policy in POLICIES,
                "augment",
                f"augment must be one of {', '.join(POLICIES)}, got {self.policy!r}",
            ),
            (self.mixup >= 0, "mixup", f"mixup must be >= 0, got {self.mixup:g}"),
            (self.cutmix >= 0, "cutmix", f"cutmix must be >= 0, got {self.cutmix:g}"),
        ]
        for ok, option, message in checks:
            if not ok:
                raise UserError(message, options=(option,))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["crop_scale"] = list(self.crop_scale)
        return data

    def describe(self) -> str:
        parts = [f"hflip {self.hflip:g}", f"crop scale {self.crop_scale[0]:g}-{self.crop_scale[1]:g}",
                 f"augment {self.policy}"]  # fmt: skip
        if self.mixup:
            parts.append(f"mixup {self.mixup:g}")
        if self.cutmix:
            parts.append(f"cutmix {self.cutmix:g}")
        return ", ".join(parts)


@dataclass(frozen=True)
class _Strength:
    ops: int  # ops drawn per image
    degrees: float  # rotation range, +-
    shear: float  # +- (radians of shear angle)
    translate: float  # +- fraction of the side
    brightness: float  # +- fraction
    contrast: float  # +- fraction


# Small magnitudes: tiny networks at 32-96 px lose more than they gain from strong warps.
_STRENGTHS = {
    "light": _Strength(ops=1, degrees=10.0, shear=0.1, translate=0.08, brightness=0.2, contrast=0.2),
    "strong": _Strength(ops=2, degrees=20.0, shear=0.2, translate=0.15, brightness=0.4, contrast=0.4),
}
_OPS = ("identity", "rotate", "shear", "translate", "brightness", "contrast")


def _affine(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Warps a float CHW image by a 2x3 matrix in normalised coordinates, reflecting at borders
    (no black corners, which would be a feature the validation images never have)."""
    grid = F.affine_grid(matrix[None], [1, *image.shape], align_corners=False)
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False)[
        0
    ]


def _apply(op: str, image: torch.Tensor, magnitude: float, s: _Strength) -> torch.Tensor:
    """One op on a float CHW image in [0, 255]; ``magnitude`` is uniform in [-1, 1]."""
    if op == "rotate":
        angle = math.radians(s.degrees * magnitude)
        c, n = math.cos(angle), math.sin(angle)
        return _affine(image, torch.tensor([[c, -n, 0.0], [n, c, 0.0]]))
    if op == "shear":
        return _affine(image, torch.tensor([[1.0, s.shear * magnitude, 0.0], [0.0, 1.0, 0.0]]))
    if op == "translate":
        # Normalised coordinates span 2 per side.
        return _affine(image, torch.tensor([[1.0, 0.0, 2 * s.translate * magnitude], [0.0, 1.0, 0.0]]))
    if op == "brightness":
        return image * (1.0 + s.brightness * magnitude)
    if op == "contrast":
        mean = image.mean()
        return (image - mean) * (1.0 + s.contrast * magnitude) + mean
    return image


def apply_policy(image: torch.Tensor, policy: str, rng: np.random.Generator) -> torch.Tensor:
    """``policy`` ("none", "light" or "strong") on a uint8 CHW tensor; same shape and dtype back."""
    if policy == "none":
        return image
    strength = _STRENGTHS[policy]
    ops = rng.choice(len(_OPS), size=strength.ops, replace=False)
    magnitudes = rng.uniform(-1.0, 1.0, size=strength.ops)
    work = image.float()
    for op, magnitude in zip(ops, magnitudes, strict=True):
        work = _apply(_OPS[int(op)], work, float(magnitude), strength)
    return work.round_().clamp_(0, 255).to(torch.uint8)


@dataclass
class MixedBatch:
    """A batch after mixup/cutmix: the loss is ``lam * loss(y_a) + (1 - lam) * loss(y_b)``."""

    x: torch.Tensor
    y_a: torch.Tensor
    y_b: torch.Tensor
    lam: float


def mix_batch(
    x: torch.Tensor, y: torch.Tensor, config: AugmentConfig, rng: np.random.Generator
) -> MixedBatch:
    """Mixup or cutmix (one of them, at random, when both are on) of a uint8 NCHW batch with a
    permutation of itself; no change when both are off. Shapes and dtypes are kept."""
    choices = [name for name, alpha in (("mixup", config.mixup), ("cutmix", config.cutmix)) if alpha > 0]
    if not choices or len(y) < 2:
        return MixedBatch(x, y, y, 1.0)
    kind = choices[int(rng.integers(len(choices)))]
    lam = float(
        rng.beta(config.mixup, config.mixup) if kind == "mixup" else rng.beta(config.cutmix, config.cutmix)
    )
    order = torch.from_numpy(rng.permutation(len(y)))
    if kind == "mixup":
        mixed = (x.float() * lam + x[order].float() * (1.0 - lam)).round_().clamp_(0, 255).to(x.dtype)
        return MixedBatch(mixed, y, y[order], lam)
    height, width = x.shape[-2:]
    cut_h, cut_w = round(height * math.sqrt(1.0 - lam)), round(width * math.sqrt(1.0 - lam))
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + (cut_h + 1) // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + (cut_w + 1) // 2, width)
    mixed = x.clone()
    mixed[..., top:bottom, left:right] = x[order][..., top:bottom, left:right]
    # The pasted area after clipping at the borders sets the label weight.
    lam = 1.0 - (bottom - top) * (right - left) / (height * width)
    return MixedBatch(mixed, y, y[order], lam)
