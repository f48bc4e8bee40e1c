"""Engine handlers of the data-movement ops: their Params (``mcu_effnet.ops.data_movement``,
``mcu_effnet.ops.resize``) into ``ek_gather`` and ``ek_resize`` structs and block calls
(``ek_concatenation`` for PACK, ``ek_split``).

Kept beside the engine so its handler table only gains lines; the handlers take the engine's
builder (``engine._Builder``) as their first argument, as every handler there does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Op
from mcu_effnet.ops.data_movement import GATHER_DIMS, BlockParams, GatherParams
from mcu_effnet.ops.registry import prepare


def _elem_size(b: Any, op: Op) -> int:
    return int(np.dtype(b.graph.tensors[op.outputs[0]].dtype).itemsize)


def gather_fields(p: GatherParams, elem_size: int, what: str) -> dict[str, Any]:
    """The ``ek_gather_params`` fields: dims padded in front with 1 (stride 0) to six."""
    rank = len(p.out_dims)
    if rank > GATHER_DIMS:
        raise UserError(f"{what}: {rank} dimensions, the gather kernel takes at most {GATHER_DIMS}")
    pad = GATHER_DIMS - rank
    return dict(
        dims=[1] * pad + list(p.out_dims),
        strides=[0] * pad + list(p.strides),
        start=p.start,
        elem_size=elem_size,
    )


def _gather(b: Any, op: Op) -> None:
    fields = gather_fields(prepare(b.graph, op), _elem_size(b, op), f"op {op.index} {op.kind}")
    b.call(op, "ek_gather", b.struct(op, "ek_gather_params", fields), [op.inputs[0]])


def _block_sizes(b: Any, op: Op, p: BlockParams) -> str:
    sizes = np.array(p.sizes, np.int64) * _elem_size(b, op)
    return b.array(f"op{op.index}_sizes", "int32_t", sizes, "bytes per block of each part", public=True)


def _pack(b: Any, op: Op) -> None:
    p: BlockParams = prepare(b.graph, op)
    b.call(op, "", "", list(op.inputs), call="concat", outer=p.outer, sizes=_block_sizes(b, op, p))


def _split(b: Any, op: Op) -> None:
    p: BlockParams = prepare(b.graph, op)
    data = op.inputs[1] if op.kind == "SPLIT" else op.inputs[0]
    b.call(
        op,
        "",
        "",
        [data],
        call="split",
        outer=p.outer,
        sizes=_block_sizes(b, op, p),
        outputs=[b.ptr(t) for t in op.outputs],
    )


def _resize(b: Any, op: Op) -> None:
    n, h, w, c = (int(d) for d in b.graph.tensors[op.inputs[0]].shape)
    _, oh, ow, _ = (int(d) for d in b.graph.tensors[op.outputs[0]].shape)
    p = prepare(b.graph, op)
    nearest = op.kind == "RESIZE_NEAREST_NEIGHBOR"
    note = (
        "input {} of each output {}"
        if nearest
        else "lower, upper input {} and fraction (1/1024) per output {}"
    )
    rows = b.array(f"op{op.index}_rows", "int32_t", np.array(p.rows), note.format("row", "row"))
    cols = b.array(f"op{op.index}_cols", "int32_t", np.array(p.cols), note.format("column", "column"))
    fields = dict(
        batches=n,
        in_h=h,
        in_w=w,
        depth=c,
        out_h=oh,
        out_w=ow,
        rows=rows,
        cols=cols,
        elem_size=_elem_size(b, op),
    )
    kernel = "ek_resize_nearest" if nearest else "ek_resize_bilinear"
    b.call(op, kernel, b.struct(op, "ek_resize_params", fields), [op.inputs[0]])


def handlers(alias: Callable[[Any, Op], None]) -> dict[str, Callable[[Any, Op], None]]:
    """Op kind -> handler; ``alias`` is the engine's RESHAPE handler (no code when the planner
    aliased the op, else a copy), which SQUEEZE and EXPAND_DIMS share."""
    return {
        "SQUEEZE": alias,
        "EXPAND_DIMS": alias,
        "TRANSPOSE": _gather,
        "SLICE": _gather,
        "STRIDED_SLICE": _gather,
        "PACK": _pack,
        "UNPACK": _split,
        "SPLIT": _split,
        "SPLIT_V": _split,
        "SPACE_TO_DEPTH": _gather,
        "DEPTH_TO_SPACE": _gather,
        "RESIZE_NEAREST_NEIGHBOR": _resize,
        "RESIZE_BILINEAR": _resize,
    }
