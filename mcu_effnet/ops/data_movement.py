"""Ops that rearrange int8 (or int16) values without arithmetic: SQUEEZE, EXPAND_DIMS, TRANSPOSE, SLICE,
STRIDED_SLICE, PACK, UNPACK, SPLIT, SPLIT_V, SPACE_TO_DEPTH, DEPTH_TO_SPACE.

TFLite Micro copies their bytes whatever the quantization of input and output, so there is
nothing to requantize; what matters is *which* element lands where, and what Prepare accepts.
Two kinds of Params describe every one of them, so one C kernel serves each kind:

- ``GatherParams``: each output element, in row-major order, reads the input at
  ``start + sum(i_k * strides_k)`` (TRANSPOSE, SLICE, STRIDED_SLICE: negative strides included;
  SPACE_TO_DEPTH and DEPTH_TO_SPACE as six-dimensional transposes);
- ``BlockParams``: ``outer`` rows of blocks, block sizes per tensor (SPLIT, SPLIT_V and UNPACK
  cut the input's rows into the outputs; PACK joins the inputs' rows into the output).

SQUEEZE and EXPAND_DIMS change only the shape: the planner aliases them like RESHAPE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op, Tensor
from mcu_effnet.ops import checks, int16
from mcu_effnet.ops.common import elements, input_tensor, optional_input, output_tensor, refuse

# TFLite Micro's limits: TRANSPOSE's Prepare takes 1-D to 5-D inputs, STRIDED_SLICE's 4-D at
# most, SLICE's reference kernel 5-D; SQUEEZE at most 8 dimensions.
MAX_TRANSPOSE_RANK = 5
MAX_STRIDED_SLICE_RANK = 4
MAX_SLICE_RANK = 5
MAX_SQUEEZE_RANK = 8
GATHER_DIMS = 6  # the C gather kernel's loop depth (a rank-5 transpose, space/depth moves)


@dataclass(frozen=True)
class GatherParams:
    """Output element (i_0, ..., i_r) reads input element ``start + sum(i_k * strides[k])``."""

    out_dims: tuple[int, ...]
    strides: tuple[int, ...]  # in elements, may be negative (STRIDED_SLICE with stride < 0)
    start: int


@dataclass(frozen=True)
class BlockParams:
    """``outer`` rows; in each row, one block per tensor of ``sizes`` elements, back to back."""

    outer: int
    sizes: tuple[int, ...]


def row_strides(shape: tuple[int, ...]) -> list[int]:
    """Elements between neighbours along each axis of a row-major tensor."""
    strides = [1] * len(shape)
    for k in range(len(shape) - 2, -1, -1):
        strides[k] = strides[k + 1] * int(shape[k + 1])
    return strides


def _int_list(t: Tensor | None) -> list[int] | None:
    if t is None or not t.is_constant or t.dtype not in ("int32", "int64"):
        return None
    return [int(v) for v in np.asarray(t.data).reshape(-1)]


def _data_io(graph: Graph, op: Op, data_inputs: list[int]) -> str | None:
    """int8 data inputs (at the given positions) and outputs, one scale and zero point each;
    int16 ones (all alike) for the ops TFLite Micro also moves as int16."""
    dtypes = int16.allowed_dtypes(op)
    first = optional_input(graph, op, data_inputs[0]) if data_inputs else None
    for k in data_inputs:
        t = optional_input(graph, op, k)
        if t is None:
            return f"input {k} is missing"
        problem = checks.quantized_int8(t, f"input {k}", dtypes)
        if problem:
            return problem
        if t.dtype != first.dtype:
            return f"input {k} '{t.name}' is {t.dtype}, input {data_inputs[0]} is {first.dtype}"
    for k, i in enumerate(op.outputs):
        problem = checks.quantized_int8(graph.tensors[i], f"output {k}", dtypes)
        if problem:
            return problem
        if first is not None and graph.tensors[i].dtype != first.dtype:
            return f"output {k} is {graph.tensors[i].dtype}, the input {first.dtype}"
    return None


# ---- SQUEEZE, EXPAND_DIMS: shape only -----------------------------------------------------------


def squeezed_shape(shape: tuple[int, ...], dims: list[int]) -> tuple[int, ...] | str:
    """SQUEEZE's output shape (all size-1 axes when ``dims`` is empty), or what is wrong."""
    rank = len(shape)
    if not dims:
        drop = {k for k, d in enumerate(shape) if d == 1}
    else:
        drop = set()
        for d in dims:
            axis = d + rank if d < 0 else d
            if not 0 <= axis < rank or shape[axis] != 1:
                return f"squeeze_dims {dims} name axis {d}, which is not of size 1 in {list(shape)}"
            drop.add(axis)
    return tuple(d for k, d in enumerate(shape) if k not in drop)


