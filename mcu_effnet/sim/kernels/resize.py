"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR (int8 path: ``ResizeBilinearInteger``), bit-exact
with TFLite Micro, from the row and column tables of ``mcu_effnet.ops.resize``."""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.resize import BilinearParams, NearestParams
from mcu_effnet.sim.kernels.common import Kernel, op_params


def nearest(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p: NearestParams = op_params(graph, op)
    x = inputs[0]
    return [x[:, list(p.rows)][:, :, list(p.cols)]]


def bilinear(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p: BilinearParams = op_params(graph, op)
    x = inputs[0].astype(np.int64)
    y0, y1, fy = (np.array(v, np.int64) for v in zip(*p.rows, strict=True))
    x0, x1, fx = (np.array(v, np.int64) for v in zip(*p.cols, strict=True))
    fy, fx = fy[None, :, None, None], fx[None, None, :, None]
    one = 1 << 10
    total = (
        x[:, y0][:, :, x0] * (one - fy) * (one - fx)
        + x[:, y1][:, :, x0] * fy * (one - fx)
        + x[:, y0][:, :, x1] * (one - fy) * fx
        + x[:, y1][:, :, x1] * fy * fx
    )
    # round half away from zero, then C's division toward zero
    biased = total + np.where(total > 0, 1 << 19, -(1 << 19))
    out = np.sign(biased) * (np.abs(biased) >> 20)
    return [out.astype(np.int8)]


KERNELS: dict[str, Kernel] = {"RESIZE_NEAREST_NEIGHBOR": nearest, "RESIZE_BILINEAR": bilinear}
