"""TRANSPOSE_CONV, int8 or 16x8 per-channel: check, Prepare and MAC count, as TFLite Micro's transpose_conv.cc.

Inputs are (output shape, weights OHWI, input, optional bias). Prepare is CONV_2D's
``PopulateConvolutionQuantizationParams`` (per-channel multipliers on axis 0 of the weights)
and a padding computed by ``ComputePaddingHeightWidth`` from the *output's* height and width,
as if the output were the input of a convolution with the same stride. The kernel scatters
each input value times the weights into int32 accumulators the size of the output (a scratch
buffer the planner gives it), then adds the bias and requantizes. With int16 activations the
scratch accumulators and the bias are int64 and the requantization is the int64
``MultiplyByQuantizedMultiplier`` (``mcu_effnet.ops.int16``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks, common, int16
from mcu_effnet.ops.common import input_tensor, optional_input, output_tensor, qparams

OUTPUT_SHAPE, WEIGHTS, INPUT, BIAS = range(4)


@dataclass(frozen=True)
class TransposeConvParams:
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    in_offset: int  # −input zero point
    out_offset: int
    act_min: int
    act_max: int
    multiplier: np.ndarray  # per output channel
    shift: np.ndarray
    bias: np.ndarray  # int64 per output channel, zeros without a bias


def _padding(out_size: int, kernel: int, stride: int, padding: str) -> int:
    """ComputePaddingHeightWidth with the output's size in the input's place (dilation 1)."""
    conv_out = common.conv_output_size(out_size, kernel, stride, 1, padding)
    return max(((conv_out - 1) * stride + kernel - out_size) // 2, 0)


def prepare(graph: Graph, op: Op) -> TransposeConvParams:
    x, w, y = input_tensor(graph, op, INPUT), input_tensor(graph, op, WEIGHTS), output_tensor(graph, op)
    out_c = int(y.shape[3])
    in_scale, in_zp = qparams(x)
    out_scale, out_zp = qparams(y)
    w_scales = np.broadcast_to(np.asarray(w.scale, np.float32), (out_c,))
    multiplier, shift = common.conv_multipliers(in_scale, w_scales, out_scale)
    lo, hi = common.fused_activation_range(graph, op)
    a = op.attrs
    sh, sw = int(a["stride_h"]), int(a["stride_w"])
    bias_t = optional_input(graph, op, BIAS)
    bias = np.zeros(out_c, np.int64) if bias_t is None else bias_t.data.astype(np.int64).reshape(-1)
    return TransposeConvParams(
        stride_h=sh,
        stride_w=sw,
        pad_top=_padding(int(y.shape[1]), int(w.shape[1]), sh, a["padding"]),
        pad_left=_padding(int(y.shape[2]), int(w.shape[2]), sw, a["padding"]),
        in_offset=-in_zp,
        out_offset=out_zp,
        act_min=lo,
        act_max=hi,
        multiplier=multiplier,
        shift=shift,
        bias=bias,
    )


def _taps_inside(in_size: int, kernel: int, stride: int, pad: int, out_size: int) -> int:
    """(input position, kernel tap) pairs along one axis that land inside the output."""
    return sum(1 for i in range(in_size) for k in range(kernel) if 0 <= i * stride - pad + k < out_size)


def macs(graph: Graph, op: Op) -> int:
    """The scatter's multiply-accumulates: each input value times the weights of each tap that lands
    inside the output, for every output channel (taps outside are skipped before multiplying)."""
    x, w, y = input_tensor(graph, op, INPUT), input_tensor(graph, op, WEIGHTS), output_tensor(graph, op)
    p = prepare(graph, op)
    rows = _taps_inside(int(x.shape[1]), int(w.shape[1]), p.stride_h, p.pad_top, int(y.shape[1]))
    cols = _taps_inside(int(x.shape[2]), int(w.shape[2]), p.stride_w, p.pad_left, int(y.shape[2]))
    return int(x.shape[0]) * rows * cols * int(x.shape[3]) * int(w.shape[0])


def check(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (3, 4))
    if problem:
        return problem
    x, w, y = input_tensor(graph, op, INPUT), optional_input(graph, op, WEIGHTS), output_tensor(graph, op)
    dtypes = int16.allowed_dtypes(op)
    problem = checks.quantized_int8(x, "input", dtypes) or checks.quantized_int8(y, "output", dtypes)
    if problem:
        return problem
    if x.dtype != y.dtype:
        return f"output '{y.name}' is {y.dtype}, the input {x.dtype}"
    shape_t = optional_input(graph, op, OUTPUT_SHAPE)
    if shape_t is None or not shape_t.is_constant or shape_t.dtype != "int32":
        return "the output shape input must be a constant int32 tensor"
    if [int(v) for v in shape_t.data.reshape(-1)] != [int(d) for d in y.shape]:
        return f"output shape input {shape_t.data.reshape(-1).tolist()} differs from the output's {list(y.shape)}"
    if len(x.shape) != 4 or w is None or len(w.shape) != 4 or len(y.shape) != 4:
        return "input, weights and output must be 4-D (NHWC, OHWI, NHWC)"
    if w.shape[3] != x.shape[3] or w.shape[0] != y.shape[3] or x.shape[0] != y.shape[0]:
        return f"weights {list(w.shape)} do not match input {list(x.shape)} and output {list(y.shape)}"
    problem = checks.window_attrs(op, False)
    if problem:
        return problem
    if not w.is_constant or w.dtype != "int8":
        return "weights must be a constant int8 tensor"
    out_c = int(w.shape[0])
    if w.scale.size not in (1, out_c) or (w.scale.size > 1 and w.quantized_dimension != 0):
        return f"weights have {w.scale.size} scales on axis {w.quantized_dimension}, expected 1 or {out_c} on axis 0"
    if not np.all(np.isfinite(w.scale)) or np.any(w.scale <= 0) or np.any(w.zero_point != 0):
        return "weights must be symmetric with positive scales"
    b = optional_input(graph, op, BIAS)
    allowed = int16.bias_dtypes(graph, op)
    if b is not None and (not b.is_constant or b.dtype not in allowed or b.data.size != out_c):
        return f"bias must be a constant {' or '.join(allowed)} tensor of {out_c} values"
    return None


CHECKS = {"TRANSPOSE_CONV": check}
PREPARE = {"TRANSPOSE_CONV": prepare}
MACS = {"TRANSPOSE_CONV": macs}
