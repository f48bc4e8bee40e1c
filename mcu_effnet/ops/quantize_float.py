"""QUANTIZE float32 -> int8 / int16 (a model converted with float input): checks and Prepare, as
TFLite Micro's quantize kernel (AffineQuantize).

Eval computes ``clamp(int32(round(x / (float)scale)) + zp)`` with the division in single
precision and halves rounded away from zero. The output's float32 scale is widened to double
and narrowed back, which is exact, so the divisor is the stored scale itself. TFLite Micro
leaves NaN and quotients beyond int32 undefined (a float -> int32 cast out of range); we
saturate them, as the Cortex-M FPU's conversion does, and send NaN to the zero point.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks, int16
from mcu_effnet.ops.common import input_tensor, output_tensor, qparams


@dataclass(frozen=True)
class QuantizeFloatParams:
    scale: float  # the output's float32 scale, the divisor
    zero_point: int
    out_min: int
    out_max: int


def is_float_quantize(graph: Graph, op: Op) -> bool:
    return op.kind == "QUANTIZE" and bool(op.inputs) and input_tensor(graph, op, 0).dtype == "float32"


def check(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (1,))
    if problem:
        return problem
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    if x.is_constant:
        return f"input '{x.name}' is a constant float32, expected an activation"
    problem = checks.quantized_int8(y, "output 0", int16.ACTIVATION_DTYPES)
    if problem:
        return problem
    return checks.shape_is(y, tuple(x.shape))


def prepare(graph: Graph, op: Op) -> QuantizeFloatParams:
    y = output_tensor(graph, op)
    scale, zp = qparams(y)
    return QuantizeFloatParams(float(scale), int(zp), *int16.limits(y.dtype))
