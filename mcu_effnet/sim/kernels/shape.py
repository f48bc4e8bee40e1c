"""Ops that move int8 values without arithmetic: PAD, RESHAPE, CONCATENATION (as TFLite Micro)."""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.common import output_tensor
from mcu_effnet.ops.shape import PadParams
from mcu_effnet.sim.kernels.common import Kernel, op_params


def pad(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p: PadParams = op_params(graph, op)
    widths = [(0, 0), *p.paddings[1:]]  # the batch axis is never padded
    return [np.pad(inputs[0], widths, constant_values=inputs[0].dtype.type(p.pad_value))]


def reshape(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    return [x.reshape(x.shape[0], *output_tensor(graph, op).shape[1:])]


def concatenation(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    y_t = output_tensor(graph, op)
    rank = len(y_t.shape)
    axis = op.attrs.get("axis", 0) % rank
    batch = max(
        (v.shape[0] for v, i in zip(inputs, op.inputs, strict=True) if not graph.tensors[i].is_constant),
        default=1,
    )
    parts = []
    for value, index in zip(inputs, op.inputs, strict=True):
        if graph.tensors[index].is_constant:  # stored with the file's batch of 1: repeat it per sample
            value = np.broadcast_to(value, (batch, *value.shape[1:]))
        parts.append(value)
    return [np.concatenate(parts, axis=axis)]


KERNELS: dict[str, Kernel] = {"PAD": pad, "RESHAPE": reshape, "CONCATENATION": concatenation}
