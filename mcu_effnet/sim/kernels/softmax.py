"""SOFTMAX, int8 in and out, as TFLite Micro's ``reference_ops::Softmax<int8_t, int8_t>``.

For int8 -> int8 TFLite Micro takes gemmlowp's fixed-point path (its exp/reciprocal LUTs
are only built for int16 inputs): along the last axis, differences to the row maximum are
scaled by ``beta * input_scale`` into Q5.26 (``mcu_effnet.ops.softmax.SoftmaxParams``;
differences below ``diff_min`` count as zero), exponentiated with ``exp_on_negative_values``, summed in Q12.19, and each exp is
multiplied by the sum's fixed-point reciprocal and rounded to the output scale 1/256,
zero point -128 (both required exactly by TFLite Micro). A row whose exps sum to 512 or
more (e.g. over 512 logits tied at the maximum) trips a TFLITE_CHECK that aborts TFLite
Micro; the simulator raises a UserError there instead of inventing numbers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.softmax import SCALED_DIFF_INTEGER_BITS, SoftmaxParams
from mcu_effnet.sim import fixedpoint as fp
from mcu_effnet.sim.kernels.common import op_params
from mcu_effnet.sim.kernels.softmax16 import softmax_int16

ACCUMULATION_INTEGER_BITS = 12


@dataclass(frozen=True)
class ExpTables:
    """Per distance below the row maximum (0..255): whether it counts, exp in Q0.31, exp in Q12.19."""

    used: np.ndarray
    exp_q0: np.ndarray
    exp_accum: np.ndarray


@functools.lru_cache(maxsize=64)
def exp_tables(params: SoftmaxParams) -> ExpTables:
    """The exp of every possible int8 difference to the row maximum, computed once per op.

    Everything before the per-row reciprocal depends on that difference alone, so the
    fixed-point exp runs 256 times instead of once per element.
    """
    diff = -np.arange(256, dtype=np.int64)
    used = diff >= params.diff_min
    # MultiplyByQuantizedMultiplierGreaterThanOne; diff_min keeps the shifted value in int32.
    rescaled = fp.srdhm(fp.wrap_int32(np.where(used, diff, 0) << params.in_left_shift), params.in_multiplier)
    exp_q0 = fp.exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
    exp_accum = np.where(used, fp.rescale(exp_q0, 0, ACCUMULATION_INTEGER_BITS), 0)
    for table in (used, exp_q0, exp_accum):
        table.setflags(write=False)
    return ExpTables(used, exp_q0, exp_accum)


def softmax_int8(x: np.ndarray, params: SoftmaxParams) -> np.ndarray:
    """Softmax over the last axis of an int8 array of any rank."""
    values = x.astype(np.int16)
    below_max = values.max(axis=-1, keepdims=True) - values  # 0..255
    tables = exp_tables(params)
    used = tables.used[below_max]
    exp_q0 = tables.exp_q0[below_max]
    sum_of_exps = fp.wrap_int32(tables.exp_accum[below_max].sum(axis=-1, keepdims=True))

    # GetReciprocal: normalise the sum to [1, 2) and take 1 / (1 + x) in Q0.31.
    headroom_plus_one = fp.count_leading_zeros_u32(sum_of_exps)
    num_bits_over_unit = ACCUMULATION_INTEGER_BITS - headroom_plus_one
    shifted_sum_minus_one = fp.wrap_int32((sum_of_exps << headroom_plus_one) - (1 << 31))
    shifted_scale = fp.one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one)

    exponent = num_bits_over_unit + 31 - 8
    if np.any(exponent > 31):
        # TFLITE_CHECK(exponent <= 31) aborts TFLite Micro: a row's exps sum to 512 or more.
        raise ValueError("a row's exps sum to 512 or more (over 512 entries tie at the maximum)")
    product = fp.srdhm(shifted_scale, exp_q0)
    unsat = _rdbpot_per_row(product, exponent)
    out = np.clip(unsat - 128, -128, 127)
    return np.where(used, out, -128).astype(np.int8)


def _rdbpot_per_row(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """RoundingDivideByPOT with one exponent per row (broadcast along the last axis)."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def softmax_kernel(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    if inputs[0].dtype == np.int16:
        return [softmax_int16(inputs[0], op_params(graph, op))]
    try:
        return [softmax_int8(inputs[0], op_params(graph, op))]
    except ValueError as exc:
        raise UserError(f"op {op.index} SOFTMAX: {exc}; TFLite Micro aborts on this input") from None


KERNELS = {"SOFTMAX": softmax_kernel}
