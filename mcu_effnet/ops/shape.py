"""Ops that move int8 values without arithmetic: PAD, RESHAPE, CONCATENATION (checks, and
PAD's Prepare: TFLite Micro fills with the *output* zero point, there being no PADV2 constant)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks
from mcu_effnet.ops.common import elements, input_tensor, output_tensor, qparams, refuse


@dataclass(frozen=True)
class PadParams:
    paddings: tuple[tuple[int, int], ...]  # (before, after) per axis of the input
    pad_value: int


def prepare_pad(graph: Graph, op: Op) -> PadParams:
    pads_t = input_tensor(graph, op, 1)
    if pads_t.data is None:
        raise refuse(op, "the paddings input must be a constant tensor")
    pads = np.asarray(pads_t.data, np.int64).reshape(-1, 2)
    return PadParams(tuple((int(a), int(b)) for a, b in pads), qparams(output_tensor(graph, op))[1])


def check_pad(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (2,)) or checks.io_int8(graph, op, 1)
    if problem:
        return problem
    pads, problem = checks.const_int32(graph, op, 1, "paddings")
    if problem:
        return problem
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    if pads.shape != (len(x.shape), 2):
        return f"paddings have shape {list(pads.shape)}, expected [{len(x.shape)}, 2]"
    if np.any(pads < 0) or np.any(pads > 4096):
        return "paddings must be between 0 and 4096"
    if len(x.shape) > 5:
        return "inputs of rank above 5 are not supported"
    return checks.shape_is(y, tuple(int(d + p[0] + p[1]) for d, p in zip(x.shape, pads, strict=True)))


def check_reshape(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (1, 2)) or checks.io_int8(graph, op, 1)
    if problem:
        return problem
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    if elements(x.shape) != elements(y.shape):
        return f"cannot reshape {list(x.shape)} into {list(y.shape)}"
    return None


def check_concatenation(graph: Graph, op: Op) -> str | None:
    if len(op.outputs) != 1 or not op.inputs:
        return "needs at least one input and exactly one output"
    problem = checks.io_int8(graph, op, len(op.inputs))
    if problem:
        return problem
    if op.attrs.get("fused_activation_function", "NONE") != "NONE":
        return "a fused activation on CONCATENATION is not supported (TFLite Micro refuses it)"
    if len(op.inputs) > 10:
        return f"{len(op.inputs)} inputs, TFLite Micro takes at most 10"
    y = output_tensor(graph, op)
    for i in op.inputs:
        t = graph.tensors[i]
        if float(t.scale[0]) != float(y.scale[0]) or int(t.zero_point[0]) != int(y.zero_point[0]):
            return f"input '{t.name}' is quantized differently from the output (int8 CONCATENATION cannot rescale)"
    shapes = [graph.tensors[i].shape for i in op.inputs]
    rank = len(shapes[0])
    axis = op.attrs.get("axis", 0)
    if rank == 0 or not isinstance(axis, int) or not -rank <= axis < rank:
        return f"axis {axis} is out of range for rank {rank}"
    axis %= rank
    for s in shapes:
        if len(s) != rank or any(s[d] != shapes[0][d] for d in range(rank) if d != axis):
            return f"input shapes {[list(s) for s in shapes]} do not concatenate on axis {axis}"
    expected = list(shapes[0])
    expected[axis] = sum(s[axis] for s in shapes)
    return checks.shape_is(y, tuple(expected))


CHECKS = {"PAD": check_pad, "RESHAPE": check_reshape, "CONCATENATION": check_concatenation}
PREPARE = {"PAD": prepare_pad}
