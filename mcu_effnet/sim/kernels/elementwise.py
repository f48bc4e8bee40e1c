"""ADD and MUL on int8 with numpy broadcasting, as TFLite Micro's reference integer kernels.

ADD lifts both inputs by 2^20, scales each to 2·max(s1, s2) with a multiplier below one, sums
and rescales to the output (``AddFunc``). MUL multiplies the zero-point-corrected inputs in
int32 and requantizes once (``MulElementwise``). Both clamp to the fused activation's range.
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.sim.kernels.common import Kernel, cached, input_tensor, output_tensor, qparams
from mcu_effnet.sim.requantize import (
    AddParams,
    activation_range,
    add_params,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_smaller_than_one_exp,
    quantize_multiplier,
    wrap_int32,
)


def _aligned(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """The two inputs as int64, a lower-rank batched activation given unit axes after its batch axis.

    In the file both shapes broadcast right-aligned; a batched activation keeps its batch axis
    in front, so its remaining axes must be pushed right to line up as they did in the file.
    Constants carry no batch axis of their own and broadcast as stored.
    """
    rank = len(output_tensor(graph, op).shape)
    aligned = []
    for k in range(2):
        value = np.asarray(inputs[k]).astype(np.int64)
        if not input_tensor(graph, op, k).is_constant and value.ndim < rank:
            value = value.reshape(value.shape[0], *([1] * (rank - value.ndim)), *value.shape[1:])
        aligned.append(value)
    return aligned[0], aligned[1]


def _activation(graph: Graph, op: Op) -> tuple[int, int, int]:
    out_scale, out_zp = qparams(output_tensor(graph, op))
    lo, hi = activation_range(op.attrs.get("fused_activation_function", "NONE"), out_scale, out_zp)
    return out_zp, lo, hi


def _add_plan(graph: Graph, op: Op) -> tuple[AddParams, int, int]:
    s1, z1 = qparams(input_tensor(graph, op, 0))
    s2, z2 = qparams(input_tensor(graph, op, 1))
    out_scale, out_zp = qparams(output_tensor(graph, op))
    _, lo, hi = _activation(graph, op)
    return add_params(s1, z1, s2, z2, out_scale, out_zp), lo, hi


def add(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    a, b = _aligned(graph, op, inputs)
    p, lo, hi = cached(graph, op, "add", lambda: _add_plan(graph, op))
    shifted1 = (a + p.input1_offset) << p.left_shift  # |x| < 2^9 · 2^20: fits int32 as in C
    shifted2 = (b + p.input2_offset) << p.left_shift
    scaled1 = multiply_by_quantized_multiplier_smaller_than_one_exp(
        shifted1, p.input1_multiplier, p.input1_shift
    )
    scaled2 = multiply_by_quantized_multiplier_smaller_than_one_exp(
        shifted2, p.input2_multiplier, p.input2_shift
    )
    raw_sum = wrap_int32(scaled1 + scaled2)
    raw = (
        multiply_by_quantized_multiplier_smaller_than_one_exp(raw_sum, p.output_multiplier, p.output_shift)
        + p.output_offset
    )
    return [np.clip(raw, lo, hi).astype(np.int8)]


def _mul_plan(graph: Graph, op: Op) -> tuple[int, int, int, int, int, int, int]:
    s1, z1 = qparams(input_tensor(graph, op, 0))
    s2, z2 = qparams(input_tensor(graph, op, 1))
    out_scale, out_zp = qparams(output_tensor(graph, op))
    # MUL's real multiplier: the three float32 scales widened to double, then multiplied and divided.
    multiplier, shift = quantize_multiplier(np.float64(s1) * np.float64(s2) / np.float64(out_scale))
    _, lo, hi = _activation(graph, op)
    return z1, z2, out_zp, int(multiplier), int(shift), lo, hi


def mul(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    a, b = _aligned(graph, op, inputs)
    z1, z2, out_zp, multiplier, shift, lo, hi = cached(graph, op, "mul", lambda: _mul_plan(graph, op))
    raw = out_zp + multiply_by_quantized_multiplier((a - z1) * (b - z2), multiplier, shift)
    return [np.clip(raw, lo, hi).astype(np.int8)]


KERNELS: dict[str, Kernel] = {"ADD": add, "MUL": mul}
