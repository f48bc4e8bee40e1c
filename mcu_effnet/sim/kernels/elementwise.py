"""ADD and MUL on int8 with numpy broadcasting, as TFLite Micro's reference integer kernels.

ADD lifts both inputs by 2^20, scales each to 2·max(s1, s2) with a multiplier below one, sums
and rescales to the output (``AddFunc``). MUL multiplies the zero-point-corrected inputs in
int32 and requantizes once (``MulElementwise``). Both clamp to the fused activation's range
(``mcu_effnet.ops.elementwise.BinaryParams``).
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.common import input_tensor, output_tensor
from mcu_effnet.ops.elementwise import BinaryParams
from mcu_effnet.sim.kernels.common import Kernel, op_params, requantizer
from mcu_effnet.sim.requantize import wrap_int32


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


def add(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    a, b = _aligned(graph, op, inputs)
    p: BinaryParams = op_params(graph, op)
    # All three multipliers are below one (shift <= 0): MultiplyByQuantizedMultiplierSmallerThanOneExp
    # is then the same computation as MultiplyByQuantizedMultiplier.
    scale1 = requantizer(graph, op, p.in1_multiplier, p.in1_shift, "in1")
    scale2 = requantizer(graph, op, p.in2_multiplier, p.in2_shift, "in2")
    scale_out = requantizer(graph, op, p.out_multiplier, p.out_shift)
    shifted1 = (a + p.in1_offset) << p.left_shift  # |x| < 2^9 · 2^20 (int16: 2^16 · 2^15): int32 as in C
    shifted2 = (b + p.in2_offset) << p.left_shift
    raw_sum = wrap_int32(scale1(shifted1) + scale2(shifted2))
    return [scale_out.to_int8(raw_sum, p.out_offset, p.act_min, p.act_max, output_tensor(graph, op).dtype)]


def mul(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    a, b = _aligned(graph, op, inputs)
    p: BinaryParams = op_params(graph, op)
    scale = requantizer(graph, op, p.out_multiplier, p.out_shift)
    product = (a + p.in1_offset) * (b + p.in2_offset)  # |product| <= 2^16 (int16: 2^30): int32 as in C
    return [scale.to_int8(product, p.out_offset, p.act_min, p.act_max, output_tensor(graph, op).dtype)]


KERNELS: dict[str, Kernel] = {"ADD": add, "MUL": mul}
