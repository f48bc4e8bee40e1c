"""LOGISTIC, int8 in and out, as TFLite Micro's ``reference_integer_ops::Logistic``.

TFLite Micro computes int8 sigmoid without a lookup table: the centred input is rescaled
to Q4.27 (``mcu_effnet.ops.logistic.LogisticParams``), inputs beyond a radius saturate, the
rest go through gemmlowp's fixed-point ``logistic`` and are rounded from Q0.31 to the fixed
output scale 1/256, zero point -128.
"""

from __future__ import annotations

import functools

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.logistic import INPUT_INTEGER_BITS, LogisticParams
from mcu_effnet.ops.logistic16 import Logistic16Params, sigmoid_table
from mcu_effnet.sim import fixedpoint as fp
from mcu_effnet.sim.kernels.common import op_params
from mcu_effnet.sim.requantize import multiply_by_quantized_multiplier, rounding, rounding_mode

OUTPUT_INTEGER_BITS = 8


def logistic_int8(x: np.ndarray, params: LogisticParams) -> np.ndarray:
    centred = x.astype(np.int64) - params.in_zero_point
    # Inside the radius the left shift of MultiplyByQuantizedMultiplier cannot overflow.
    input_in_q4 = multiply_by_quantized_multiplier(centred, params.in_multiplier, params.in_left_shift)
    output_in_q0 = fp.logistic(input_in_q4, INPUT_INTEGER_BITS)
    out = np.clip(fp.rdbpot(output_in_q0, 31 - OUTPUT_INTEGER_BITS) - 128, -128, 127)
    out = np.where(centred >= params.in_range_radius, 127, out)
    out = np.where(centred <= -params.in_range_radius, -128, out)
    return out.astype(np.int8)


def logistic_kernel(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    if inputs[0].dtype == np.int16:
        return [logistic_int16(inputs[0], op_params(graph, op))]
    return [np.take(logistic_table(op_params(graph, op), rounding_mode()), inputs[0].view(np.uint8))]


@functools.lru_cache(maxsize=256)
def logistic_table(params: LogisticParams, mode: str = "double") -> np.ndarray:
    """The exact int8 result for each of the 256 inputs, indexed by the input's uint8 bit pattern.

    The output depends on the input value alone, so evaluating the fixed-point code once per
    value and looking it up is the same arithmetic at a fraction of the cost. ``mode``, the
    requantization rounding (``mcu_effnet.sim.requantize.rounding``), is part of the cache key so
    a table computed in one mode is never served in the other.
    """
    with rounding(mode):
        table = logistic_int8(np.arange(256, dtype=np.uint8).view(np.int8), params)
    table.setflags(write=False)
    return table


KERNELS = {"LOGISTIC": logistic_kernel}


def _table_input(x: np.ndarray, params: Logistic16Params) -> np.ndarray:
    """The input at the table's scale, 3 · 2^12 per unit (Prepare's multiplier or shift alone)."""
    multiplier, left_shift = params.in_multiplier, params.in_left_shift
    if multiplier == 0:  # a power-of-two input scale
        multiplier, left_shift = 3 << left_shift, 0
    half = (1 << (left_shift - 1)) if left_shift > 0 else 0
    return (x.astype(np.int64) * multiplier + half) >> left_shift


def _interpolate(magnitude: np.ndarray, step_bits: int, saturated: int) -> np.ndarray:
    """The sigmoid table at ``magnitude >> step_bits`` (in units of 2^-step_bits of an entry),
    linearly interpolated on the low ``step_bits`` bits; ``saturated`` past its last step."""
    index = magnitude >> step_bits
    table = sigmoid_table().astype(np.int64)
    safe = np.minimum(index, 254)
    lower, upper = table[safe], table[safe + 1]
    fraction = magnitude & ((1 << step_bits) - 1)
    return np.where(index < 255, (lower << step_bits) + fraction * (upper - lower), saturated)


def logistic_int16(x: np.ndarray, params: Logistic16Params) -> np.ndarray:
    """``reference_integer_ops::Logistic`` on int16: the sigmoid table interpolated on |x|."""
    value = _table_input(x, params)
    result = _interpolate(np.abs(value), 9, 0x7FFF << 10)
    result = np.where(value >= 0, result + (1 << 9), (1 << (16 + 9)) - result + (1 << 9) - 1)
    return ((result & 0xFFFFFFFF) >> 10).astype(np.uint16).view(np.int16)


def tanh_int16(x: np.ndarray, params: Logistic16Params) -> np.ndarray:
    """``reference_integer_ops::Tanh`` on int16: 2 sigmoid(2x) - 1, the same table read one
    bit finer (steps of 256 instead of 512) and recentred on zero."""
    value = _table_input(x, params)
    result = _interpolate(np.abs(value), 8, 0xFFFF << 8)
    centre, half = 1 << (14 + 9), 1 << (9 - 2)
    result = np.where(value >= 0, result - centre + half, centre - result + half - 1)
    return (result >> (9 - 1)).astype(np.int16)  # |result| < 2^23: int32 arithmetic in the C++
