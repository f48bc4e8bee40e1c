"""Standalone RELU and RELU6 on int8, as TFLite Micro's activations kernel.

RELU requantizes (input and output scales may differ): ``out_zp + MBQM(x − in_zp)`` with the
float32 ratio of the scales, clamped at the output's zero. RELU6 does not requantize at all: it
clamps the input values to [in_zp, quantized 6.0] in the input's own quantization.
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.sim.kernels.common import Kernel, cached, input_tensor, output_tensor, qparams
from mcu_effnet.sim.requantize import (
    Requantizer,
    quantize_multiplier,
    quantize_scalar_f32,
)


def _relu_plan(graph: Graph, op: Op) -> tuple[int, int, Requantizer]:
    in_scale, in_zp = qparams(input_tensor(graph, op, 0))
    out_scale, out_zp = qparams(output_tensor(graph, op))
    # CalculateReluOpData divides the scales in float32, then widens to double.
    multiplier, shift = quantize_multiplier(np.float64(np.float32(in_scale) / np.float32(out_scale)))
    return in_zp, out_zp, Requantizer.create(multiplier, shift)


def relu(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    in_zp, out_zp, requantizer = cached(graph, op, "relu", lambda: _relu_plan(graph, op))
    # the lower clamp is zp + roundf(0 / scale) = zp
    return [requantizer.to_int8(inputs[0].astype(np.int64) - in_zp, out_zp, max(-128, out_zp), 127)]


def relu6(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    in_scale, in_zp = qparams(input_tensor(graph, op, 0))
    six = min(127, max(-128, quantize_scalar_f32(6.0, in_scale, in_zp)))  # FloatToQuantizedType
    lower = in_zp
    x = inputs[0]
    # `val > upper ? upper : val < lower ? lower : val` — upper wins if the two cross.
    return [np.where(x > six, six, np.where(x < lower, lower, x)).astype(np.int8)]


KERNELS: dict[str, Kernel] = {"RELU": relu, "RELU6": relu6}
