"""What every kernel family shares: the kernel signature and the per-op cache of Params."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import registry

# A kernel takes the graph, the op and its input arrays (aligned with op.inputs, None for an
# omitted optional input; activations batched on a leading axis N replacing the file's first
# dimension; constants as stored) and returns the output arrays aligned with op.outputs.
Kernel = Callable[[Graph, Op, list[np.ndarray | None]], list[np.ndarray]]
T = TypeVar("T")


def cached(graph: Graph, op: Op, key: str, compute: Callable[[], T]) -> T:
    """Per-op values derived from constants and quantization (Params, reshaped weights),
    computed on the first run and kept on the graph object: a loaded Graph is treated as
    immutable, as TFLite Micro treats the model after Prepare."""
    cache: dict = graph.__dict__.setdefault("_sim_cache", {})
    slot = (op.index, key)
    if slot not in cache:
        cache[slot] = compute()
    return cache[slot]


def op_params(graph: Graph, op: Op) -> Any:
    """The op's Params (``mcu_effnet.ops``), prepared once."""
    return cached(graph, op, "params", lambda: registry.prepare(graph, op))
