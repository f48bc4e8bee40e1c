"""Public tinyML architectures (MLPerf Tiny's image classification, visual wake words and keyword
spotting models) built with the test builder's random int8 weights.

Benchmarks and tests compare runtimes on them: the integer arithmetic does not depend on the
weights having been trained, only on the layer shapes, which follow the published models:

- ``resnet8``: MLPerf Tiny IC ResNet-8, 32x32x3 -> conv 3x3 16 (BN folded, ReLU) -> three
  residual stages of 16, 32, 64 channels (two 3x3 convs each; the second and third stage start
  with stride 2 and a 1x1 stride-2 shortcut conv) -> average pool -> FC 10 -> softmax;
- ``mobilenet_v1_025``: MobileNetV1 with width 0.25 at 96x96x3 (visual wake words, 2 classes):
  conv 3x3 stride 2 8 channels, 13 depthwise-separable blocks (ReLU6), average pool, FC 2, softmax;
- ``ds_cnn``: DS-CNN for keyword spotting on 49x10 MFCC features: conv 10x4 stride 2 64 channels,
  four depthwise-separable blocks of 64 channels, average pool, FC 12, softmax.

Each function takes a seed and returns the ``.tflite`` bytes.
"""

from __future__ import annotations

import numpy as np
from tflite_builder import ModelBuilder


def _classifier(b: ModelBuilder, x: int, classes: int) -> None:
    """Average pool over the whole map, flatten, FC, softmax: the model's output."""
    _, h, w, c = b.info[x].shape
    pooled = b.pool("AVERAGE_POOL_2D", x, (h, w), (1, 1), "VALID")
    flat = b.reshape(pooled, (1, c))
    b.outputs = [b.softmax(b.fully_connected(flat, classes))]


def resnet8(seed: int = 0) -> bytes:
    """MLPerf Tiny IC ResNet-8 (about 12.5 M MACs)."""
    b = ModelBuilder(np.random.default_rng(seed), description="ResNet-8 (MLPerf Tiny IC), random weights")
    x = b.conv2d(b.input((1, 32, 32, 3)), 16, (3, 3), activation="RELU")
    for channels, stride in ((16, 1), (32, 2), (64, 2)):
        y = b.conv2d(x, channels, (3, 3), (stride, stride), activation="RELU")
        y = b.conv2d(y, channels, (3, 3))
        shortcut = x if stride == 1 else b.conv2d(x, channels, (1, 1), (stride, stride))
        x = b.add(shortcut, y, activation="RELU")
    _classifier(b, x, 10)
    return b.build()


def _separable(b: ModelBuilder, x: int, channels: int, stride: int, activation: str) -> int:
    """Depthwise 3x3 then pointwise 1x1, each with its activation."""
    y = b.depthwise(x, (3, 3), (stride, stride), activation=activation)
    return b.conv2d(y, channels, (1, 1), activation=activation)


# MobileNetV1's depthwise-separable blocks at width 1.0: (output channels, stride).
_MOBILENET_V1_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)  # fmt: skip


def mobilenet_v1_025(seed: int = 0) -> bytes:
    """MobileNetV1 0.25 at 96x96x3 with 2 classes (MLPerf Tiny visual wake words)."""
    b = ModelBuilder(np.random.default_rng(seed), description="MobileNetV1-0.25 96x96 (VWW), random weights")
    x = b.conv2d(b.input((1, 96, 96, 3)), 8, (3, 3), (2, 2), activation="RELU6")
    for channels, stride in _MOBILENET_V1_BLOCKS:
        x = _separable(b, x, channels // 4, stride, "RELU6")
    _classifier(b, x, 2)
    return b.build()


def ds_cnn(seed: int = 0) -> bytes:
    """DS-CNN (small) for keyword spotting: 49x10x1 features, 64 channels, 12 classes."""
    b = ModelBuilder(np.random.default_rng(seed), description="DS-CNN (MLPerf Tiny KWS), random weights")
    x = b.conv2d(b.input((1, 49, 10, 1)), 64, (10, 4), (2, 2), activation="RELU")
    for _ in range(4):
        x = _separable(b, x, 64, 1, "RELU")
    _classifier(b, x, 12)
    return b.build()


# (benchmark name, builder)
PUBLIC_MODELS = (
    ("resnet8 mlperf-ic 32px", resnet8),
    ("mobilenetv1-0.25 vww 96px", mobilenet_v1_025),
    ("ds-cnn kws 49x10", ds_cnn),
)
