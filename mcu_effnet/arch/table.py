"""EfficientNet-B0, Table 1 of Tan & Le (2019), as data.

Stages are numbered 1–9 as in the paper: 1 is the stem conv3x3, 2–8 the MBConv stages,
9 the conv1x1 head with global pooling and the fully connected classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE_RESOLUTION = 224  # B0's input, in pixels (square)


@dataclass(frozen=True)
class BaseStage:
    """One row of Table 1. ``resolution`` is the stage's input resolution at 224 px."""

    stage: int
    operator: str
    kernel: int
    stride: int
    expand_ratio: int  # 0 for the stem and head (no inverted bottleneck)
    resolution: int
    channels: int
    layers: int

    @property
    def is_mbconv(self) -> bool:
        return self.expand_ratio > 0


B0_STAGES: tuple[BaseStage, ...] = (
    BaseStage(1, "Conv3x3", 3, 2, 0, 224, 32, 1),
    BaseStage(2, "MBConv1", 3, 1, 1, 112, 16, 1),
    BaseStage(3, "MBConv6", 3, 2, 6, 112, 24, 2),
    BaseStage(4, "MBConv6", 5, 2, 6, 56, 40, 2),
    BaseStage(5, "MBConv6", 3, 2, 6, 28, 80, 3),
    BaseStage(6, "MBConv6", 5, 1, 6, 14, 112, 3),
    BaseStage(7, "MBConv6", 5, 2, 6, 14, 192, 4),
    BaseStage(8, "MBConv6", 3, 1, 6, 7, 320, 1),
    BaseStage(9, "Conv1x1 & Pooling & FC", 1, 1, 0, 7, 1280, 1),
)

# Variants: "full" is EfficientNet as published; "lite" is EfficientNet-Lite (the TF reference's
# efficientnet_lite_builder): ReLU6 instead of swish, no squeeze-excitation, and with
# fix_head_stem the stem (32) and head (1280) channels and the repeats of the first and last
# MBConv stages (2 and 8) are not scaled.
VARIANTS = ("full", "lite")
SE_RATIO = {"full": 0.25, "lite": 0.0}  # of the block's input channels, as the reference
ACTIVATION = {"full": "swish", "lite": "relu6"}
FIXED_STAGES_LITE = (1, 9)  # channels not scaled in lite
FIXED_REPEATS_LITE = (2, 8)  # repeats not scaled in lite
