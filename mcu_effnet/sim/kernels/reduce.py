"""REDUCE_MAX and SUM on int8, as TFLite Micro's reduce kernels.

SUM is MEAN's kernel with unfolded Params (``mcu_effnet.ops.reduce``); REDUCE_MAX takes the
largest raw code over the axes (``ReduceGeneric`` starting from -128).
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.common import input_tensor, output_tensor
from mcu_effnet.ops.reduce import ReduceMaxParams
from mcu_effnet.sim.kernels.common import Kernel, op_params
from mcu_effnet.sim.kernels.mean import mean_kernel


def reduce_max(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p: ReduceMaxParams = op_params(graph, op)
    file_shape = tuple(int(d) for d in input_tensor(graph, op, 0).shape)
    batched = inputs[0].reshape((-1, *file_shape))  # the batch axis replaces the file's first
    reduced = batched.max(axis=tuple(a + 1 for a in p.axes), keepdims=True)
    out_shape = tuple(int(d) for d in output_tensor(graph, op).shape)
    return [reduced.reshape((-1, *out_shape[1:]) if out_shape else (-1,))]


KERNELS: dict[str, Kernel] = {"SUM": mean_kernel, "REDUCE_MAX": reduce_max}
