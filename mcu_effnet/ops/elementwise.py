"""ADD and MUL with broadcasting: checks, Prepare and MAC count.

ADD's Prepare is ``CalculateOpDataAdd``: both inputs are lifted by 2^20 and brought to
2·max(s1, s2) with multipliers below one, summed, then rescaled to the output. MUL's is one
multiplier, the three float32 scales widened to double, multiplied and divided. MUL leaves
ADD's input multipliers at zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks, common
from mcu_effnet.ops.common import elements, input_tensor, output_tensor, qparams, quantize_multiplier

ADD_LEFT_SHIFT = 20
ADD_LEFT_SHIFT_INT16 = 15  # CalculateOpDataAdd: int16 values are 2^7 wider, so the lift is 2^7 less


@dataclass(frozen=True)
class BinaryParams:
    in1_offset: int
    in2_offset: int
    out_offset: int
    left_shift: int
    in1_multiplier: int
    in1_shift: int
    in2_multiplier: int
    in2_shift: int
    out_multiplier: int
    out_shift: int
    act_min: int
    act_max: int


def add_params(
    s1: float,
    z1: int,
    s2: float,
    z2: int,
    so: float,
    zo: int,
    lo: int = -128,
    hi: int = 127,
    left_shift: int = ADD_LEFT_SHIFT,
) -> BinaryParams:
    """ADD's parameters from the three (scale, zero point) pairs."""
    s1, s2 = np.float64(np.float32(s1)), np.float64(np.float32(s2))
    twice_max = 2.0 * max(s1, s2)
    real_out = twice_max / (float(1 << left_shift) * np.float64(np.float32(so)))
    (m1, e1), (m2, e2), (mo, eo) = (
        quantize_multiplier(r) for r in (s1 / twice_max, s2 / twice_max, real_out)
    )
    multipliers = (int(m1), int(e1), int(m2), int(e2), int(mo), int(eo))
    return BinaryParams(-int(z1), -int(z2), int(zo), left_shift, *multipliers, lo, hi)


def prepare(graph: Graph, op: Op) -> BinaryParams:
    (s1, z1), (s2, z2) = qparams(input_tensor(graph, op, 0)), qparams(input_tensor(graph, op, 1))
    so, zo = qparams(output_tensor(graph, op))
    lo, hi = common.fused_activation_range(graph, op)
    if op.kind == "ADD":
        wide = output_tensor(graph, op).dtype == "int16"
        return add_params(s1, z1, s2, z2, so, zo, lo, hi, ADD_LEFT_SHIFT_INT16 if wide else ADD_LEFT_SHIFT)
    # MUL: one requantization of the product of the centred inputs
    m, s = quantize_multiplier(np.float64(s1) * np.float64(s2) / np.float64(so))
    return BinaryParams(-z1, -z2, zo, 0, 0, 0, 0, 0, int(m), int(s), lo, hi)


def macs(graph: Graph, op: Op) -> int:
    """ADD does no multiply-accumulate worth counting; MUL one per output element."""
    return elements(output_tensor(graph, op).shape) if op.kind == "MUL" else 0


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """numpy-style broadcast of two shapes, or None if they do not broadcast."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        return None


def check(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (2,)) or checks.io_int8(graph, op, 2) or checks.activation(op)
    if problem:
        return problem
    a, b, y = input_tensor(graph, op, 0), input_tensor(graph, op, 1), output_tensor(graph, op)
    if len(a.shape) > 5 or len(b.shape) > 5:
        return "inputs of rank above 5 are not supported"
    shape = broadcast_shape(a.shape, b.shape)
    if shape is None:
        return f"input shapes {list(a.shape)} and {list(b.shape)} do not broadcast"
    if tuple(a.shape) != tuple(b.shape) and len(shape) > 4:
        return (
            "broadcasting is supported up to rank 4 (TFLite Micro's BroadcastAdd4DSlow / BroadcastMul4DSlow)"
        )
    return checks.shape_is(y, shape)


CHECKS = {"ADD": check, "MUL": check}
PREPARE = {"ADD": prepare, "MUL": prepare}
MACS = {"ADD": macs, "MUL": macs}
