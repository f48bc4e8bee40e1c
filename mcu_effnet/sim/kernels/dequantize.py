"""DEQUANTIZE int8 / int16 -> float32 as TFLite Micro: ``(float)((double)scale * (x - zp))``."""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.dequantize import DequantizeParams
from mcu_effnet.sim.kernels.common import Kernel, op_params


def dequantize(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p: DequantizeParams = op_params(graph, op)
    centred = inputs[0].astype(np.int64) - p.zero_point
    return [(np.float64(np.float32(p.scale)) * centred).astype(np.float32)]


KERNELS: dict[str, Kernel] = {"DEQUANTIZE": dequantize}
