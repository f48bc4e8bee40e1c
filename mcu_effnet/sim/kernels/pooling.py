"""AVERAGE_POOL_2D and MAX_POOL_2D on int8 (TFLite Micro's reference integer pooling).

Windows are clipped to the input (padding taps do not count): the average divides the sum of
the taps inside by their number, rounding halves away from zero with C's truncating division;
the maximum ignores taps outside. Both clamp to the fused activation's range of the output.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.graph.shapes import conv_output_size, same_padding
from mcu_effnet.sim.kernels.common import Kernel, output_tensor, qparams
from mcu_effnet.sim.requantize import activation_range


def _windows(x: np.ndarray, op: Op, fill: int) -> np.ndarray:
    """x padded with `fill` as the op's padding asks, as windows (N, OH, OW, C, FH, FW)."""
    a = op.attrs
    _, h, w, _ = x.shape
    fh, fw, sh, sw = a["filter_height"], a["filter_width"], a["stride_h"], a["stride_w"]
    oh = conv_output_size(h, fh, sh, 1, a["padding"])
    ow = conv_output_size(w, fw, sw, 1, a["padding"])
    top = same_padding(h, fh, sh, 1, oh) if a["padding"] == "SAME" else 0
    left = same_padding(w, fw, sw, 1, ow) if a["padding"] == "SAME" else 0
    bottom = max((oh - 1) * sh + fh - h - top, 0)
    right = max((ow - 1) * sw + fw - w - left, 0)
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    view = sliding_window_view(padded, (fh, fw), axis=(1, 2))
    return view[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]


def _range(graph: Graph, op: Op) -> tuple[int, int]:
    scale, zp = qparams(output_tensor(graph, op))
    return activation_range(op.attrs.get("fused_activation_function", "NONE"), scale, zp)


def average_pool_2d(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    sums = _windows(x.astype(np.int32), op, 0).sum(axis=(-2, -1), dtype=np.int64)
    ones = np.ones((1, *x.shape[1:3], 1), dtype=np.int32)
    counts = _windows(ones, op, 0).sum(axis=(-2, -1), dtype=np.int64)
    half = counts // 2
    # C's `/` truncates toward zero: round the magnitude, then restore the sign.
    magnitude = (np.abs(sums) + half) // counts
    avg = np.where(sums > 0, magnitude, -magnitude)
    lo, hi = _range(graph, op)
    return [np.clip(avg, lo, hi).astype(np.int8)]


def max_pool_2d(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    peak = _windows(x, op, -128).max(axis=(-2, -1))
    lo, hi = _range(graph, op)
    return [np.clip(peak, lo, hi).astype(np.int8)]


KERNELS: dict[str, Kernel] = {"AVERAGE_POOL_2D": average_pool_2d, "MAX_POOL_2D": max_pool_2d}
