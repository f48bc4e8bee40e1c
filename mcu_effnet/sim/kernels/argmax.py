"""ARG_MAX on int8: the first index of the largest code along the axis, as int32 or int64."""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.argmax import ArgMaxParams
from mcu_effnet.sim.kernels.common import Kernel, op_params


def argmax(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p: ArgMaxParams = op_params(graph, op)
    # np.argmax returns the first of equal maxima, TFLite Micro's strict ">" scan too; the axis
    # is never the batch axis (the check), so the samples stack along axis 0 unchanged.
    return [np.argmax(inputs[0], axis=p.axis).astype(graph.tensors[op.outputs[0]].dtype)]


KERNELS: dict[str, Kernel] = {"ARG_MAX": argmax}
