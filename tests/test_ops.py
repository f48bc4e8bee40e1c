"""The Prepare layer (mcu_effnet.ops): each op's Params pinned to what TFLite Micro's Prepare computes.

Scales are powers of two (or small multiples of them), so the real multipliers are exact and
TFLite Micro's values follow by hand from ``QuantizeMultiplier`` (``frexp``: real = q · 2^e
with q in [0.5, 1), multiplier = round(q · 2^31), shift = e); each expectation says how.
"""

from __future__ import annotations

import numpy as np
import pytest
from tflite_builder import ModelBuilder

from mcu_effnet.graph import SUPPORTED_OPS, load_tflite
from mcu_effnet.graph.ir import Graph
from mcu_effnet.ops import registry
from mcu_effnet.ops.common import op_padding

HALF = 1 << 30  # the multiplier of every power of two: q = 0.5


def _graph(b: ModelBuilder) -> Graph:
    return load_tflite(b.build())


def _conv(
    weight_scales: list[float], size: int = 5, stride: int = 1, dilation: int = 1, kind: str = "CONV_2D"
):
    """One CONV_2D (or DEPTHWISE_CONV_2D) of a 3x3 window over size × size × 3, input scale
    2^-4 (zero point 5), output scale 2^-5, the given per-channel weight scales."""
    b = ModelBuilder(np.random.default_rng(0))
    x = b.input((1, size, size, 3), scale=2.0**-4, zero_point=5)
    channels = len(weight_scales)
    shape = (channels, 3, 3, 3) if kind == "CONV_2D" else (1, 3, 3, channels)
    weights = b.rng.integers(-127, 128, size=shape).astype(np.int8)
    axis = 0 if kind == "CONV_2D" else 3
    w = b.add_tensor("w", shape, "int8", np.array(weight_scales, np.float32), 0, axis, weights)
    bias = b.add_tensor("b", (channels,), "int32", np.full(channels, 2.0**-10, np.float32), 0, 0,
                        np.arange(channels, dtype=np.int32) * 100 - 7)  # fmt: skip
    out = (size - 1) // stride + 1
    y = b.activation("y", (1, out, out, channels), 2.0**-5, -3)
    options = dict(padding="SAME", stride_h=stride, stride_w=stride, dilation_h_factor=dilation,
                   dilation_w_factor=dilation, fused_activation_function="RELU6")  # fmt: skip
    if kind == "DEPTHWISE_CONV_2D":
        options["depth_multiplier"] = channels // 3
    b.add_op(kind, [x, w, bias], [y], **options)
    b.outputs = [y]
    return _graph(b), weights


def test_conv_per_channel_multipliers_shifts_bias_and_clamp():
    graph, weights = _conv([2.0**-7, 2.0**-8, 3 * 2.0**-9])
    p = registry.prepare(graph, graph.ops[0])
    # real = 2^-4 · s_w / 2^-5 = 2 · s_w: 2^-6 = 0.5 · 2^-5, 2^-7 = 0.5 · 2^-6, 3 · 2^-8 = 0.75 · 2^-6
    assert p.multiplier.tolist() == [HALF, HALF, 3 << 29]
    assert p.shift.tolist() == [-5, -6, -6]
    assert (p.in_offset, p.out_offset) == (-5, -3)
    # RELU6 on scale 2^-5, zero point -3: [-3 + 0, -3 + 6 · 32] clamped to int8
    assert (p.act_min, p.act_max) == (-3, 127)
    assert p.bias.tolist() == [-7, 93, 193]
    sums = [int(weights[c].astype(np.int64).sum()) for c in range(3)]
    assert p.folded_bias.tolist() == [b - 5 * s for b, s in zip([-7, 93, 193], sums, strict=True)]


def test_a_per_tensor_filter_scale_gives_every_channel_the_same_multiplier():
    b = ModelBuilder(np.random.default_rng(1))
    y = b.conv2d(b.input((1, 4, 4, 2)), 5, (1, 1), per_channel=False)
    b.outputs = [y]
    graph = _graph(b)
    p = registry.prepare(graph, graph.ops[0])
    assert p.multiplier.shape == p.shift.shape == (5,)
    assert len(set(p.multiplier.tolist())) == len(set(p.shift.tolist())) == 1


@pytest.mark.parametrize(
    "size, stride, dilation, kind, pad",
    [
        (5, 2, 1, "CONV_2D", 1),  # out 3: (3 − 1)·2 + 3 − 5 = 2 padded, 1 before
        (6, 2, 1, "CONV_2D", 0),  # out 3: 4 + 3 − 6 = 1 padded, the odd one after
        (5, 1, 2, "CONV_2D", 2),  # dilated window of 5: 4 + 5 − 5 = 4 padded, 2 before
        (5, 1, 1, "DEPTHWISE_CONV_2D", 1),
    ],
)
def test_same_padding(size, stride, dilation, kind, pad):
    graph, _ = _conv([2.0**-7] * 3, size=size, stride=stride, dilation=dilation, kind=kind)
    op = graph.ops[0]
    assert op_padding(graph, op) == (pad, pad)
    p = registry.prepare(graph, op)
    assert (p.pad_top, p.pad_left, p.stride_h, p.dil_h) == (pad, pad, stride, dilation)


