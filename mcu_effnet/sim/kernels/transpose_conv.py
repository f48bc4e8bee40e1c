"""TRANSPOSE_CONV on int8 and 16x8, as TFLite Micro's ``reference_integer_ops::TransposeConv``.

Each input value (plus the input offset) times the weights is scattered into int32
accumulators shaped like the output, with the stride and the padding Prepare derived; the
int32 sum wraps in any order, so numpy adds whole kernel taps at once in int64 and wraps once.
Then the bias, the per-channel requantization and the clamp. 16x8: int64 scratch and bias,
the int64 ``MultiplyByQuantizedMultiplier``.
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import int16
from mcu_effnet.ops.common import input_tensor, output_tensor
from mcu_effnet.ops.transpose_conv import INPUT, WEIGHTS, TransposeConvParams
from mcu_effnet.sim.kernels.common import Kernel, op_params, requantizer
from mcu_effnet.sim.requantize import multiply_by_quantized_multiplier_int64, narrow, wrap_int32


def accumulate(
    x: np.ndarray, w: np.ndarray, p: TransposeConvParams, out_hw: tuple[int, int], wrap: bool = True
) -> np.ndarray:
    """The scratch buffer after the scatter: (N, OH, OW, OC) int64 holding int32 values
    (``wrap``), or the int64 ones of the 16x8 kernel (|sum| < 2^15 · 2^7 · taps: never wraps)."""
    n, ih, iw, _ = x.shape
    oc, kh, kw, _ = w.shape
    oh, ow = out_hw
    # Rows of the full scatter start at -pad; make room for every tap and for the whole output.
    full_h = max((ih - 1) * p.stride_h + kh, p.pad_top + oh)
    full_w = max((iw - 1) * p.stride_w + kw, p.pad_left + ow)
    acc = np.zeros((n, full_h, full_w, oc), np.int64)
    centred = x.astype(np.int64) + p.in_offset
    weights = w.astype(np.int64)
    for ky in range(kh):
        for kx in range(kw):
            contribution = centred @ weights[:, ky, kx, :].T  # (N, IH, IW, OC)
            acc[
                :,
                ky : ky + (ih - 1) * p.stride_h + 1 : p.stride_h,
                kx : kx + (iw - 1) * p.stride_w + 1 : p.stride_w,
            ] += contribution
    acc = acc[:, p.pad_top : p.pad_top + oh, p.pad_left : p.pad_left + ow]
    return wrap_int32(acc) if wrap else acc


def transpose_conv(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p: TransposeConvParams = op_params(graph, op)
    w = input_tensor(graph, op, WEIGHTS).data
    y = output_tensor(graph, op)
    wide = int16.accumulates_in_int64(graph, op)
    acc = accumulate(inputs[INPUT], w, p, (int(y.shape[1]), int(y.shape[2])), wrap=not wide)
    if wide:
        scaled = multiply_by_quantized_multiplier_int64(acc + p.bias, p.multiplier, p.shift)
        return [narrow(scaled, p.out_offset, p.act_min, p.act_max, y.dtype)]
    scale = requantizer(graph, op, p.multiplier, p.shift)
    return [scale.to_int8(wrap_int32(acc + p.bias), p.out_offset, p.act_min, p.act_max)]


KERNELS: dict[str, Kernel] = {"TRANSPOSE_CONV": transpose_conv}
