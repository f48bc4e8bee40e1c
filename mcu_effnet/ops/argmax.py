"""ARG_MAX over one constant axis of an int8 tensor, as TFLite Micro's arg_min_max.cc.

TFLite Micro keeps the first index of the largest value (a strict ``>`` while it scans), takes
an int32 axis and writes int32 indices only. TFLite's own default ``output_type`` is int64,
which TFLite Micro's Eval refuses; the simulator and the native engine write those too (the same
indices, as TensorFlow Lite computes them), and ``--runtime tflm`` refuses such a model. The
input's scale does not matter: the order of int8 codes is the order of the values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks
from mcu_effnet.ops.common import elements, input_tensor, output_tensor


@dataclass(frozen=True)
class ArgMaxParams:
    outer: int  # elements before the axis
    axis_size: int
    inner: int  # elements after the axis
    axis: int  # the axis, counted from 0 in the model's shape


def _axis(graph: Graph, op: Op) -> int | str:
    x, a = input_tensor(graph, op, 0), input_tensor(graph, op, 1)
    if not a.is_constant or a.dtype != "int32" or a.data is None or np.asarray(a.data).size != 1:
        return f"axis '{a.name}' must be one constant int32 (TFLite Micro takes no other)"
    axis = int(np.asarray(a.data).reshape(-1)[0])
    rank = len(x.shape)
    if not -rank <= axis < rank:
        return f"axis {axis} is outside a rank-{rank} input"
    return axis + rank if axis < 0 else axis


def check(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (2,))
    if problem:
        return problem
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    problem = checks.quantized_int8(x, "input 0")
    if problem:
        return problem
    if y.dtype not in ("int32", "int64"):
        return f"output '{y.name}' is {y.dtype}; ARG_MAX writes int32 or int64 indices"
    axis = _axis(graph, op)
    if isinstance(axis, str):
        return axis
    if axis == 0:
        return "axis 0 is the batch axis; the simulator and the engine take ARG_MAX over another axis"
    return checks.shape_is(y, tuple(d for k, d in enumerate(x.shape) if k != axis))


def prepare(graph: Graph, op: Op) -> ArgMaxParams:
    shape = input_tensor(graph, op, 0).shape
    axis = _axis(graph, op)
    assert isinstance(axis, int)  # the check ran at load
    return ArgMaxParams(elements(shape[:axis]), int(shape[axis]), elements(shape[axis + 1 :]), axis)


CHECKS = {"ARG_MAX": check}
PREPARE = {"ARG_MAX": prepare}
