"""REDUCE_MAX and SUM, int8: checks and Prepare, as TFLite Micro's reduce_common.cc.

SUM shares MEAN's arithmetic (``QuantizedMeanOrSum`` with ``compute_sum``): int32 sums less
``zero_point · count``, then ``MultiplyByQuantizedMultiplier`` with the double ratio of the
scales, not folded with ``1 / count``; so its Params are MEAN's (``mcu_effnet.ops.mean``).
REDUCE_MAX compares raw codes, and TFLite Micro's Eval refuses an int8 output whose scale or
zero point differs from the input's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import mean
from mcu_effnet.ops.common import elements, input_tensor, output_tensor, qparams, quantize_multiplier, refuse
from mcu_effnet.ops.mean import MeanParams


def _axes(graph: Graph, op: Op) -> tuple[int, ...]:
    x, axes_t = input_tensor(graph, op, 0), input_tensor(graph, op, 1)
    if axes_t.data is None:
        raise refuse(op, "the axes input must be a constant tensor")
    try:
        return mean.resolve_axes(axes_t.data, len(x.shape))
    except ValueError as exc:
        raise refuse(op, str(exc)) from None


def prepare_sum(graph: Graph, op: Op) -> MeanParams:
    x = input_tensor(graph, op, 0)
    axes = _axes(graph, op)
    count = elements(tuple(int(x.shape[a]) for a in axes))
    in_scale, in_zp = qparams(x)
    out_scale, out_zp = qparams(output_tensor(graph, op))
    multiplier, shift = (int(v) for v in quantize_multiplier(np.float64(in_scale) / np.float64(out_scale)))
    return MeanParams(axes, count, in_zp, out_zp, multiplier, shift)


@dataclass(frozen=True)
class ReduceMaxParams:
    axes: tuple[int, ...]  # resolved, as MEAN's


def prepare_reduce_max(graph: Graph, op: Op) -> ReduceMaxParams:
    return ReduceMaxParams(_axes(graph, op))


def check_reduce_max(graph: Graph, op: Op) -> str | None:
    problem = mean.check(graph, op)
    if problem:
        return problem
    (si, zi), (so, zo) = qparams(input_tensor(graph, op, 0)), qparams(output_tensor(graph, op))
    if si != so or zi != zo:
        return f"output quantization ({so:g}, {zo}) differs from the input's ({si:g}, {zi}); TFLite Micro refuses it"
    return None


CHECKS = {"SUM": mean.check, "REDUCE_MAX": check_reduce_max}
PREPARE = {"SUM": prepare_sum, "REDUCE_MAX": prepare_reduce_max}
