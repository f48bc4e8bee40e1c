"""QUANTIZE from int8 to int8: TFLite Micro's ``Requantize`` with the double ratio of the scales."""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.sim.kernels.common import Kernel, cached, input_tensor, output_tensor, qparams
from mcu_effnet.sim.requantize import Requantizer, quantize_multiplier


def _plan(graph: Graph, op: Op) -> tuple[int, int, Requantizer]:
    in_scale, in_zp = qparams(input_tensor(graph, op, 0))
    out_scale, out_zp = qparams(output_tensor(graph, op))
    multiplier, shift = quantize_multiplier(np.float64(in_scale) / np.float64(out_scale))
    return in_zp, out_zp, Requantizer.create(multiplier, shift)


def quantize(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    in_zp, out_zp, requantizer = cached(graph, op, "quantize", lambda: _plan(graph, op))
    return [requantizer.to_int8(inputs[0].astype(np.int64) - in_zp, out_zp, -128, 127)]


KERNELS: dict[str, Kernel] = {"QUANTIZE": quantize}
