"""QUANTIZE from int8 to int8: TFLite Micro's ``Requantize`` with the double ratio of the scales."""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.sim.kernels.common import Kernel, input_tensor, output_tensor, qparams
from mcu_effnet.sim.requantize import multiply_by_quantized_multiplier, quantize_multiplier


def quantize(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    in_scale, in_zp = qparams(input_tensor(graph, op, 0))
    out_scale, out_zp = qparams(output_tensor(graph, op))
    multiplier, shift = quantize_multiplier(np.float64(in_scale) / np.float64(out_scale))
    y = multiply_by_quantized_multiplier(inputs[0].astype(np.int64) - in_zp, multiplier, shift) + out_zp
    return [np.clip(y, -128, 127).astype(np.int8)]


KERNELS: dict[str, Kernel] = {"QUANTIZE": quantize}
