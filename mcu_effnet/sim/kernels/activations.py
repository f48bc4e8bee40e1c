"""Standalone RELU, RELU6 and QUANTIZE on int8, as TFLite Micro's activations and quantize kernels.

QUANTIZE and RELU requantize: ``clamp(out_zp + MBQM(x − in_zp))``; RELU6 clamps the input
values to [in_zp, quantized 6.0] (``mcu_effnet.ops.activations``).
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.activations import ClampParams, RequantizeParams
from mcu_effnet.ops.common import output_tensor
from mcu_effnet.ops.quantize_float import QuantizeFloatParams
from mcu_effnet.sim.kernels.common import Kernel, op_params, requantizer


def requantize(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p: RequantizeParams = op_params(graph, op)
    scale = requantizer(graph, op, p.multiplier, p.shift)
    x = inputs[0].astype(np.int64) - p.in_zero_point
    return [scale.to_int8(x, p.out_zero_point, p.act_min, p.act_max, output_tensor(graph, op).dtype)]


def quantize(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p = op_params(graph, op)
    if isinstance(p, QuantizeFloatParams):
        return [quantize_float32(inputs[0], p).astype(output_tensor(graph, op).dtype)]
    return requantize(graph, op, inputs)


def quantize_float32(x: np.ndarray, p: QuantizeFloatParams) -> np.ndarray:
    """AffineQuantize: the float32 quotient, rounded half away from zero (roundf), plus the zero
    point, clamped. Saturating before the integer conversion gives the same result wherever
    TFLite Micro's cast is defined and keeps NaN (-> zero point) and infinities defined."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        q = np.asarray(x, np.float32) / np.float32(p.scale)
        # roundf: halves away from zero. |q| + 0.5 is exact in double, so floor gives roundf's result.
        a = np.abs(q.astype(np.float64))
        r = np.copysign(np.floor(a + 0.5), q)
    r = np.where(np.isnan(r), 0, np.clip(r, p.out_min - p.zero_point, p.out_max - p.zero_point))
    return (r.astype(np.int64) + p.zero_point).astype(np.int64)


def relu6(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p: ClampParams = op_params(graph, op)
    x = inputs[0]
    # `val > upper ? upper : val < lower ? lower : val` — upper wins if the two cross.
    return [np.where(x > p.upper, p.upper, np.where(x < p.lower, p.lower, x)).astype(np.int8)]


KERNELS: dict[str, Kernel] = {"RELU": requantize, "RELU6": relu6, "QUANTIZE": quantize}
