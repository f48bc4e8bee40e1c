"""AVERAGE_POOL_2D and MAX_POOL_2D, int8: checks and Prepare (padding and the fused
activation's clamp; input and output share their quantization)."""

from __future__ import annotations

from dataclasses import dataclass

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks, common
from mcu_effnet.ops.common import input_tensor, output_tensor


@dataclass(frozen=True)
class PoolParams:
    f_h: int  # the window
    f_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    act_min: int
    act_max: int


def prepare(graph: Graph, op: Op) -> PoolParams:
    a = op.attrs
    return PoolParams(
        int(a["filter_height"]),
        int(a["filter_width"]),
        int(a.get("stride_h", 1)),
        int(a.get("stride_w", 1)),
        *common.op_padding(graph, op),
        *common.fused_activation_range(graph, op),
    )


def check(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (1,)) or checks.io_int8(graph, op, 1)
    if problem:
        return problem
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    if len(x.shape) != 4:
        return "input must be 4-D NHWC"
    problem = checks.window_attrs(op, False)
    if problem:
        return problem
    a = op.attrs
    for key in ("filter_height", "filter_width"):
        if not isinstance(a.get(key), int) or not 1 <= a[key] <= 4096:
            return f"{key} = {a.get(key)} (must be >= 1)"
    oh = common.conv_output_size(x.shape[1], a["filter_height"], a["stride_h"], 1, a["padding"])
    ow = common.conv_output_size(x.shape[2], a["filter_width"], a["stride_w"], 1, a["padding"])
    if oh < 1 or ow < 1:
        return "the pooling window is larger than the input"
    if abs(float(x.scale[0]) - float(y.scale[0])) > 1e-6 or int(x.zero_point[0]) != int(y.zero_point[0]):
        return "pooling needs the same scale and zero point on input and output"
    return checks.shape_is(y, (x.shape[0], oh, ow, x.shape[3]))


CHECKS = {"AVERAGE_POOL_2D": check, "MAX_POOL_2D": check}
PREPARE = {"AVERAGE_POOL_2D": prepare, "MAX_POOL_2D": prepare}
