"""Standalone RELU, RELU6 and QUANTIZE (int8 -> int8): checks and Prepare, as TFLite Micro's
activations and quantize kernels.

QUANTIZE requantizes with the double ratio of the scales; RELU is the same requantization with
the float32 ratio, clamped at the output's zero. RELU6 does not requantize at all: it clamps the
input values to [input zero point, quantized 6.0] in the input's own quantization.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks, common, int16, quantize_float
from mcu_effnet.ops.common import input_tensor, output_tensor, qparams


@dataclass(frozen=True)
class RequantizeParams:
    """out = clamp(out_zero_point + MultiplyByQuantizedMultiplier(x − in_zero_point), act_min, act_max)."""

    in_zero_point: int
    out_zero_point: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class ClampParams:
    lower: int
    upper: int  # wins when the two cross: `val > upper ? upper : val < lower ? lower : val`


def prepare_requantize(graph: Graph, op: Op) -> RequantizeParams:
    in_scale, in_zp = qparams(input_tensor(graph, op, 0))
    out_scale, out_zp = qparams(output_tensor(graph, op))
    if op.kind == "QUANTIZE":
        m, s = common.quantize_multiplier(np.float64(in_scale) / np.float64(out_scale))
        return RequantizeParams(in_zp, out_zp, int(m), int(s), *int16.limits(output_tensor(graph, op).dtype))
    # CalculateReluOpData divides the scales in float32, then widens to double; the lower clamp
    # is zp + roundf(0 / scale) = zp.
    m, s = common.quantize_multiplier(np.float64(np.float32(in_scale) / np.float32(out_scale)))
    return RequantizeParams(in_zp, out_zp, int(m), int(s), max(-128, out_zp), 127)


def prepare_relu6(graph: Graph, op: Op) -> ClampParams:
    scale, zp = qparams(input_tensor(graph, op, 0))
    six = min(127, max(-128, common.quantize_scalar_f32(6.0, scale, zp)))  # FloatToQuantizedType
    return ClampParams(zp, six)


def check_quantize(graph: Graph, op: Op) -> str | None:
    """A float32 input quantizes (``quantize_float``); a quantized one requantizes."""
    if quantize_float.is_float_quantize(graph, op):
        return quantize_float.check(graph, op)
    return checks.unary(graph, op)


def prepare_quantize(graph: Graph, op: Op) -> RequantizeParams | quantize_float.QuantizeFloatParams:
    if quantize_float.is_float_quantize(graph, op):
        return quantize_float.prepare(graph, op)
    return prepare_requantize(graph, op)


CHECKS = {"RELU": checks.unary, "RELU6": checks.unary, "QUANTIZE": check_quantize}
PREPARE = {"RELU": prepare_requantize, "RELU6": prepare_relu6, "QUANTIZE": prepare_quantize}