def check_squeeze(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (1,)) or _data_io(graph, op, [0])
    if problem:
        return problem
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    if len(x.shape) > MAX_SQUEEZE_RANK:
        return f"input of rank {len(x.shape)}, TFLite Micro squeezes at most rank {MAX_SQUEEZE_RANK}"
    expected = squeezed_shape(tuple(x.shape), list(op.attrs.get("squeeze_dims", []) or []))
    if isinstance(expected, str):
        return expected
    return checks.shape_is(y, expected)


def check_expand_dims(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (2,)) or _data_io(graph, op, [0])
    if problem:
        return problem
    axis_t = input_tensor(graph, op, 1)
    axis = _int_list(axis_t)
    if axis is None or axis_t.dtype != "int32" or len(axis) != 1:
        return "axis must be a constant int32 tensor of one element"
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    rank = len(x.shape)
    a = axis[0] + rank + 1 if axis[0] < 0 else axis[0]
    if not 0 <= a <= rank:
        return f"axis {axis[0]} is out of range for an input of rank {rank}"
    return checks.shape_is(y, (*x.shape[:a], 1, *x.shape[a:]))


# ---- TRANSPOSE, SLICE, STRIDED_SLICE: gathers ---------------------------------------------------


def check_transpose(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (2,)) or _data_io(graph, op, [0])
    if problem:
        return problem
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    perm_t = input_tensor(graph, op, 1)
    perm = _int_list(perm_t)
    if perm is None or perm_t.dtype != "int32":
        return "the permutation must be a constant int32 tensor"
    rank = len(x.shape)
    if not 1 <= rank <= MAX_TRANSPOSE_RANK:
        return f"input of rank {rank}; TFLite Micro transposes ranks 1 to {MAX_TRANSPOSE_RANK}"
    if sorted(perm) != list(range(rank)):
        return f"permutation {perm} is not a permutation of the {rank} input axes"
    return checks.shape_is(y, tuple(int(x.shape[p]) for p in perm))


def prepare_transpose(graph: Graph, op: Op) -> GatherParams:
    x = input_tensor(graph, op, 0)
    perm = _int_list(input_tensor(graph, op, 1)) or []
    strides = row_strides(tuple(x.shape))
    return GatherParams(tuple(int(x.shape[p]) for p in perm), tuple(strides[p] for p in perm), 0)


def _slice_vectors(graph: Graph, op: Op) -> tuple[list[int], list[int]] | str:
    x = input_tensor(graph, op, 0)
    begin_t, size_t = input_tensor(graph, op, 1), input_tensor(graph, op, 2)
    begin, size = _int_list(begin_t), _int_list(size_t)
    if begin is None or size is None or begin_t.dtype != size_t.dtype:
        return "begin and size must be constant int32 (or both int64) tensors"
    if len(begin_t.shape) != 1 or len(begin) != len(x.shape) or len(size) != len(x.shape):
        return f"begin {begin} and size {size} must have one value per input axis ({len(x.shape)})"
    return begin, size


def check_slice(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (3,)) or _data_io(graph, op, [0])
    if problem:
        return problem
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    if not 1 <= len(x.shape) <= MAX_SLICE_RANK:
        return f"input of rank {len(x.shape)}; TFLite Micro slices ranks 1 to {MAX_SLICE_RANK}"
    vectors = _slice_vectors(graph, op)
    if isinstance(vectors, str):
        return vectors
    expected = []
    for d, b, s in zip(x.shape, *vectors, strict=True):
        size = d - b if s == -1 else s
        if b < 0 or size < 0 or b + size > d:
            return f"begin {vectors[0]} with size {vectors[1]} leaves the input {list(x.shape)}"
        expected.append(size)
    return checks.shape_is(y, tuple(expected))


def prepare_slice(graph: Graph, op: Op) -> GatherParams:
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    begin, _ = _slice_vectors(graph, op)  # type: ignore[misc]
    strides = row_strides(tuple(x.shape))
    start = sum(b * s for b, s in zip(begin, strides, strict=True))
    return GatherParams(tuple(int(d) for d in y.shape), tuple(strides), start)


@dataclass(frozen=True)
class _AxisRange:
    start: int
    stop: int
    stride: int
    shrink: bool


def _clamp(v: int, lo: int, hi: int) -> int:
    return hi if v > hi else lo if v < lo else v


