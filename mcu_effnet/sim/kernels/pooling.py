"""AVERAGE_POOL_2D and MAX_POOL_2D on int8 (TFLite Micro's reference integer pooling).

Windows are clipped to the input (padding taps do not count): the average divides the sum of
the taps inside by their number, rounding halves away from zero with C's truncating division;
the maximum ignores taps outside. Both clamp to the fused activation's range of the output.
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.common import output_tensor
from mcu_effnet.ops.pooling import PoolParams
from mcu_effnet.sim.kernels.common import Kernel, op_params, padded_windows


def _windows(x: np.ndarray, p: PoolParams, out: tuple[int, int], fill: int) -> np.ndarray:
    return padded_windows(x, fill, p, (p.f_h, p.f_w), out)


def average_pool_2d(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, p = inputs[0], op_params(graph, op)
    _, oh, ow, _ = output_tensor(graph, op).shape
    sums = _windows(x.astype(np.int32), p, (oh, ow), 0).sum(axis=(-2, -1), dtype=np.int64)
    ones = np.ones((1, *x.shape[1:3], 1), dtype=np.int32)
    counts = _windows(ones, p, (oh, ow), 0).sum(axis=(-2, -1), dtype=np.int64)
    half = counts // 2
    # C's `/` truncates toward zero: round the magnitude, then restore the sign.
    magnitude = (np.abs(sums) + half) // counts
    avg = np.where(sums > 0, magnitude, -magnitude)
    return [np.clip(avg, p.act_min, p.act_max).astype(np.int8)]


def max_pool_2d(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, p = inputs[0], op_params(graph, op)
    _, oh, ow, _ = output_tensor(graph, op).shape
    peak = _windows(x, p, (oh, ow), -128).max(axis=(-2, -1))
    return [np.clip(peak, p.act_min, p.act_max).astype(np.int8)]


KERNELS: dict[str, Kernel] = {"AVERAGE_POOL_2D": average_pool_2d, "MAX_POOL_2D": max_pool_2d}
