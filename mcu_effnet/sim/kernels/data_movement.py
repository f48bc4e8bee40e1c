"""SQUEEZE, EXPAND_DIMS, TRANSPOSE, SLICE, STRIDED_SLICE, PACK, UNPACK, SPLIT, SPLIT_V,
SPACE_TO_DEPTH, DEPTH_TO_SPACE: values moved as TFLite Micro moves them, bytes unchanged.

Each sample is handled as the file's tensor (its first dimension is 1), flattened: a gather
reads the flat indices its ``GatherParams`` name, a block op cuts or joins rows of blocks.
Working on flat samples keeps the batch axis out of the permutation and the slicing, so an op
that moves the file's size-1 first axis (TRANSPOSE of (1, 1, h, w) with perm 1 0 2 3) stays
right for a batch.
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.common import output_tensor
from mcu_effnet.ops.data_movement import BlockParams, GatherParams
from mcu_effnet.sim.kernels.common import Kernel, cached, op_params


def _flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


def _shaped(graph: Graph, op: Op, k: int, flat: np.ndarray) -> np.ndarray:
    return flat.reshape(flat.shape[0], *output_tensor(graph, op, k).shape[1:])


def reshape_only(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    return [_shaped(graph, op, 0, _flat(inputs[0]))]


def gather_indices(p: GatherParams) -> np.ndarray:
    """The flat input index of every output element, in the output's row-major order."""
    index = np.full((), p.start, np.int64)
    for k, (dim, stride) in enumerate(zip(p.out_dims, p.strides, strict=True)):
        axis = np.arange(dim, dtype=np.int64) * stride
        index = index[..., None] + axis.reshape((1,) * k + (dim,))
    return index.reshape(-1)


def gather(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    index = cached(graph, op, "gather", lambda: gather_indices(op_params(graph, op)))
    return [_shaped(graph, op, 0, _flat(inputs[0])[:, index])]


def pack(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p: BlockParams = op_params(graph, op)
    n = max(v.shape[0] for v in inputs)
    rows = [np.broadcast_to(_flat(v), (n, _flat(v).shape[1])).reshape(n, p.outer, -1) for v in inputs]
    return [_shaped(graph, op, 0, np.concatenate(rows, axis=2).reshape(n, -1))]


def split(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p: BlockParams = op_params(graph, op)
    data = inputs[0] if op.kind in ("SPLIT_V", "UNPACK") else inputs[1]
    rows = _flat(data).reshape(data.shape[0], p.outer, -1)
    cuts = np.cumsum(p.sizes)[:-1]
    parts = np.split(rows, cuts, axis=2)
    return [_shaped(graph, op, k, part.reshape(part.shape[0], -1)) for k, part in enumerate(parts)]


KERNELS: dict[str, Kernel] = {
    "SQUEEZE": reshape_only,
    "EXPAND_DIMS": reshape_only,
    "TRANSPOSE": gather,
    "SLICE": gather,
    "STRIDED_SLICE": gather,
    "PACK": pack,
    "UNPACK": split,
    "SPLIT": split,
    "SPLIT_V": split,
    "SPACE_TO_DEPTH": gather,
    "DEPTH_TO_SPACE": gather,
}
