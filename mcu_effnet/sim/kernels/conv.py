"""CONV_2D and DEPTHWISE_CONV_2D, as TFLite Micro's reference integer kernels compute them.

Both accumulate ``Σ (x − x_zp) · w`` over the window in int32, add the bias, requantize per
output channel with ``MultiplyByQuantizedMultiplier``, add the output zero point and clamp to
the fused activation's range (``mcu_effnet.ops.conv.ConvParams``). Taps outside the input
contribute nothing (the reference skips them), which is what padding ``x − x_zp`` with zeros does.

CONV_2D runs as im2col + BLAS matmul. Every product |x − zp|·|w| is at most 255·128 < 2^15
and every partial sum of K of them at most K·2^15, so a floating-point matmul is exact (its
result is the integer accumulator, whatever order BLAS sums in) while K·2^15 stays below
the mantissa: float32 up to K = 512 (2^24), float64 beyond (2^53). The batch is cut into
chunks to keep the im2col matrix under ``_CHUNK_ELEMENTS``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import int16
from mcu_effnet.ops.common import input_tensor, output_tensor
from mcu_effnet.ops.conv import ConvParams
from mcu_effnet.sim.kernels.common import Kernel, cached, op_params, padded_windows, requantizer
from mcu_effnet.sim.requantize import multiply_by_quantized_multiplier_int64, narrow, wrap_int32

_CHUNK_ELEMENTS = 1 << 23  # im2col elements per chunk: 32 MB in float32, 64 MB in float64
FLOAT32_EXACT_K = (1 << 24) // (255 * 128)  # 514


def _conv_matrix(w: np.ndarray, wide: bool = False) -> np.ndarray:
    """OHWI weights as a (K, O) float matrix, K ordered (C, KH, KW) like the window view's axes.

    ``wide``: int16 inputs, whose products reach 2^22: float64 is exact for any K we meet."""
    out_c, kh, kw, in_c = w.shape
    k = in_c * kh * kw
    dtype = np.float32 if k <= FLOAT32_EXACT_K and not wide else np.float64
    return np.ascontiguousarray(w.astype(dtype).transpose(3, 1, 2, 0).reshape(k, out_c))


def _centred_windows(x: np.ndarray, p: ConvParams, window: tuple[int, int], out: tuple[int, int], dtype):
    """(x − zp) zero-padded, as windows: the padding taps then contribute nothing."""
    centred = x.astype(dtype)
    centred += dtype(p.in_offset)
    return padded_windows(centred, 0, p, window, out, (p.dil_h, p.dil_w))


def _finish(graph: Graph, op: Op, p: ConvParams, acc: np.ndarray) -> np.ndarray:
    acc += p.bias
    return finish_accumulator(graph, op, acc, p.multiplier, p.shift, p.out_offset, p.act_min, p.act_max)


def finish_accumulator(
    graph: Graph, op: Op, acc: np.ndarray, multiplier, shift, out_offset: int, act_min: int, act_max: int
) -> np.ndarray:
    """Requantizes the exact accumulators (bias added) of a CONV / DEPTHWISE / FC, narrowed to
    the output's type. 16x8 ops with an int64 accumulator take the int64
    ``MultiplyByQuantizedMultiplier``; every other accumulator is an int32 (wrapped as in C)."""
    out_dtype = output_tensor(graph, op).dtype
    if int16.accumulates_in_int64(graph, op):
        scaled = wrap_int32(multiply_by_quantized_multiplier_int64(acc, multiplier, shift))  # int32_t result
        return narrow(scaled, out_offset, act_min, act_max, out_dtype)
    if out_dtype != "int8":
        acc = wrap_int32(acc)  # int8 accumulators cannot leave int32; 16x8 ones with an int32 bias might
    scale = requantizer(graph, op, multiplier, shift)
    return scale.to_int8(acc, out_offset, act_min, act_max, out_dtype)


def conv_2d(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    oh = output_tensor(graph, op).shape[1]
    return [conv_rows(graph, op, inputs[0], 0, 0, oh)]


def depthwise_conv_2d(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    oh = output_tensor(graph, op).shape[1]
    return [conv_rows(graph, op, inputs[0], 0, 0, oh)]


def conv_rows(graph: Graph, op: Op, x: np.ndarray, base: int, lo: int, hi: int) -> np.ndarray:
    """Output rows ``lo .. hi - 1`` of a CONV_2D or DEPTHWISE_CONV_2D from ``x``, the input's
    rows ``base ..`` (all of them: base 0). Rows outside ``x`` count as padding, so ``x`` must
    hold every input row those outputs read that lies inside the map (``mcu_effnet.graph.tiling``)."""
    p: ConvParams = op_params(graph, op)
    top = p.pad_top - lo * p.stride_h + base  # the window of output row lo starts at x's row -top
    if top < 0:
        x, top = x[:, -top:], 0
    if top != p.pad_top:
        p = replace(p, pad_top=top)
    if op.kind == "DEPTHWISE_CONV_2D":
        return _depthwise(graph, op, p, x, hi - lo)
    return _conv(graph, op, p, x, hi - lo)


def _conv(graph: Graph, op: Op, p: ConvParams, x: np.ndarray, oh: int) -> np.ndarray:
    wide = x.dtype == np.int16
    weights = cached(graph, op, "weights", lambda: _conv_matrix(input_tensor(graph, op, 1).data, wide))
    k, out_c = weights.shape
    _, kh, kw, _ = input_tensor(graph, op, 1).shape
    ow = output_tensor(graph, op).shape[2]
    n = x.shape[0]
    chunk = max(1, _CHUNK_ELEMENTS // max(oh * ow * k, 1))
    acc = np.empty((n, oh, ow, out_c), dtype=np.int64)
    for start in range(0, n, chunk):
        part = x[start : start + chunk]
        if kh == kw == 1 and p.stride_h == p.stride_w == 1 and p.pad_top == 0 and part.shape[1] == oh:
            cols = part.reshape(-1, k).astype(weights.dtype)  # 1x1: the input is its own im2col
            cols += weights.dtype.type(p.in_offset)
        else:
            windows = _centred_windows(part, p, (kh, kw), (oh, ow), weights.dtype.type)
            cols = windows.reshape(-1, k)  # copies the strided view into the im2col matrix
        # Exact integers (see the module docstring): the cast needs no rounding.
        acc[start : start + chunk] = (cols @ weights).reshape(-1, oh, ow, out_c)
    return _finish(graph, op, p, acc)


def _depthwise(graph: Graph, op: Op, p: ConvParams, x: np.ndarray, oh: int) -> np.ndarray:
    _, kh, kw, out_c = input_tensor(graph, op, 1).shape
    in_c = x.shape[3]
    acc_type = np.int64 if x.dtype == np.int16 else np.int32
    weights = cached(
        graph,
        op,
        "weights",
        lambda: input_tensor(graph, op, 1).data.reshape(kh, kw, in_c, -1).astype(acc_type),
    )
    ow = output_tensor(graph, op).shape[2]
    windows = _centred_windows(x, p, (kh, kw), (oh, ow), acc_type)
    # Output channel c·M + m reads input channel c with filter column c·M + m. One einsum over the
    # window view (N, OH, OW, C, KH, KW) sums the taps in int32, exactly like the reference
    # (|sum| <= KH·KW·255·128, far inside int32), and is faster than a loop of tap multiplies.
    # int16 inputs sum in int64, as the 16x8 reference does.
    acc = np.einsum("nhwcij,ijcm->nhwcm", windows, weights)
    return _finish(graph, op, p, acc.reshape(x.shape[0], oh, ow, out_c).astype(np.int64))


KERNELS: dict[str, Kernel] = {"CONV_2D": conv_2d, "DEPTHWISE_CONV_2D": depthwise_conv_2d}
