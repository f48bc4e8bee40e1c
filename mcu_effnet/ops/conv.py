"""CONV_2D and DEPTHWISE_CONV_2D: checks, Prepare and MAC count.

Prepare is TFLite Micro's ``CalculateOpDataConv`` / ``CalculateOpDataDepthwiseConv``: SAME
padding, per-channel multipliers and shifts (a per-tensor filter scale is broadcast to every
channel), offsets and the fused activation's clamp. It also folds the input offset into the
bias, which the engine's kernels add once instead of per tap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks, common
from mcu_effnet.ops.common import elements, input_tensor, optional_input, output_tensor, qparams


@dataclass(frozen=True)
class ConvParams:
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_left: int
    depth_multiplier: int  # 1 for CONV_2D
    in_offset: int  # −input zero point
    out_offset: int  # output zero point
    act_min: int
    act_max: int
    multiplier: np.ndarray  # per output channel, Q0.31
    shift: np.ndarray  # per output channel
    bias: np.ndarray  # per output channel, int64 (zeros when the op has none)
    folded_bias: np.ndarray  # bias + in_offset · (sum of the channel's weights), int64


def prepare(graph: Graph, op: Op) -> ConvParams:
    x, w, y = input_tensor(graph, op, 0), input_tensor(graph, op, 1), output_tensor(graph, op)
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    out_c, in_c = int(y.shape[3]), int(x.shape[3])
    in_scale, in_zp = qparams(x)
    out_scale, out_zp = qparams(y)
    w_scales = np.broadcast_to(np.asarray(w.scale, np.float32), (out_c,))
    multiplier, shift = common.conv_multipliers(in_scale, w_scales, out_scale)
    w_int = w.data.astype(np.int64)
    sums = w_int.sum(axis=(0, 1, 2)) if depthwise else w_int.reshape(out_c, -1).sum(axis=1)
    bias_t = optional_input(graph, op, 2)
    a = op.attrs
    return ConvParams(
        int(a.get("stride_h", 1)), int(a.get("stride_w", 1)),
        int(a.get("dilation_h_factor", 1)), int(a.get("dilation_w_factor", 1)),
        *common.op_padding(graph, op), out_c // in_c if depthwise else 1, -in_zp, out_zp,
        *common.fused_activation_range(graph, op), multiplier, shift,
        common.folded_bias(bias_t, out_c, sums, 0), common.folded_bias(bias_t, out_c, sums, -in_zp),
    )  # fmt: skip


def macs(graph: Graph, op: Op) -> int:
    """One multiply-accumulate per weight use."""
    _, kh, kw, c = input_tensor(graph, op, 1).shape
    per_output = kh * kw * (c if op.kind == "CONV_2D" else 1)
    return elements(output_tensor(graph, op).shape) * per_output


def check(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (2, 3)) or checks.io_int8(graph, op, 1)
    if problem:
        return problem
    x, w, y = input_tensor(graph, op, 0), input_tensor(graph, op, 1), output_tensor(graph, op)
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    if depthwise and (len(x.shape) != 4 or len(w.shape) != 4 or w.shape[0] != 1):
        return "input must be 4-D NHWC and weights 1×H×W×C"
    if len(x.shape) != 4 or len(w.shape) != 4:
        return "input and weights must be 4-D (NHWC, OHWI)"
    out_c, axis = (w.shape[3], 3) if depthwise else (w.shape[0], 0)
    problem = checks.window_attrs(op, True) or checks.weights_and_bias(graph, op, out_c, axis)
    if problem:
        return problem
    mult = op.attrs.get("depth_multiplier")
    # TFLite Micro indexes output channels with the attribute, so it must agree with the shapes.
    if depthwise and (not isinstance(mult, int) or mult < 1 or x.shape[3] * mult != w.shape[3]):
        return f"depth_multiplier {mult} does not turn {x.shape[3]} input channels into {w.shape[3]}"
    if not depthwise and (w.shape[3] == 0 or x.shape[3] % w.shape[3]):
        return f"input has {x.shape[3]} channels, weights expect {w.shape[3]}"
    if not depthwise and x.shape[3] != w.shape[3]:
        return "grouped convolution is not supported"
    a = op.attrs
    oh = common.conv_output_size(x.shape[1], w.shape[1], a["stride_h"], a["dilation_h_factor"], a["padding"])
    ow = common.conv_output_size(x.shape[2], w.shape[2], a["stride_w"], a["dilation_w_factor"], a["padding"])
    if oh < 1 or ow < 1:
        return "the filter is larger than the input"
    return checks.shape_is(y, (x.shape[0], oh, ow, out_c))


CHECKS = {"CONV_2D": check, "DEPTHWISE_CONV_2D": check}
PREPARE = {"CONV_2D": prepare, "DEPTHWISE_CONV_2D": prepare}
MACS = {"CONV_2D": macs, "DEPTHWISE_CONV_2D": macs}
