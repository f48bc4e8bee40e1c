"""What every kernel family shares: the kernel signature and quantization lookups."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from mcu_effnet.graph.ir import Graph, Op, Tensor

# A kernel takes the graph, the op and its input arrays (aligned with op.inputs, None for an
# omitted optional input; activations batched on a leading axis N replacing the file's first
# dimension; constants as stored) and returns the output arrays aligned with op.outputs.
Kernel = Callable[[Graph, Op, list[np.ndarray | None]], list[np.ndarray]]
T = TypeVar("T")


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


def cached(graph: Graph, op: Op, key: str, compute: Callable[[], T]) -> T:
    """Per-op values derived from constants and quantization (multipliers, reshaped weights),
    computed on the first run and kept on the graph object: a loaded Graph is treated as
    immutable, as TFLite Micro treats the model after Prepare."""
    cache: dict = graph.__dict__.setdefault("_sim_cache", {})
    slot = (op.index, key)
    if slot not in cache:
        cache[slot] = compute()
    return cache[slot]
