"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR on int8 NHWC, as TFLite Micro's reference kernels.

Both pick input rows and columns from the output position alone, so Prepare here turns the
position arithmetic into per-row and per-column tables once:

- nearest neighbour: ``GetNearestNeighbor`` in float32 (``(y + offset) * scale``, floored, or
  rounded half away from zero with ``align_corners``), clamped to the input;
- bilinear, int8 path (``ResizeBilinearInteger``): no floating point at all; scales in Q10
  (``(1024 * in + out / 2) / out``), each row and column as (lower, upper, fraction in 1/1024),
  and the kernel rounds the Q20 sum half away from zero.

Neither rescales: TFLite Micro interpolates the stored codes whatever the output quantization.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks
from mcu_effnet.ops.common import input_tensor, output_tensor, refuse, round_half_away


@dataclass(frozen=True)
class NearestParams:
    rows: tuple[int, ...]  # input row of each output row
    cols: tuple[int, ...]  # input column of each output column


@dataclass(frozen=True)
class BilinearParams:
    rows: tuple[tuple[int, int, int], ...]  # per output row: lower, upper input row, fraction (Q10)
    cols: tuple[tuple[int, int, int], ...]  # per output column: the same


def nearest_indices(in_size: int, out_size: int, align_corners: bool, half_pixel: bool) -> list[int]:
    """``GetNearestNeighbor`` for every output index, in float32 as the C++ evaluates it."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel else f32(0.0)
    out = []
    for v in range(out_size):
        scaled = (f32(v) + offset) * scale
        value = int(round_half_away(np.float64(scaled))) if align_corners else int(np.floor(scaled))
        value = min(value, in_size - 1)
        out.append(max(0, value) if half_pixel else value)
    return out


def c_div(a: int, b: int) -> int:
    """C's integer division (toward zero) for b > 0."""
    return a // b if a >= 0 else -(-a // b)


def bilinear_axis(
    in_size: int, out_size: int, align_corners: bool, half_pixel: bool
) -> list[tuple[int, int, int]]:
    """``ComputeInterpolationValuesInteger`` for every output index: (lower, upper, scaled - 1024 * lower)."""
    scale = ((1 << 10) * in_size + out_size // 2) // out_size
    if align_corners and out_size > 1:
        scale = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    out = []
    for v in range(out_size):
        scaled = v * scale + scale // 2 - (1 << 9) if half_pixel else v * scale
        lower = max(c_div(scaled, 1 << 10), 0)
        upper = min(c_div(scaled + (1 << 10) - 1, 1 << 10), in_size - 1)
        out.append((lower, upper, scaled - (1 << 10) * lower))
    return out


def _check(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (2,)) or checks.io_int8(graph, op, 1)
    if problem:
        return problem
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    if len(x.shape) != 4:
        return f"input of rank {len(x.shape)}, expected 4 (NHWC)"
    size_t = input_tensor(graph, op, 1)
    if not size_t.is_constant or size_t.dtype != "int32" or size_t.data.size != 2 or len(size_t.shape) != 1:
        return "size must be a constant int32 tensor of two values (height, width)"
    h, w = (int(v) for v in size_t.data.reshape(-1))
    if h < 1 or w < 1:
        return f"size {h}x{w} is empty"
    return checks.shape_is(y, (x.shape[0], h, w, x.shape[3]))


def check_nearest(graph: Graph, op: Op) -> str | None:
    return _check(graph, op)


def prepare_nearest(graph: Graph, op: Op) -> NearestParams:
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    align, half = bool(op.attrs.get("align_corners")), bool(op.attrs.get("half_pixel_centers"))
    return NearestParams(
        tuple(nearest_indices(int(x.shape[1]), int(y.shape[1]), align, half)),
        tuple(nearest_indices(int(x.shape[2]), int(y.shape[2]), align, half)),
    )


def _bilinear(graph: Graph, op: Op) -> BilinearParams | str:
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    align, half = bool(op.attrs.get("align_corners")), bool(op.attrs.get("half_pixel_centers"))
    if align and half:
        return "align_corners and half_pixel_centers are both set (TFLite Micro refuses it)"
    rows = bilinear_axis(int(x.shape[1]), int(y.shape[1]), align, half)
    cols = bilinear_axis(int(x.shape[2]), int(y.shape[2]), align, half)
    for what, table, size in (("row", rows, x.shape[1]), ("column", cols, x.shape[2])):
        if any(lower >= size for lower, _, _ in table):
            # the Q10 scale rounds up enough that TFLite Micro would read past the input
            return f"upsampling {size} to {len(table)} per {what} reads past the input in TFLite Micro's integer kernel"
    return BilinearParams(tuple(rows), tuple(cols))


def check_bilinear(graph: Graph, op: Op) -> str | None:
    problem = _check(graph, op)
    if problem:
        return problem
    params = _bilinear(graph, op)
    return params if isinstance(params, str) else None


def prepare_bilinear(graph: Graph, op: Op) -> BilinearParams:
    params = _bilinear(graph, op)
    if isinstance(params, str):
        raise refuse(op, params)
    return params


CHECKS = {"RESIZE_NEAREST_NEIGHBOR": check_nearest, "RESIZE_BILINEAR": check_bilinear}
PREPARE = {"RESIZE_NEAREST_NEIGHBOR": prepare_nearest, "RESIZE_BILINEAR": prepare_bilinear}