def _strided_ranges(graph: Graph, op: Op) -> list[_AxisRange] | str:
    """Per axis, the elements STRIDED_SLICE's Eval visits (StridedSliceStartForAxis /
    StridedSliceEndForAxis: indices wrapped once, clamped, then the masks override)."""
    x = input_tensor(graph, op, 0)
    rank = len(x.shape)
    vectors = [_int_list(input_tensor(graph, op, k)) for k in (1, 2, 3)]
    if any(v is None for v in vectors) or any(input_tensor(graph, op, k).dtype != "int32" for k in (1, 2, 3)):
        return "begin, end and strides must be constant int32 tensors"
    begin, end, strides = vectors  # type: ignore[misc]
    if not len(begin) == len(end) == len(strides) == rank:
        return f"begin, end and strides need one value per input axis ({rank})"
    a = op.attrs
    for mask in ("ellipsis_mask", "new_axis_mask"):
        if a.get(mask, 0):
            return f"{mask} = {a[mask]}; TFLite Micro ignores it, so the file means something else"
    if a.get("offset", False):
        return "offset = true is not supported by TFLite Micro"
    ranges = []
    for k in range(rank):
        size, stride = int(x.shape[k]), strides[k]
        if stride == 0:
            return f"stride of axis {k} is 0"
        shrink = bool(a.get("shrink_axis_mask", 0) >> k & 1)
        start = begin[k] + size if begin[k] < 0 else begin[k]
        start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
        if a.get("begin_mask", 0) >> k & 1:
            start = 0 if stride > 0 else size - 1
        if shrink:
            if stride < 0:  # Eval then loops from start down to start + 1: it writes nothing
                return f"shrink_axis on axis {k} with stride {stride}; TFLite Micro writes no value for it"
            if not 0 <= start < size:
                return f"shrink_axis on axis {k} starts at {begin[k]}, outside its {size} elements"
            ranges.append(_AxisRange(start, start + 1, 1, True))
            continue
        stop = end[k] + size if end[k] < 0 else end[k]
        stop = _clamp(stop, 0, size) if stride > 0 else _clamp(stop, -1, size - 1)
        if a.get("end_mask", 0) >> k & 1:
            stop = size if stride > 0 else -1
        ranges.append(_AxisRange(start, stop, stride, False))
    return ranges


def check_strided_slice(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (4,)) or _data_io(graph, op, [0])
    if problem:
        return problem
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    if not 1 <= len(x.shape) <= MAX_STRIDED_SLICE_RANK:
        return f"input of rank {len(x.shape)}; TFLite Micro slices ranks 1 to {MAX_STRIDED_SLICE_RANK}"
    ranges = _strided_ranges(graph, op)
    if isinstance(ranges, str):
        return ranges
    return checks.shape_is(y, tuple(len(range(r.start, r.stop, r.stride)) for r in ranges if not r.shrink))


def prepare_strided_slice(graph: Graph, op: Op) -> GatherParams:
    x = input_tensor(graph, op, 0)
    ranges = _strided_ranges(graph, op)
    if isinstance(ranges, str):
        raise refuse(op, ranges)
    strides = row_strides(tuple(x.shape))
    dims = tuple(len(range(r.start, r.stop, r.stride)) for r in ranges)
    start = sum(r.start * s for r, s in zip(ranges, strides, strict=True)) if elements(dims) else 0
    return GatherParams(dims, tuple(r.stride * s for r, s in zip(ranges, strides, strict=True)), start)


# ---- PACK, UNPACK, SPLIT, SPLIT_V: blocks -------------------------------------------------------


def _axis(value: int, rank: int) -> int | None:
    axis = value + rank if value < 0 else value
    return axis if 0 <= axis < rank else None


def check_pack(graph: Graph, op: Op) -> str | None:
    if len(op.outputs) != 1 or not op.inputs:
        return "needs at least one input and exactly one output"
    problem = _data_io(graph, op, list(range(len(op.inputs))))
    if problem:
        return problem
    count = op.attrs.get("values_count", 0)
    if count != len(op.inputs):
        return f"values_count = {count} for {len(op.inputs)} inputs"
    shapes = {tuple(graph.tensors[i].shape) for i in op.inputs}
    if len(shapes) != 1:
        return f"inputs have different shapes {sorted(list(s) for s in shapes)}"
    shape = shapes.pop()
    axis = _axis(int(op.attrs.get("axis", 0)), len(shape) + 1)
    if axis is None:
        return f"axis {op.attrs.get('axis')} is out of range for {len(shape) + 1} output axes"
    return checks.shape_is(output_tensor(graph, op), (*shape[:axis], len(op.inputs), *shape[axis:]))


