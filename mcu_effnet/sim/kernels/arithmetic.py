"""SUB, MAXIMUM, MINIMUM and PRELU on int8 with numpy broadcasting, as TFLite Micro's reference kernels.

SUB is ``BroadcastQuantSubSlow`` / ``SubElementwise``: ADD's lift by 2^20 and rescaling of
each input, the scaled second input subtracted, then the output rescaling and the clamp.
MAXIMUM and MINIMUM compare the raw codes. PRELU is ``BroadcastPrelu4DSlow``: the identity
multiplier for x ≥ 0, the product of x and alpha (both offset) rescaled for x < 0.
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.arithmetic import PreluParams
from mcu_effnet.ops.common import output_tensor
from mcu_effnet.ops.elementwise import BinaryParams
from mcu_effnet.sim.kernels.common import Kernel, op_params, requantizer
from mcu_effnet.sim.kernels.elementwise import _aligned as aligned
from mcu_effnet.sim.requantize import multiply_by_quantized_multiplier, wrap_int32


def sub(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    a, b = aligned(graph, op, inputs)
    p: BinaryParams = op_params(graph, op)
    scale1 = requantizer(graph, op, p.in1_multiplier, p.in1_shift, "in1")
    scale2 = requantizer(graph, op, p.in2_multiplier, p.in2_shift, "in2")
    scale_out = requantizer(graph, op, p.out_multiplier, p.out_shift)
    raw = wrap_int32(scale1((a + p.in1_offset) << p.left_shift) - scale2((b + p.in2_offset) << p.left_shift))
    # int16: |x| · 2^15 < 2^31, so the int32 arithmetic of the C++ is exact here as well
    return [scale_out.to_int8(raw, p.out_offset, p.act_min, p.act_max, output_tensor(graph, op).dtype)]


def maximum(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    a, b = aligned(graph, op, inputs)
    return [np.maximum(a, b).astype(np.int8)]


def minimum(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    a, b = aligned(graph, op, inputs)
    return [np.minimum(a, b).astype(np.int8)]


def prelu(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, alpha = aligned(graph, op, inputs)
    p: PreluParams = op_params(graph, op)
    x = x + p.in_offset
    positive = multiply_by_quantized_multiplier(x, p.identity_multiplier, p.identity_shift)
    # |x · alpha| ≤ 2^16: the int32 product of the C++ never overflows
    negative = multiply_by_quantized_multiplier(
        x * (alpha + p.alpha_offset), p.alpha_multiplier, p.alpha_shift
    )
    out = np.where(x >= 0, positive, negative) + p.out_offset
    return [np.clip(out, -128, 127).astype(np.int8)]


KERNELS: dict[str, Kernel] = {"SUB": sub, "MAXIMUM": maximum, "MINIMUM": minimum, "PRELU": prelu}