def test_add_lifts_by_2_to_the_20_and_scales_to_twice_the_larger_input():
    b = ModelBuilder(np.random.default_rng(2))
    x1 = b.input((1, 2, 2, 3), scale=2.0**-3, zero_point=4)
    x2 = b.input((1, 2, 2, 3), scale=2.0**-4, zero_point=-6)
    y = b.activation("y", (1, 2, 2, 3), 2.0**-2, 9)
    b.add_op("ADD", [x1, x2], [y], fused_activation_function="NONE")
    b.outputs = [y]
    graph = _graph(b)
    p = registry.prepare(graph, graph.ops[0])
    assert p.left_shift == 20
    assert (p.in1_offset, p.in2_offset, p.out_offset) == (-4, 6, 9)
    # twice_max = 2^-2: input 1 by 2^-3 / 2^-2 = 0.5 · 2^0, input 2 by 2^-2 = 0.5 · 2^-1,
    # output by 2^-2 / (2^20 · 2^-2) = 2^-20 = 0.5 · 2^-19
    assert (p.in1_multiplier, p.in1_shift) == (HALF, 0)
    assert (p.in2_multiplier, p.in2_shift) == (HALF, -1)
    assert (p.out_multiplier, p.out_shift) == (HALF, -19)
    assert (p.act_min, p.act_max) == (-128, 127)


def test_mul_has_one_multiplier():
    b = ModelBuilder(np.random.default_rng(3))
    x1 = b.input((1, 2, 2, 3), scale=0.5, zero_point=1)
    x2 = b.input((1, 2, 2, 3), scale=0.25, zero_point=2)
    y = b.activation("y", (1, 2, 2, 3), 2.0**-5, 0)
    b.add_op("MUL", [x1, x2], [y], fused_activation_function="RELU")
    b.outputs = [y]
    graph = _graph(b)
    p = registry.prepare(graph, graph.ops[0])
    # real = 0.5 · 0.25 / 2^-5 = 4 = 0.5 · 2^3
    assert (p.out_multiplier, p.out_shift, p.left_shift, p.in1_multiplier) == (HALF, 3, 0, 0)
    assert (p.in1_offset, p.in2_offset, p.act_min) == (-1, -2, 0)
    assert registry.op_macs(graph, graph.ops[0]) == 12


def test_mean_folds_one_over_the_count_into_the_multiplier():
    b = ModelBuilder(np.random.default_rng(4))
    x = b.input((1, 4, 4, 3), scale=2.0**-4, zero_point=7)
    b.outputs = [b.mean(x, (1, 2), keep_dims=True, out_scale=2.0**-4)]
    graph = _graph(b)
    p = registry.prepare(graph, graph.ops[0])
    # real 1 = 0.5 · 2^1; count 16 shifts it left by 4 and divides by 16: 2^30, shift 1 − 4
    assert (p.axes, p.count, p.multiplier, p.shift, p.in_zero_point) == ((1, 2), 16, HALF, -3, 7)


def test_softmax_and_logistic_input_scaling():
    b = ModelBuilder(np.random.default_rng(5))
    x = b.input((1, 10), scale=2.0**-4, zero_point=0)
    b.outputs = [b.softmax(x, beta=1.0), b.logistic(x)]
    graph = _graph(b)
    softmax = registry.prepare(graph, graph.ops[0])
    # beta · scale · 2^26 = 2^22 = 0.5 · 2^23; radius 31 · 2^26 / 2^23 = 248
    assert (softmax.in_multiplier, softmax.in_left_shift, softmax.diff_min) == (HALF, 23, -248)
    logistic = registry.prepare(graph, graph.ops[1])
    # scale · 2^27 = 2^23 = 0.5 · 2^24; radius 15 · 2^27 / 2^24 = 120
    assert (logistic.in_multiplier, logistic.in_left_shift) == (HALF, 24)
    assert logistic.in_range_radius == 120


def test_relu6_clamps_in_the_inputs_quantization():
    b = ModelBuilder(np.random.default_rng(6))
    x = b.input((1, 8), scale=2.0**-3, zero_point=-20)
    b.outputs = [b.unary("RELU6", x)]
    graph = _graph(b)
    p = registry.prepare(graph, graph.ops[0])
    assert (p.lower, p.upper) == (-20, -20 + 48)  # 6 / 2^-3 = 48


def test_every_supported_op_has_checks_and_only_they_do():
    assert registry.checked_kinds() == frozenset(SUPPORTED_OPS)


def test_macs_of_the_weighted_ops():
    graph, _ = _conv([2.0**-7] * 3, size=6, stride=2)
    assert registry.op_macs(graph, graph.ops[0]) == 3 * 3 * 3 * (3 * 3 * 3)  # outputs × window × depth
    graph, _ = _conv([2.0**-7] * 6, size=5, kind="DEPTHWISE_CONV_2D")
    assert registry.op_macs(graph, graph.ops[0]) == 5 * 5 * 6 * 9
