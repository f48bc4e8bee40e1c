"""CONV_2D and DEPTHWISE_CONV_2D, as TFLite Micro's reference integer kernels compute them.

Both accumulate ``Σ (x − x_zp) · w`` over the window in int32, add the bias, requantize per
output channel with ``MultiplyByQuantizedMultiplier``, add the output zero point and clamp to
the fused activation's range. Taps outside the input contribute nothing (the reference skips
them), which is what padding ``x − x_zp`` with zeros does.

CONV_2D runs as im2col + float64 matmul: products of int8 by (int8 − zp) are below 2^15 and
sums of fewer than 2^38 of them are exact in a double, so BLAS gives the int32 accumulator
exactly. The batch is cut into chunks to keep the im2col matrix under ``_CHUNK_ELEMENTS``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.graph.shapes import conv_output_size, same_padding
from mcu_effnet.sim.kernels.common import Kernel, input_tensor, output_tensor, qparams
from mcu_effnet.sim.requantize import activation_range, conv_multipliers, requantize_to_int8

_CHUNK_ELEMENTS = 1 << 23  # im2col doubles per chunk: 64 MB


def _padded_windows(x: np.ndarray, zp: int, op: Op, kh: int, kw: int, dtype) -> tuple[np.ndarray, int, int]:
    """(x − zp) zero-padded as the op's padding asks, viewed as windows (N, OH, OW, C, KH, KW)."""
    a = op.attrs
    n, h, w, c = x.shape
    sh, sw = a["stride_h"], a["stride_w"]
    dh, dw = a["dilation_h_factor"], a["dilation_w_factor"]
    oh = conv_output_size(h, kh, sh, dh, a["padding"])
    ow = conv_output_size(w, kw, sw, dw, a["padding"])
    eff_h, eff_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    top = same_padding(h, kh, sh, dh, oh) if a["padding"] == "SAME" else 0
    left = same_padding(w, kw, sw, dw, ow) if a["padding"] == "SAME" else 0
    bottom = max((oh - 1) * sh + eff_h - h - top, 0)
    right = max((ow - 1) * sw + eff_w - w - left, 0)
    shifted = x.astype(dtype) - dtype(zp)
    padded = np.pad(shifted, ((0, 0), (top, bottom), (left, right), (0, 0)))
    windows = sliding_window_view(padded, (eff_h, eff_w), axis=(1, 2))
    windows = windows[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, :, ::dh, ::dw]
    return windows, oh, ow


def _requantize(graph: Graph, op: Op, acc: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    x_t, w_t, y_t = input_tensor(graph, op, 0), input_tensor(graph, op, 1), output_tensor(graph, op)
    in_scale, _ = qparams(x_t)
    out_scale, out_zp = qparams(y_t)
    multiplier, shift = conv_multipliers(in_scale, w_t.scale, out_scale)
    act_min, act_max = activation_range(op.attrs.get("fused_activation_function", "NONE"), out_scale, out_zp)
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    return requantize_to_int8(acc, multiplier, shift, out_zp, act_min, act_max)


def conv_2d(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    _, x_zp = qparams(input_tensor(graph, op, 0))
    out_c, kh, kw, in_c = w.shape
    # Weights as (K, O) with K ordered (C, KH, KW) to match the window view's trailing axes.
    w_mat = w.astype(np.float64).transpose(3, 1, 2, 0).reshape(in_c * kh * kw, out_c)
    n = x.shape[0]
    k = in_c * kh * kw
    a = op.attrs
    oh = conv_output_size(x.shape[1], kh, a["stride_h"], a["dilation_h_factor"], a["padding"])
    ow = conv_output_size(x.shape[2], kw, a["stride_w"], a["dilation_w_factor"], a["padding"])
    per_sample = oh * ow * k
    chunk = max(1, _CHUNK_ELEMENTS // max(per_sample, 1))
    acc = np.empty((n, oh, ow, out_c), dtype=np.int64)
    for start in range(0, n, chunk):
        windows, _, _ = _padded_windows(x[start : start + chunk], x_zp, op, kh, kw, np.float64)
        cols = windows.reshape(-1, k)  # copies the strided view into the im2col matrix
        acc[start : start + chunk] = np.rint(cols @ w_mat).astype(np.int64).reshape(-1, oh, ow, out_c)
    return [_requantize(graph, op, acc, bias)]


def depthwise_conv_2d(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    _, x_zp = qparams(input_tensor(graph, op, 0))
    _, kh, kw, out_c = w.shape
    in_c = x.shape[3]
    mult = out_c // in_c
    windows, oh, ow = _padded_windows(x, x_zp, op, kh, kw, np.int32)
    # Output channel c·M + m reads input channel c with filter column c·M + m: one tap at a time,
    # each a broadcast multiply over (N, OH, OW, C, M), exact in int32 like the reference.
    w_taps = w.reshape(kh, kw, in_c, mult).astype(np.int32)
    acc = np.zeros((x.shape[0], oh, ow, in_c, mult), dtype=np.int32)
    for i in range(kh):
        for j in range(kw):
            acc += windows[..., i, j][..., None] * w_taps[i, j]
    return [_requantize(graph, op, acc.reshape(x.shape[0], oh, ow, out_c).astype(np.int64), bias)]


KERNELS: dict[str, Kernel] = {"CONV_2D": conv_2d, "DEPTHWISE_CONV_2D": depthwise_conv_2d}
