"""The vectorised requantization arithmetic against slow pure-Python transcriptions of TFLite's rules.

The references below are written from the C semantics (int32 wrap, truncating division,
round-half-away) with Python's unbounded integers, one scalar at a time; the numpy versions
must agree on every element, including the edge cases that matter: INT32_MIN saturation,
exact halves, shifts at both ends, multipliers that round up to 2^31.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcu_effnet.ops.common import activation_range, conv_multipliers, quantize_multiplier
from mcu_effnet.ops.elementwise import add_params
from mcu_effnet.ops.fully_connected import fc_multiplier_per_tensor
from mcu_effnet.sim import requantize as rq

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
int32s = st.integers(INT32_MIN, INT32_MAX)
# Multipliers as QuantizeMultiplier produces them: 0 or in [2^30, 2^31).
multipliers = st.one_of(st.just(0), st.integers(2**30, INT32_MAX))


def wrap32(v: int) -> int:
    return ((v + 2**31) % 2**32) - 2**31


def ref_srdhm(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    total = ab + nudge
    quotient = abs(total) // (1 << 31)  # C division truncates toward zero
    return wrap32(quotient if total >= 0 else -quotient)


def ref_rdbpot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def ref_mbqm(x: int, multiplier: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return ref_rdbpot(ref_srdhm(wrap32(x * (1 << left)), multiplier), right)


def ref_quantize_multiplier(real: float) -> tuple[int, int]:
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    scaled = q * (1 << 31)
    q_fixed = int(math.floor(abs(scaled) + 0.5)) * (1 if scaled >= 0 else -1)  # std::round
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(int32s, int32s), min_size=1, max_size=32))
def test_srdhm_matches_reference(pairs: list[tuple[int, int]]) -> None:
    a = np.array([p[0] for p in pairs], np.int64)
    b = np.array([p[1] for p in pairs], np.int64)
    got = rq.saturating_rounding_doubling_high_mul(a, b)
    assert got.tolist() == [ref_srdhm(x, y) for x, y in pairs]


def test_srdhm_edges() -> None:
    a = np.array([INT32_MIN, INT32_MIN, INT32_MAX, -1, 1, 1 << 30, -(1 << 30), 0], np.int64)
    b = np.array([INT32_MIN, INT32_MAX, INT32_MAX, 1 << 30, 1 << 30, 1 << 30, 1 << 30, INT32_MIN], np.int64)
    got = rq.saturating_rounding_doubling_high_mul(a, b).tolist()
    assert got == [ref_srdhm(int(x), int(y)) for x, y in zip(a, b, strict=True)]
    assert got[0] == INT32_MAX  # the single overflow saturates
    # ±2^30 / 2^31 = ±0.5 exactly: +0.5 rounds up to 1 but -0.5 goes to 0 (the nudge is
    # 1 − 2^30, and C's division truncates), i.e. SRDHM rounds halves up, not away from zero.
    assert got[3] == 0 and got[4] == 1


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(int32s, st.integers(0, 31)), min_size=1, max_size=32))
def test_rdbpot_matches_reference_and_exact_rounding(pairs: list[tuple[int, int]]) -> None:
    x = np.array([p[0] for p in pairs], np.int64)
    e = np.array([p[1] for p in pairs], np.int64)
    got = rq.rounding_divide_by_pot(x, e).tolist()
    assert got == [ref_rdbpot(v, k) for v, k in pairs]
    for value, (v, k) in zip(got, pairs, strict=True):
        exact = Fraction(v, 1 << k)
        # round to nearest, halves away from zero
        floor = math.floor(exact)
        frac = exact - floor
        expected = floor + (1 if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and v > 0) else 0)
        assert value == expected


def test_rdbpot_halves() -> None:
    x = np.array([1, -1, 3, -3, 5, -5, 2, -2], np.int64)
    assert rq.rounding_divide_by_pot(x, 1).tolist() == [1, -1, 2, -2, 3, -3, 1, -1]
    assert rq.rounding_divide_by_pot(np.array([6, -6, 2, -2]), 2).tolist() == [2, -2, 1, -1]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(int32s, multipliers, st.integers(-31, 30)), min_size=1, max_size=32))
def test_mbqm_matches_reference(triples: list[tuple[int, int, int]]) -> None:
    x = np.array([t[0] for t in triples], np.int64)
    m = np.array([t[1] for t in triples], np.int64)
    s = np.array([t[2] for t in triples], np.int64)
    got = rq.multiply_by_quantized_multiplier(x, m, s).tolist()
    assert got == [ref_mbqm(*t) for t in triples]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-(2**24), 2**24), min_size=1, max_size=12),
    st.lists(st.tuples(multipliers, st.integers(-20, 2)), min_size=1, max_size=6),
)
def test_mbqm_per_channel_broadcast_on_last_axis(values: list[int], channels: list[tuple[int, int]]) -> None:
    x = np.array(values, np.int64)[:, None] * np.ones(len(channels), np.int64)[None, :]
    m = np.array([c[0] for c in channels], np.int64)
    s = np.array([c[1] for c in channels], np.int64)
    got = rq.multiply_by_quantized_multiplier(x, m, s)
    for i, v in enumerate(values):
        for j, (mult, sh) in enumerate(channels):
            assert got[i, j] == ref_mbqm(v, mult, sh)


reals = st.one_of(
    st.floats(min_value=1e-12, max_value=1e4, allow_nan=False, allow_infinity=False),
    st.floats(min_value=0.0, max_value=1e-9),
    st.sampled_from([0.0, 1.0, 0.5, 2.0, 2.0**-31, 2.0**-32, 2.0**-33, 1 - 2.0**-33, 1 - 2.0**-40, 0.75]),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(reals, min_size=1, max_size=16))
def test_quantize_multiplier_matches_reference(values: list[float]) -> None:
    m, s = quantize_multiplier(np.array(values, np.float64))
    assert list(zip(m.tolist(), s.tolist(), strict=True)) == [ref_quantize_multiplier(v) for v in values]
    for mult, shift, v in zip(m.tolist(), s.tolist(), values, strict=True):
        assert mult == 0 or (1 << 30) <= mult < (1 << 31)
        if mult:
            assert abs(mult * 2.0 ** (shift - 31) - v) <= v * 2.0**-30


def test_quantize_multiplier_edges() -> None:
    # Rounds up to 2^31: halved, exponent bumped.
    m, s = quantize_multiplier(1 - 2.0**-40)
    assert (int(m), int(s)) == (1 << 30, 1)
    # Shift below -31 flushes to zero; exactly -31 survives.
    assert tuple(map(int, quantize_multiplier(2.0**-33))) == (0, 0)
    assert tuple(map(int, quantize_multiplier(2.0**-32))) == (1 << 30, -31)
    assert tuple(map(int, quantize_multiplier(0.0))) == (0, 0)


def test_conv_and_fc_multipliers_use_the_reference_precision() -> None:
    """Per-channel: double product. Per-tensor FC: float32 product, then double (they differ)."""
    rng = np.random.default_rng(3)
    found_difference = False
    for _ in range(2000):
        s_in, s_w, s_out = (float(np.float32(v)) for v in rng.uniform(1e-3, 1e-1, size=3))
        conv = conv_multipliers(s_in, np.array([s_w], np.float32), s_out)
        expected_conv = ref_quantize_multiplier(
            float(np.float32(s_in)) * float(np.float32(s_w)) / float(np.float32(s_out))
        )
        assert (int(conv[0][0]), int(conv[1][0])) == expected_conv
        fc = fc_multiplier_per_tensor(s_in, s_w, s_out)
        product32 = float(np.float32(np.float32(s_in) * np.float32(s_w)))
        assert fc == ref_quantize_multiplier(product32 / float(np.float32(s_out)))
        found_difference |= fc != expected_conv
    assert found_difference  # otherwise this test would not tell the two rules apart


@pytest.mark.parametrize(
    "activation, scale, zp, expected",
    [
        ("NONE", 0.1, 5, (-128, 127)),
        ("RELU", 0.1, 5, (5, 127)),
        ("RELU6", 0.1, -128, (-128, -68)),
        ("RELU6", 0.01, -128, (-128, 127)),  # 6.0 beyond the int8 range: clamped
        ("RELU_N1_TO_1", 0.05, 0, (-20, 20)),
        ("RELU6", 6.0 / 255.0, -128, (-128, 127)),
        ("RELU6", 0.024, 10, (10, 127)),  # 6 / 0.024 = 250 → 260, clamped
        ("RELU6", 0.048, -100, (-100, 25)),  # 6 / 0.048 = 125 in float32
    ],
)
def test_activation_range(activation: str, scale: float, zp: int, expected: tuple[int, int]) -> None:
    assert activation_range(activation, scale, zp) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.floats(1e-4, 1.0),
    st.integers(-128, 127),
    st.floats(1e-4, 1.0),
    st.integers(-128, 127),
    st.floats(1e-4, 1.0),
    st.integers(-128, 127),
)
def test_add_params_match_reference(s1: float, z1: int, s2: float, z2: int, so: float, zo: int) -> None:
    p = add_params(s1, z1, s2, z2, so, zo)
    f1, f2, fo = (float(np.float32(v)) for v in (s1, s2, so))
    twice_max = 2 * max(f1, f2)
    assert (p.in1_multiplier, p.in1_shift) == ref_quantize_multiplier(f1 / twice_max)
    assert (p.in2_multiplier, p.in2_shift) == ref_quantize_multiplier(f2 / twice_max)
    assert (p.out_multiplier, p.out_shift) == ref_quantize_multiplier(twice_max / ((1 << 20) * fo))
    assert (p.in1_offset, p.in2_offset, p.out_offset, p.left_shift) == (-z1, -z2, zo, 20)
    assert p.in1_shift <= 0 and p.in2_shift <= 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(int32s, min_size=1, max_size=24),
    st.lists(st.tuples(multipliers, st.integers(-31, 30)), min_size=1, max_size=5),
)
def test_prepared_requantizer_equals_mbqm(values: list[int], channels: list[tuple[int, int]]) -> None:
    x = np.array(values, np.int64)[:, None] * np.ones(len(channels), np.int64)[None, :]
    m = np.array([c[0] for c in channels], np.int64)
    s = np.array([c[1] for c in channels], np.int64)
    expected = [[ref_mbqm(v, mult, sh) for mult, sh in channels] for v in values]
    assert rq.Requantizer.create(m, s)(x.copy()).tolist() == expected
    assert rq.multiply_by_quantized_multiplier(x, m, s).tolist() == expected
    # uniform shifts take the scalar path
    uniform = rq.Requantizer.create(m, np.full_like(s, s[0]))
    assert uniform(x.copy()).tolist() == [
        [ref_mbqm(v, mult, int(s[0])) for mult, _ in channels] for v in values
    ]


def ref_mbqm_single(x: int, multiplier: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier built with TFLITE_SINGLE_ROUNDING (common.cc):
    the exact product rounded once, halves up, with no int32 pre-shift."""
    total = 31 - shift
    return (x * multiplier + (1 << (total - 1))) >> total


