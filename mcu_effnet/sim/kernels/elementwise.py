"""ADD and MUL on int8 with numpy broadcasting, as TFLite Micro's reference integer kernels.

ADD lifts both inputs by 2^20, scales each to 2·max(s1, s2) with a multiplier below one, sums
and rescales to the output (``AddFunc``). MUL multiplies the zero-point-corrected inputs in
int32 and requantizes once (``MulElementwise``). Both clamp to the fused activation's range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.sim.kernels.common import Kernel, cached, input_tensor, output_tensor, qparams
from mcu_effnet.sim.requantize import (
    AddParams,
    Requantizer,
    activation_range,
    add_params,
    quantize_multiplier,
    wrap_int32,
)


def _aligned(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """The two inputs as int64, a lower-rank batched activation given unit axes after its batch axis.

    In the file both shapes broadcast right-aligned; a batched activation keeps its batch axis
    in front, so its remaining axes must be pushed right to line up as they did in the file.
    Constants carry no batch axis of their own and broadcast as stored.
    """
    rank = len(output_tensor(graph, op).shape)
    aligned = []
    for k in range(2):
        value = np.asarray(inputs[k]).astype(np.int64)
        if not input_tensor(graph, op, k).is_constant and value.ndim < rank:
            value = value.reshape(value.shape[0], *([1] * (rank - value.ndim)), *value.shape[1:])
        aligned.append(value)
    return aligned[0], aligned[1]


def _activation(graph: Graph, op: Op) -> tuple[int, int, int]:
    out_scale, out_zp = qparams(output_tensor(graph, op))
    lo, hi = activation_range(op.attrs.get("fused_activation_function", "NONE"), out_scale, out_zp)
    return out_zp, lo, hi


@dataclass(frozen=True)
class _AddPlan:
    params: AddParams
    scale1: Requantizer
    scale2: Requantizer
    scale_out: Requantizer
    act_min: int
    act_max: int


def _add_plan(graph: Graph, op: Op) -> _AddPlan:
    s1, z1 = qparams(input_tensor(graph, op, 0))
    s2, z2 = qparams(input_tensor(graph, op, 1))
    out_scale, out_zp = qparams(output_tensor(graph, op))
    _, lo, hi = _activation(graph, op)
    p = add_params(s1, z1, s2, z2, out_scale, out_zp)
    # All three multipliers are below one (shift <= 0): MultiplyByQuantizedMultiplierSmallerThanOneExp
    # is then the same computation as MultiplyByQuantizedMultiplier.
    return _AddPlan(
        p,
        Requantizer.create(p.input1_multiplier, p.input1_shift),
        Requantizer.create(p.input2_multiplier, p.input2_shift),
        Requantizer.create(p.output_multiplier, p.output_shift),
        lo,
        hi,
    )


def add(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    a, b = _aligned(graph, op, inputs)
    plan = cached(graph, op, "add", lambda: _add_plan(graph, op))
    p = plan.params
    shifted1 = (a + p.input1_offset) << p.left_shift  # |x| < 2^9 · 2^20: fits int32 as in C
    shifted2 = (b + p.input2_offset) << p.left_shift
    raw_sum = wrap_int32(plan.scale1(shifted1) + plan.scale2(shifted2))
    return [plan.scale_out.to_int8(raw_sum, p.output_offset, plan.act_min, plan.act_max)]


@dataclass(frozen=True)
class _MulPlan:
    z1: int
    z2: int
    out_zp: int
    requantizer: Requantizer
    act_min: int
    act_max: int


def _mul_plan(graph: Graph, op: Op) -> _MulPlan:
    s1, z1 = qparams(input_tensor(graph, op, 0))
    s2, z2 = qparams(input_tensor(graph, op, 1))
    out_scale, out_zp = qparams(output_tensor(graph, op))
    # MUL's real multiplier: the three float32 scales widened to double, then multiplied and divided.
    multiplier, shift = quantize_multiplier(np.float64(s1) * np.float64(s2) / np.float64(out_scale))
    _, lo, hi = _activation(graph, op)
    return _MulPlan(z1, z2, out_zp, Requantizer.create(multiplier, shift), lo, hi)


def mul(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    a, b = _aligned(graph, op, inputs)
    plan = cached(graph, op, "mul", lambda: _mul_plan(graph, op))
    product = (a - plan.z1) * (b - plan.z2)  # |product| <= 2^16: the int32 product of the C code
    return [plan.requantizer.to_int8(product, plan.out_zp, plan.act_min, plan.act_max)]


KERNELS: dict[str, Kernel] = {"ADD": add, "MUL": mul}
