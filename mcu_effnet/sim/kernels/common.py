"""What every kernel family shares: the kernel signature and quantization lookups."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mcu_effnet.graph.ir import Graph, Op, Tensor

# A kernel takes the graph, the op and its input arrays (aligned with op.inputs, None for an
# omitted optional input; activations batched on a leading axis N replacing the file's first
# dimension; constants as stored) and returns the output arrays aligned with op.outputs.
Kernel = Callable[[Graph, Op, list[np.ndarray | None]], list[np.ndarray]]


def qparams(t: Tensor) -> tuple[float, int]:
    """Per-tensor (scale as float32-exact Python float, zero point) of an activation tensor."""
    return float(np.float32(t.scale[0])), int(t.zero_point[0])


def input_tensor(graph: Graph, op: Op, k: int) -> Tensor:
    return graph.tensors[op.inputs[k]]


def output_tensor(graph: Graph, op: Op, k: int = 0) -> Tensor:
    return graph.tensors[op.outputs[k]]


def batched_shape(t: Tensor, n: int) -> tuple[int, ...]:
    """The tensor's shape with its first dimension replaced by the batch size."""
    return (n, *t.shape[1:])
