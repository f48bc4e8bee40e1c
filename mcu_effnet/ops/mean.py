"""MEAN, int8 or 16x8: check and Prepare, as TFLite Micro's ``PrepareMeanOrSum`` for
``reference_ops::QuantizedMeanOrSum<int8_t, int32_t>``.

One int8 path for every axis set: the multiplier of ``input_scale / output_scale`` is folded
with ``1 / count`` by shifting it left by ``floor(log2(count))`` (at most 32 and at most
``31 + shift``) and integer-dividing by ``count``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks
from mcu_effnet.ops.common import elements, input_tensor, output_tensor, qparams, quantize_multiplier, refuse


@dataclass(frozen=True)
class MeanParams:
    axes: tuple[int, ...]  # resolved (no negatives, no duplicates), in the order given
    count: int  # elements summed into each output
    in_zero_point: int
    out_zero_point: int
    multiplier: int  # already folded with 1 / count
    shift: int


def resolve_axes(axes: np.ndarray, rank: int) -> tuple[int, ...]:
    """Negative axes counted from the end, duplicates dropped, order kept (ResolveAxis)."""
    resolved: list[int] = []
    for axis in np.asarray(axes, dtype=np.int64).reshape(-1):
        current = int(axis) + rank if axis < 0 else int(axis)
        if not 0 <= current < rank:
            raise ValueError(f"axis {int(axis)} is out of range for rank {rank}")
        if current not in resolved:
            resolved.append(current)
    return tuple(resolved)


def prepare(graph: Graph, op: Op) -> MeanParams:
    x, axes_t = input_tensor(graph, op, 0), input_tensor(graph, op, 1)
    if axes_t.data is None:
        raise refuse(op, "the axes input must be a constant tensor")
    shape = tuple(int(d) for d in x.shape)
    try:
        axes = resolve_axes(axes_t.data, len(shape))
    except ValueError as exc:
        raise refuse(op, str(exc)) from None
    count = elements(tuple(shape[a] for a in axes))
    in_scale, in_zp = qparams(x)
    out_scale, out_zp = qparams(output_tensor(graph, op))
    multiplier, shift = (int(v) for v in quantize_multiplier(in_scale / out_scale))
    if count > 0:
        count_shift = min(count.bit_length() - 1, 32, 31 + shift)
        multiplier = (multiplier << count_shift) // count
        shift -= count_shift
    return MeanParams(axes, count, in_zp, out_zp, multiplier, shift)


def check(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (2,)) or checks.io_int8(graph, op, 1)
    if problem:
        return problem
    axes, problem = checks.const_int32(graph, op, 1, "axes")
    if problem:
        return problem
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    rank = len(x.shape)
    if rank == 0:
        return "input must have at least one dimension"
    flat = [int(a) for a in axes.reshape(-1)]
    if any(not -rank <= a < rank for a in flat):
        return f"axes {flat} are out of range for rank {rank}"
    norm = sorted({a % rank for a in flat})
    if op.attrs.get("keep_dims"):
        expected = tuple(1 if i in norm else d for i, d in enumerate(x.shape))
    else:
        expected = tuple(d for i, d in enumerate(x.shape) if i not in norm)
    return checks.shape_is(y, expected)


CHECKS = {"MEAN": check}
PREPARE = {"MEAN": prepare}
