"""CONV_2D and DEPTHWISE_CONV_2D, as TFLite Micro's reference integer kernels compute them.

Both accumulate ``Σ (x − x_zp) · w`` over the window in int32, add the bias, requantize per
output channel with ``MultiplyByQuantizedMultiplier``, add the output zero point and clamp to
the fused activation's range. Taps outside the input contribute nothing (the reference skips
them), which is what padding ``x − x_zp`` with zeros does.

CONV_2D runs as im2col + BLAS matmul. Every product |x − zp|·|w| is at most 255·128 < 2^15
and every partial sum of K of them at most K·2^15, so a floating-point matmul is exact (its
result is the integer accumulator, whatever order BLAS sums in) while K·2^15 stays below
the mantissa: float32 up to K = 512 (2^24), float64 beyond (2^53). The batch is cut into
chunks to keep the im2col matrix under ``_CHUNK_ELEMENTS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.graph.shapes import conv_output_size, same_padding
from mcu_effnet.sim.kernels.common import Kernel, cached, input_tensor, output_tensor, qparams
from mcu_effnet.sim.requantize import Requantizer, activation_range, conv_multipliers

_CHUNK_ELEMENTS = 1 << 23  # im2col elements per chunk: 32 MB in float32, 64 MB in float64
_FLOAT32_EXACT_K = (1 << 24) // (255 * 128)  # 514


@dataclass(frozen=True)
class _Plan:
    """Everything of a conv that does not depend on the input values."""

    x_zp: int
    out_zp: int
    requantizer: Requantizer
    act_min: int
    act_max: int
    bias: np.ndarray | None  # int64
    weights: np.ndarray  # CONV_2D: (K, O) float; DEPTHWISE: (KH, KW, C, M) int32
    oh: int
    ow: int


def _plan(graph: Graph, op: Op, depthwise: bool) -> _Plan:
    x_t, w_t, y_t = input_tensor(graph, op, 0), input_tensor(graph, op, 1), output_tensor(graph, op)
    in_scale, x_zp = qparams(x_t)
    out_scale, out_zp = qparams(y_t)
    multiplier, shift = conv_multipliers(in_scale, w_t.scale, out_scale)
    act_min, act_max = activation_range(op.attrs.get("fused_activation_function", "NONE"), out_scale, out_zp)
    bias_index = op.inputs[2] if len(op.inputs) > 2 else -1
    bias = graph.tensors[bias_index].data.astype(np.int64) if bias_index >= 0 else None
    w = w_t.data
    if depthwise:
        _, kh, kw, out_c = w.shape
        in_c = x_t.shape[3]
        weights = w.reshape(kh, kw, in_c, out_c // in_c).astype(np.int32)
    else:
        out_c, kh, kw, in_c = w.shape
        k = in_c * kh * kw
        dtype = np.float32 if k <= _FLOAT32_EXACT_K else np.float64
        # (K, O) with K ordered (C, KH, KW), matching the trailing axes of the window view.
        weights = np.ascontiguousarray(w.astype(dtype).transpose(3, 1, 2, 0).reshape(k, out_c))
    a = op.attrs
    oh = conv_output_size(x_t.shape[1], kh, a["stride_h"], a["dilation_h_factor"], a["padding"])
    ow = conv_output_size(x_t.shape[2], kw, a["stride_w"], a["dilation_w_factor"], a["padding"])
    return _Plan(x_zp, out_zp, Requantizer.create(multiplier, shift), act_min, act_max, bias, weights, oh, ow)


def _padded_windows(x: np.ndarray, zp: int, op: Op, kh: int, kw: int, oh: int, ow: int, dtype) -> np.ndarray:
    """(x − zp) zero-padded as the op's padding asks, viewed as windows (N, OH, OW, C, KH, KW)."""
    a = op.attrs
    _, h, w, _ = x.shape
    sh, sw = a["stride_h"], a["stride_w"]
    dh, dw = a["dilation_h_factor"], a["dilation_w_factor"]
    eff_h, eff_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    top = same_padding(h, kh, sh, dh, oh) if a["padding"] == "SAME" else 0
    left = same_padding(w, kw, sw, dw, ow) if a["padding"] == "SAME" else 0
    bottom = max((oh - 1) * sh + eff_h - h - top, 0)
    right = max((ow - 1) * sw + eff_w - w - left, 0)
    n, _, _, c = x.shape
    # (x − zp) written into a zero canvas: the padding taps then contribute nothing.
    shifted = np.zeros((n, h + top + bottom, w + left + right, c), dtype=dtype)
    inner = shifted[:, top : top + h, left : left + w, :]
    inner[...] = x
    inner -= dtype(zp)
    windows = sliding_window_view(shifted, (eff_h, eff_w), axis=(1, 2))
    return windows[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, :, ::dh, ::dw]


def _finish(plan: _Plan, acc: np.ndarray) -> np.ndarray:
    if plan.bias is not None:
        acc += plan.bias
    return plan.requantizer.to_int8(acc, plan.out_zp, plan.act_min, plan.act_max)


def conv_2d(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    plan = cached(graph, op, "conv", lambda: _plan(graph, op, depthwise=False))
    x = inputs[0]
    k, out_c = plan.weights.shape
    _, kh, kw, _ = input_tensor(graph, op, 1).shape
    n = x.shape[0]
    chunk = max(1, _CHUNK_ELEMENTS // max(plan.oh * plan.ow * k, 1))
    acc = np.empty((n, plan.oh, plan.ow, out_c), dtype=np.int64)
    for start in range(0, n, chunk):
        part = x[start : start + chunk]
        if kh == kw == 1 and op.attrs["stride_h"] == op.attrs["stride_w"] == 1:
            cols = part.reshape(-1, k).astype(plan.weights.dtype)  # 1x1: the input is its own im2col
            cols -= plan.weights.dtype.type(plan.x_zp)
        else:
            windows = _padded_windows(part, plan.x_zp, op, kh, kw, plan.oh, plan.ow, plan.weights.dtype.type)
            cols = windows.reshape(-1, k)  # copies the strided view into the im2col matrix
        # Exact integers (see the module docstring): the cast needs no rounding.
        acc[start : start + chunk] = (cols @ plan.weights).reshape(-1, plan.oh, plan.ow, out_c)
    return [_finish(plan, acc)]


def depthwise_conv_2d(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    plan = cached(graph, op, "depthwise", lambda: _plan(graph, op, depthwise=True))
    x = inputs[0]
    kh, kw, in_c, mult = plan.weights.shape
    windows = _padded_windows(x, plan.x_zp, op, kh, kw, plan.oh, plan.ow, np.int32)
    # Output channel c·M + m reads input channel c with filter column c·M + m. One einsum over the
    # window view (N, OH, OW, C, KH, KW) sums the taps in int32, exactly like the reference
    # (|sum| <= KH·KW·255·128, far inside int32), and is faster than a loop of tap multiplies.
    acc = np.einsum("nhwcij,ijcm->nhwcm", windows, plan.weights)
    return [_finish(plan, acc.reshape(x.shape[0], plan.oh, plan.ow, in_c * mult).astype(np.int64))]


KERNELS: dict[str, Kernel] = {"CONV_2D": conv_2d, "DEPTHWISE_CONV_2D": depthwise_conv_2d}
