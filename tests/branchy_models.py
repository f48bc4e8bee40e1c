"""Test CNNs with parallel branches, their ops stored breadth first (every branch's first op,
then every branch's second op, ...): a valid order that keeps every branch's wide tensors
alive at once, so a better execution order exists (``mcu_effnet.graph.op_order``)."""

from __future__ import annotations

import numpy as np
from tflite_builder import ModelBuilder


def branchy_cnn(
    rng: np.random.Generator,
    size: int = 8,
    branches: int = 3,
    expand: int = 24,
    depthwise: bool = True,
    merge: str = "concat",
) -> bytes:
    """stem conv 3x3 → ``branches`` × (1x1 expand (RELU6) → [depthwise 3x3 → HARD_SWISH] →
    1x1 reduce) → CONCATENATION on channels (``merge="concat"``) or a chain of ADDs
    (``merge="add"``) → 1x1 conv → MEAN → FC → SOFTMAX."""
    b = ModelBuilder(rng)
    c = 4
    x = b.input((1, size, size, 3))
    stem = b.conv2d(x, c, (3, 3), activation="RELU6")
    stages: list[list[int]] = [[stem] for _ in range(branches)]
    # one shared output quantization for the branch ends: CONCATENATION cannot rescale
    reduce_scale, reduce_zp = None, int(rng.integers(-10, 11))
    steps = ["expand", "dw", "act", "reduce"] if depthwise else ["expand", "reduce"]
    for step in steps:
        for k in range(branches):  # breadth first: the stored order interleaves the branches
            t = stages[k][-1]
            if step == "expand":
                y = b.conv2d(t, expand + 4 * k, (1, 1), activation="RELU6")
            elif step == "dw":
                y = b.depthwise(t, (3, 3))
            elif step == "act":
                y = b.unary("HARD_SWISH", t, out_scale=b.qparams(t)[0] * 0.7, out_zp=-90)
            else:
                if reduce_scale is None:
                    reduce_scale = b._output_scale(t, np.array([0.01]), b.info[t].shape[-1])
                y = b.conv2d(t, c, (1, 1), out_scale=reduce_scale, out_zp=reduce_zp)
            stages[k].append(y)
    ends = [s[-1] for s in stages]
    if merge == "concat":
        scale, zp = b.qparams(ends[0])
        merged = b.activation("concat", (1, size, size, c * branches), scale, zp)
        b.add_op("CONCATENATION", ends, [merged], axis=3, fused_activation_function="NONE")
    else:
        merged = ends[0]
        for t in ends[1:]:
            merged = b.add(merged, t)
    feat = b.conv2d(merged, 8, (1, 1), activation="RELU")
    pooled = b.mean(feat, (1, 2), keep_dims=False)
    b.outputs = [b.softmax(b.fully_connected(pooled, 5))]
    return b.build()