def prepare_pack(graph: Graph, op: Op) -> BlockParams:
    y = output_tensor(graph, op)
    axis = _axis(int(op.attrs.get("axis", 0)), len(y.shape)) or 0
    return BlockParams(elements(y.shape[:axis]), (elements(y.shape[axis + 1 :]),) * len(op.inputs))


def _check_pieces(graph: Graph, op: Op, x: Tensor, axis: int, keep_axis: bool) -> str | None:
    """Outputs that cut ``x`` along ``axis`` into consecutive pieces (UNPACK: of one, dropped)."""
    total = 0
    for k, i in enumerate(op.outputs):
        shape = tuple(graph.tensors[i].shape)
        piece = shape[axis] if keep_axis and len(shape) == len(x.shape) else 1
        expected = (
            (*x.shape[:axis], piece, *x.shape[axis + 1 :])
            if keep_axis
            else (*x.shape[:axis], *x.shape[axis + 1 :])
        )
        problem = checks.shape_is(graph.tensors[i], expected, f"output {k}")
        if problem:
            return problem
        total += piece
    if total != x.shape[axis]:
        return f"outputs take {total} of the {x.shape[axis]} elements along axis {axis}"
    return None


def _split_axis(graph: Graph, op: Op, position: int) -> int | str:
    axis_t = input_tensor(graph, op, position)
    values = _int_list(axis_t)
    if values is None or axis_t.dtype != "int32" or len(values) != 1:
        return "axis must be a constant int32 tensor of one element"
    rank = len(input_tensor(graph, op, 1 if position == 0 else 0).shape)
    axis = _axis(values[0], rank)
    return f"axis {values[0]} is out of range for rank {rank}" if axis is None else axis


def check_split(graph: Graph, op: Op) -> str | None:
    if len(op.inputs) != 2 or not op.outputs:
        return f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs, expected 2 and at least 1"
    problem = _data_io(graph, op, [1])
    if problem:
        return problem
    if op.attrs.get("num_splits", 0) != len(op.outputs):
        return f"num_splits = {op.attrs.get('num_splits')} for {len(op.outputs)} outputs"
    axis = _split_axis(graph, op, 0)
    if isinstance(axis, str):
        return axis
    x = input_tensor(graph, op, 1)
    if x.shape[axis] % len(op.outputs):
        return f"axis {axis} of {list(x.shape)} does not split into {len(op.outputs)} equal parts"
    shapes = {tuple(graph.tensors[i].shape) for i in op.outputs}
    if len(shapes) != 1:
        return "outputs have different shapes"
    return _check_pieces(graph, op, x, axis, keep_axis=True)


def check_split_v(graph: Graph, op: Op) -> str | None:
    if len(op.inputs) != 3 or not op.outputs:
        return f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs, expected 3 and at least 1"
    problem = _data_io(graph, op, [0])
    if problem:
        return problem
    if op.attrs.get("num_splits", 0) != len(op.outputs):
        return f"num_splits = {op.attrs.get('num_splits')} for {len(op.outputs)} outputs"
    sizes_t = input_tensor(graph, op, 1)
    sizes = _int_list(sizes_t)
    if sizes is None or len(sizes) != len(op.outputs):
        return f"size_splits must be a constant int tensor of {len(op.outputs)} values"
    axis = _split_axis(graph, op, 2)
    if isinstance(axis, str):
        return axis
    x = input_tensor(graph, op, 0)
    for k, i in enumerate(op.outputs):
        t = graph.tensors[i]
        if len(t.shape) == len(x.shape) and sizes[k] not in (-1, t.shape[axis]):
            return f"output {k} has {t.shape[axis]} elements along axis {axis}, size_splits says {sizes[k]}"
    return _check_pieces(graph, op, x, axis, keep_axis=True)


def check_unpack(graph: Graph, op: Op) -> str | None:
    if len(op.inputs) != 1 or not op.outputs:
        return f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs, expected 1 and at least 1"
    problem = _data_io(graph, op, [0])
    if problem:
        return problem
    x = input_tensor(graph, op, 0)
    axis = _axis(int(op.attrs.get("axis", 0)), len(x.shape))
    if axis is None:
        return f"axis {op.attrs.get('axis')} is out of range for rank {len(x.shape)}"
    if op.attrs.get("num", 0) != len(op.outputs) or x.shape[axis] != len(op.outputs):
        return f"num = {op.attrs.get('num')} and {len(op.outputs)} outputs for {x.shape[axis]} elements along axis {axis}"
    return _check_pieces(graph, op, x, axis, keep_axis=False)


