"""gemmlowp-style fixed-point arithmetic, vectorised over numpy arrays.

TFLite Micro's LOGISTIC, SOFTMAX and HARD_SWISH kernels compute with gemmlowp's
``FixedPoint<int32_t, IntegerBits>`` (and a few int16 helpers). Each function here
reproduces one of those operations element-wise. Values are carried as ``int64`` arrays
holding int32 (or int16) raw values, and every place where C++ would wrap around
(plain int32 ``+``, ``-``, ``<<``) wraps here too, so results match bit for bit even on
the edge cases the reference code does not guard.

A ``FixedPoint<int32, m>`` raw value ``r`` stands for ``r / 2^(31 - m)``.
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.sim.requantize import (
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    wrap_int32,
)

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT16_MIN = -(1 << 15)
INT16_MAX = (1 << 15) - 1

# Barrel-shifter constants of exp_on_negative_values: exp(-2^k) in Q0.31, for k = -2..4.
_EXP_BARREL = (
    (-2, 1672461947),
    (-1, 1302514674),
    (0, 790015084),
    (1, 290630308),
    (2, 39332535),
    (3, 720401),
    (4, 242),
)


def as_i64(x: np.ndarray | int) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap_int16(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to int16 (int16_t results of int arithmetic in the C++)."""
    return ((as_i64(x) + (1 << 15)) & 0xFFFF) - (1 << 15)


def srdhm(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """FixedPoint multiplication (raw SaturatingRoundingDoublingHighMul on int32)."""
    return as_i64(saturating_rounding_doubling_high_mul(as_i64(a), as_i64(b)))


def rdbpot(x: np.ndarray, exponent: int) -> np.ndarray:
    """int32 RoundingDivideByPOT (round half away from zero)."""
    return as_i64(rounding_divide_by_pot(as_i64(x), exponent))


def saturating_rounding_multiply_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> on int32 raw values."""
    x = as_i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    shifted = wrap_int32(x << exponent)
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, shifted))


def rescale(x: np.ndarray, src_integer_bits: int, dst_integer_bits: int) -> np.ndarray:
    """gemmlowp Rescale<dst>(FixedPoint<int32, src>)."""
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


def rounding_half_sum(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """(a + b) / 2 rounded half away from zero; C division truncates toward zero."""
    total = as_i64(a) + as_i64(b)
    nudged = total + np.where(total >= 0, 1, -1)
    return np.where(nudged >= 0, nudged // 2, -((-nudged) // 2))


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """exp(a) for a in [-1/4, 0) in Q0.31: Taylor expansion around -1/8."""
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = wrap_int32(a + (1 << 28))  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(wrap_int32(srdhm(wrap_int32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return wrap_int32(constant_term + srdhm(constant_term, wrap_int32(x + poly)))


def exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: FixedPoint<int32, integer_bits> (a <= 0) -> Q0.31."""
    a = as_i64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = wrap_int32((a & (one_quarter - 1)) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0)
    )
    remainder = wrap_int32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0, srdhm(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)  # exp(x < -32) is 0
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp 1 / (1 + a) for a in Q0.31 in [0, 1): three Newton-Raphson steps in Q2.29."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    constant_48_over_17 = 1515870810
    constant_neg_32_over_17 = -1010580540
    one_q2 = 1 << 29
    x = wrap_int32(constant_48_over_17 + srdhm(half_denominator, constant_neg_32_over_17))
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = wrap_int32(one_q2 - half_denominator_times_x)
        x = wrap_int32(x + rescale(srdhm(x, one_minus), 4, 2))
    # ExactMulByPot<-1> turns Q2.29 into Q1.30 with the same raw value; then Rescale<0>.
    return rescale(x, 1, 0)


def logistic(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp logistic: FixedPoint<int32, integer_bits> -> Q0.31."""
    a = as_i64(a)
    positive = a > 0
    abs_input = np.where(positive, a, wrap_int32(-a))
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(wrap_int32(-abs_input), integer_bits)
    )
    result_if_negative = wrap_int32(INT32_MAX - result_if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, result_if_positive, result_if_negative))


def count_leading_zeros_u32(x: np.ndarray) -> np.ndarray:
    """Leading zero bits of positive values below 2^32 (frexp is exact for them)."""
    _, exponent = np.frexp(as_i64(x).astype(np.float64))
    return np.where(as_i64(x) == 0, 32, 32 - exponent.astype(np.int64))


# int16 helpers (HARD_SWISH works on 16-bit fixed point).


def srdhm_int16(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul<int16_t>."""
    a, b = as_i64(a), as_i64(b)
    product = a * b
    nudged = product + np.where(product >= 0, 1 << 14, 1 - (1 << 14))
    high = np.where(nudged >= 0, nudged >> 15, -((-nudged) >> 15))  # C division truncates toward zero
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, wrap_int16(high))


def sdhm_int16(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """SaturatingDoublingHighMul<int16_t> (ARM SQDMULH): like srdhm_int16, truncating toward zero."""
    a, b = as_i64(a), as_i64(b)
    product = a * b
    high = np.where(product >= 0, product >> 15, -((-product) >> 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, wrap_int16(high))


def saturating_left_shift_int16(x: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(as_i64(x) * (1 << amount), INT16_MIN, INT16_MAX)


def rdbpot_int16(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT<int16_t>.

    The mask ``(1 << exponent) - 1`` is narrowed to int16, so for exponents of 16 and more
    it becomes -1 and the result collapses to +1 (x >= 0) or -1 (x < 0); TFLite Micro's
    HARD_SWISH reaches that case when the output scale is far above the input scale.
    """
    x = as_i64(x)
    mask = int(wrap_int16(np.int64((1 << exponent) - 1)))
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return wrap_int16((x >> exponent) + (remainder > threshold))
