"""DEQUANTIZE (int8 -> float32): checks and Prepare, as TFLite Micro's dequantize.cc.

Prepare widens the input's float32 scale to double; Eval computes ``(float)(scale * (x - zp))``.
That product of a 24-bit mantissa and a 17-bit integer is exact in double, so the float32 result
is the correctly rounded product: a float32 multiplication gives the same bits, which lets the
C kernel stay in single precision.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks
from mcu_effnet.ops.common import input_tensor, output_tensor, qparams

INPUT_DTYPES = ("int8",)  # int16 -> float32 is not one of the 16x8 ops yet


@dataclass(frozen=True)
class DequantizeParams:
    scale: float  # the input's float32 scale (exactly representable in float32)
    zero_point: int


def check(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (1,))
    if problem:
        return problem
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    if x.dtype not in INPUT_DTYPES or x.is_constant:
        return f"input '{x.name}' is {'a constant ' if x.is_constant else ''}{x.dtype}, expected an int8 activation"
    problem = checks.quantized_int8(x, "input 0", INPUT_DTYPES)
    if problem:
        return problem
    if y.dtype != "float32":
        return f"output '{y.name}' is {y.dtype}, expected float32"
    return checks.shape_is(y, tuple(x.shape))


def prepare(graph: Graph, op: Op) -> DequantizeParams:
    scale, zp = qparams(input_tensor(graph, op, 0))
    return DequantizeParams(float(scale), int(zp))


CHECKS = {"DEQUANTIZE": check}
PREPARE = {"DEQUANTIZE": prepare}