def _pieces(graph: Graph, op: Op, x: Tensor, axis: int) -> BlockParams:
    outer = elements(x.shape[:axis])
    sizes = tuple(elements(graph.tensors[i].shape) // outer if outer else 0 for i in op.outputs)
    return BlockParams(outer, sizes)


def prepare_split(graph: Graph, op: Op) -> BlockParams:
    axis = _split_axis(graph, op, 0)
    return _pieces(graph, op, input_tensor(graph, op, 1), int(axis))


def prepare_split_v(graph: Graph, op: Op) -> BlockParams:
    axis = _split_axis(graph, op, 2)
    return _pieces(graph, op, input_tensor(graph, op, 0), int(axis))


def prepare_unpack(graph: Graph, op: Op) -> BlockParams:
    x = input_tensor(graph, op, 0)
    axis = _axis(int(op.attrs.get("axis", 0)), len(x.shape))
    return _pieces(graph, op, x, int(axis or 0))


# ---- SPACE_TO_DEPTH, DEPTH_TO_SPACE: six-dimensional gathers -------------------------------------


def _block_size(graph: Graph, op: Op) -> int | str:
    problem = checks.arity(op, (1,)) or _data_io(graph, op, [0])
    if problem:
        return problem
    if len(input_tensor(graph, op, 0).shape) != 4:
        return f"input of rank {len(input_tensor(graph, op, 0).shape)}, expected 4 (NHWC)"
    block = op.attrs.get("block_size", 0)
    if not isinstance(block, int) or block < 1:
        return f"block_size = {block} (must be >= 1)"
    return block


def check_space_to_depth(graph: Graph, op: Op) -> str | None:
    block = _block_size(graph, op)
    if isinstance(block, str):
        return block
    n, h, w, c = input_tensor(graph, op, 0).shape
    if h % block or w % block:
        return f"input {h}x{w} is not a multiple of block_size {block}"
    return checks.shape_is(output_tensor(graph, op), (n, h // block, w // block, c * block * block))


def prepare_space_to_depth(graph: Graph, op: Op) -> GatherParams:
    """output[b, oh, ow, (i * block + j) * C + c] = input[b, oh * block + i, ow * block + j, c]:
    the output read as (N, OH, OW, block, block, C)."""
    n, h, w, c = (int(d) for d in input_tensor(graph, op, 0).shape)
    k = int(op.attrs["block_size"])
    dims = (n, h // k, w // k, k, k, c)
    return GatherParams(dims, (h * w * c, k * w * c, k * c, w * c, c, 1), 0)


def check_depth_to_space(graph: Graph, op: Op) -> str | None:
    block = _block_size(graph, op)
    if isinstance(block, str):
        return block
    n, h, w, c = input_tensor(graph, op, 0).shape
    if c % (block * block):
        return f"{c} input channels do not divide into block_size {block} squared"
    return checks.shape_is(output_tensor(graph, op), (n, h * block, w * block, c // (block * block)))


def prepare_depth_to_space(graph: Graph, op: Op) -> GatherParams:
    """output[b, ih * block + i, iw * block + j, d] = input[b, ih, iw, (i * block + j) * D + d]:
    the output read as (N, IH, block, IW, block, D)."""
    n, h, w, c = (int(d) for d in input_tensor(graph, op, 0).shape)
    k = int(op.attrs["block_size"])
    depth = c // (k * k)
    return GatherParams((n, h, k, w, k, depth), (h * w * c, w * c, k * depth, c, depth, 1), 0)


CHECKS = {
    "SQUEEZE": check_squeeze,
    "EXPAND_DIMS": check_expand_dims,
    "TRANSPOSE": check_transpose,
    "SLICE": check_slice,
    "STRIDED_SLICE": check_strided_slice,
    "PACK": check_pack,
    "UNPACK": check_unpack,
    "SPLIT": check_split,
    "SPLIT_V": check_split_v,
    "SPACE_TO_DEPTH": check_space_to_depth,
    "DEPTH_TO_SPACE": check_depth_to_space,
}
PREPARE = {
    "TRANSPOSE": prepare_transpose,
    "SLICE": prepare_slice,
    "STRIDED_SLICE": prepare_strided_slice,
    "PACK": prepare_pack,
    "UNPACK": prepare_unpack,
    "SPLIT": prepare_split,
    "SPLIT_V": prepare_split_v,
    "SPACE_TO_DEPTH": prepare_space_to_depth,
    "DEPTH_TO_SPACE": prepare_depth_to_space,
}