@settings(max_examples=300, deadline=None)
@given(
    st.lists(int32s, min_size=1, max_size=24),
    st.lists(st.tuples(multipliers, st.integers(-31, 30)), min_size=1, max_size=5),
)
def test_single_rounding_mode_is_tflite_single_rounding(
    values: list[int], channels: list[tuple[int, int]]
) -> None:
    x = np.array(values, np.int64)[:, None] * np.ones(len(channels), np.int64)[None, :]
    m = np.array([c[0] for c in channels], np.int64)
    s = np.array([c[1] for c in channels], np.int64)
    single = [[ref_mbqm_single(v, mult, sh) for mult, sh in channels] for v in values]
    double = [[ref_mbqm(v, mult, sh) for mult, sh in channels] for v in values]
    prepared = rq.Requantizer.create(m, s)
    with rq.rounding("single"):
        assert rq.multiply_by_quantized_multiplier(x, m, s).tolist() == single
        assert prepared(x.copy()).tolist() == single
        uniform = rq.Requantizer.create(m, np.full_like(s, s[0]))
        assert uniform(x.copy()).tolist() == [
            [ref_mbqm_single(v, mult, int(s[0])) for mult, _ in channels] for v in values
        ]
    # the default, TFLite Micro's own build, is back after the block
    assert prepared(x.copy()).tolist() == double


def test_single_rounding_differs_where_double_rounding_rounds_twice() -> None:
    # 1 x 2^30 x 2^-32 = 0.25 exactly, which one rounding takes to 0; the high multiply first
    # rounds 1 x 2^30 / 2^31 = 0.5 up to 1, then 1 / 2 = 0.5 rounds away from zero to 1.
    x, m, shift = np.array([1]), np.array([1 << 30]), np.array([-1])
    assert rq.multiply_by_quantized_multiplier(x, m, shift).tolist() == [1]
    with rq.rounding("single"):
        assert rq.multiply_by_quantized_multiplier(x, m, shift).tolist() == [0]
        assert rq.Requantizer.create(m, shift)(x).tolist() == [0]
    with pytest.raises(ValueError, match="rounding"):
        with rq.rounding("stochastic"):
            pass
