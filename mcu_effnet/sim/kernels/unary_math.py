"""LEAKY_RELU (int8 and int16) and TANH on int8, as TFLite Micro's ``QuantizeLeakyRelu`` and ``reference_integer_ops::Tanh``
(TANH on int16 interpolates LOGISTIC's table: ``mcu_effnet.sim.kernels.logistic.tanh_int16``).

Both outputs depend on the input value alone, so each op is evaluated once on the 256 int8
(65536 int16) values and looked up (``mcu_effnet.ops.unary_math`` documents the parameters).
"""

from __future__ import annotations

import functools

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.logistic import INPUT_INTEGER_BITS, LogisticParams
from mcu_effnet.ops.unary_math import LeakyReluParams
from mcu_effnet.sim import fixedpoint as fp
from mcu_effnet.sim.kernels.common import Kernel, op_params
from mcu_effnet.sim.kernels.logistic import tanh_int16
from mcu_effnet.sim.requantize import multiply_by_quantized_multiplier, rounding, rounding_mode, wrap_int32

TANH_OUTPUT_BITS = 7  # the output scale is 2^-7


def leaky_relu_int8(x: np.ndarray, p: LeakyReluParams) -> np.ndarray:
    """``QuantizeLeakyRelu`` on int8 or int16 ``x`` (the output has x's type)."""
    centred = x.astype(np.int64) - p.in_zero_point
    identity = multiply_by_quantized_multiplier(centred, p.identity_multiplier, p.identity_shift)
    # The kernel multiplies by |alpha multiplier| and negates the result for a negative alpha.
    magnitude = multiply_by_quantized_multiplier(centred, abs(p.alpha_multiplier), p.alpha_shift)
    scaled = -magnitude if p.alpha_multiplier < 0 else magnitude
    out = p.out_zero_point + np.where(centred >= 0, identity, scaled)
    info = np.iinfo(x.dtype)
    return np.clip(out, int(info.min), int(info.max)).astype(x.dtype)


def _one_minus_x_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """gemmlowp's (1 − a) / (1 + a) for a in Q0.31 in [0, 1): Newton-Raphson in Q2.29."""
    half_denominator = fp.rounding_half_sum(a, fp.INT32_MAX)
    x = wrap_int32(1515870810 + fp.srdhm(half_denominator, -1010580540))  # 48/17 − 32/17 · d
    one_q2 = 1 << 29
    for _ in range(3):
        one_minus = wrap_int32(one_q2 - fp.srdhm(half_denominator, x))
        x = wrap_int32(x + fp.rescale(fp.srdhm(x, one_minus), 4, 2))
    return fp.rescale(wrap_int32(x - one_q2), 2, 0)


def tanh_fixed(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp tanh: FixedPoint<int32, integer_bits> -> Q0.31.

    −|a| is doubled by reinterpreting it with one more integer bit (``ExactMulByPot<1>``),
    so exp sees the same raw value."""
    a = fp.as_i64(a)
    negative = a < 0
    n = np.where(negative, a, wrap_int32(-a))
    t = _one_minus_x_over_one_plus_x(fp.exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, wrap_int32(-t), t))


def tanh_int8(x: np.ndarray, p: LogisticParams) -> np.ndarray:
    centred = x.astype(np.int64) - p.in_zero_point
    in_q4 = multiply_by_quantized_multiplier(centred, p.in_multiplier, p.in_left_shift)
    out = np.clip(fp.rdbpot(tanh_fixed(in_q4, INPUT_INTEGER_BITS), 31 - TANH_OUTPUT_BITS), -128, 127)
    out = np.where(centred >= p.in_range_radius, 127, out)
    out = np.where(centred <= -p.in_range_radius, -128, out)
    return out.astype(np.int8)


@functools.lru_cache(maxsize=256)
def _table(kind: str, params: LeakyReluParams | LogisticParams, mode: str, dtype: str = "int8") -> np.ndarray:
    """The output of each of the 256 int8 (65536 int16) inputs, indexed by the input's unsigned
    bit pattern; ``mode`` (the requantization rounding) is part of the key."""
    unsigned = np.uint8 if dtype == "int8" else np.uint16
    values = np.arange(np.iinfo(unsigned).max + 1, dtype=np.int64).astype(unsigned).view(dtype)
    with rounding(mode):
        table = leaky_relu_int8(values, params) if kind == "LEAKY_RELU" else tanh_int8(values, params)
    table.setflags(write=False)
    return table


def table_kernel(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = inputs[0]
    if op.kind == "TANH" and x.dtype == np.int16:
        return [tanh_int16(x, op_params(graph, op))]  # LOGISTIC's interpolated table
    table = _table(op.kind, op_params(graph, op), rounding_mode(), x.dtype.name)
    return [np.take(table, x.view(np.uint8 if x.dtype == np.int8 else np.uint16))]


KERNELS: dict[str, Kernel] = {"LEAKY_RELU": table_kernel, "TANH": table_kernel}
