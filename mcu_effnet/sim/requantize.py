"""TFLite Micro's integer requantization arithmetic, vectorised in numpy int64.

Everything here reproduces TFLite Micro's default build (double rounding, i.e. without
``TFLITE_SINGLE_ROUNDING``): ``QuantizeMultiplier`` from ``quantization_util.cc``, gemmlowp's
``SaturatingRoundingDoublingHighMul`` and ``RoundingDivideByPOT``, and
``MultiplyByQuantizedMultiplier`` from ``common.cc``. Values are carried in int64 arrays but
every intermediate that is an ``int32_t`` in C is kept (or wrapped) to int32 range, so the
results are bit-for-bit those of the C code. Multipliers and shifts may be scalars or
per-channel arrays; per-channel arrays broadcast on the last axis (channels last, NHWC).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT8_MIN = -128
INT8_MAX = 127

ArrayLike = np.ndarray | int

ROUNDING_MODES = ("double", "single")
_ROUNDING: contextvars.ContextVar[str] = contextvars.ContextVar("mcu_effnet_rounding", default="double")


@contextlib.contextmanager
def rounding(mode: str) -> Iterator[None]:
    """Runs the block with ``MultiplyByQuantizedMultiplier`` in another rounding mode.

    ``"double"`` (the default) is TFLite Micro's default build, which the simulator reproduces
    bit for bit. ``"single"`` is its ``TFLITE_SINGLE_ROUNDING`` build (the exact product rounded
    once): a diagnostic that separates what a model computes from the runtime's double
    rounding; the exporter reports how a ``.tflite`` agrees with ONNX under it. Only the
    requantization multiply changes (as in that build); a shift above 30, which that build
    saturates in ``QuantizeMultiplier``, is not modelled (no real model has one).
    """
    if mode not in ROUNDING_MODES:
        raise ValueError(f"rounding mode {mode!r}: choose one of {', '.join(ROUNDING_MODES)}")
    token = _ROUNDING.set(mode)
    try:
        yield
    finally:
        _ROUNDING.reset(token)


def rounding_mode() -> str:
    """The rounding mode in force (see ``rounding``): part of the key of any cached result."""
    return _ROUNDING.get()


def _single_rounding(x: np.ndarray, multiplier: ArrayLike, shift: ArrayLike) -> np.ndarray:
    """``TFLITE_SINGLE_ROUNDING``'s ``MultiplyByQuantizedMultiplier``: (x·m + 2^(30−shift)) >> (31−shift).

    |x·m| < 2^62 and the rounding term ≤ 2^61, so int64 holds it; no int32 pre-shift."""
    total = 31 - np.asarray(shift, dtype=np.int64)
    return (x * np.asarray(multiplier, dtype=np.int64) + (np.int64(1) << (total - 1))) >> total


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32 range (what `int32_t` overflow does on every target we run)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + 2**31) & 0xFFFFFFFF) - 2**31


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """C's `std::round`: halves go away from zero (numpy's `rint` would go to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_multiplier(real: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's ``QuantizeMultiplier``: a double multiplier as (int32 significand, power-of-two shift).

    ``real ≈ multiplier · 2^(shift − 31)``. Works element-wise on arrays (per-channel
    multipliers). Returns int64 arrays of the input's shape (0-d for a scalar); use ``int()``
    on them for scalars.
    """
    real = np.asarray(real, dtype=np.float64)
    q, shift = np.frexp(real)
    q_fixed = _round_half_away(q * float(1 << 31)).astype(np.int64)
    shift = shift.astype(np.int64)
    # Rounding can carry q up to exactly 1.0: halve it and bump the exponent.
    carry = q_fixed == (1 << 31)
    q_fixed = np.where(carry, q_fixed // 2, q_fixed)
    shift = np.where(carry, shift + 1, shift)
    # Shifts below -31 would shift every bit out; TFLite flushes them to a zero multiplier.
    tiny = shift < -31
    q_fixed = np.where(tiny, 0, q_fixed)
    shift = np.where(tiny, 0, shift)
    zero = real == 0.0
    q_fixed = np.where(zero, 0, q_fixed)
    shift = np.where(zero, 0, shift)
    return q_fixed.astype(np.int64), shift.astype(np.int64)


def saturating_rounding_doubling_high_mul(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """gemmlowp's int32 ``SaturatingRoundingDoublingHighMul``: (a·b + nudge) / 2^31, truncated.

    The nudge is 2^30 for a·b >= 0 and 1 − 2^30 below. Truncating a negative t toward zero is
    floor((t + 2^31 − 1) / 2^31), and 1 − 2^30 + 2^31 − 1 = 2^30, so both signs reduce to
    floor((a·b + 2^30) / 2^31): halves round up (+0.5 → 1, −0.5 → 0). One multiply, one add,
    one shift, on every element of every layer. The only overflow, a = b = INT32_MIN,
    saturates to INT32_MAX. Inputs must be in int32 range.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    s = np.asarray(a * b)  # |ab| <= 2^62: exact in int64
    s += 1 << 30
    s >>= 31
    if np.any(b == INT32_MIN):  # multipliers are never negative; only raw callers get here
        s = np.where((a == INT32_MIN) & (b == INT32_MIN), np.int64(INT32_MAX), s)
    return s


def rounding_divide_by_pot(x: ArrayLike, exponent: ArrayLike) -> np.ndarray:
    """gemmlowp's ``RoundingDivideByPOT``: x / 2^exponent rounded to nearest, halves away from zero.

    ``exponent`` in [0, 31]; may be an array broadcasting against x. Equivalent to gemmlowp's
    mask/threshold form: (x + 2^(e−1) − [x < 0 and e > 0]) >> e.
    """
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    if exponent.ndim > 0 and exponent.size and np.all(exponent == exponent.flat[0]):
        exponent = exponent.flat[0]  # per-channel shifts are often all equal: take the scalar path
    t = x >> 63  # -1 for negatives: pulls exact negative halves down, i.e. away from zero
    if exponent.ndim == 0:
        e = int(exponent)
        if e == 0:
            return x.copy()
        t += x
        t += (1 << e) >> 1
        t >>= e
        return t
    if not np.all(exponent > 0):
        t = t & -(exponent > 0).astype(np.int64)  # no adjustment where nothing is shifted out
    t = t + x
    t += (np.int64(1) << exponent) >> 1
    t >>= exponent
    return t


def multiply_by_quantized_multiplier(x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike) -> np.ndarray:
    """TFLite's double-rounding ``MultiplyByQuantizedMultiplier(int32 x, multiplier, shift)``.

    ``x`` holds int32 values (in an int64 array). A positive shift multiplies x by 2^shift
    first, in int32 as the C code does (wrapping on overflow, which a sane model never hits);
    a negative shift is a rounding right shift after the high multiply. Per-channel
    multiplier/shift arrays broadcast on the last axis of x.
    """
    x = np.asarray(x, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if _ROUNDING.get() == "single":
        return _single_rounding(x, multiplier, shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    scaled = wrap_int32(x << left) if np.any(left) else x
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, multiplier), right)


def conv_multipliers(
    input_scale: float, filter_scales: np.ndarray, output_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift) of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED.

    As ``PopulateConvolutionQuantizationParams``: each float32 scale is widened to double and
    ``input_scale · filter_scale / output_scale`` is evaluated in double, left to right.
    """
    real = (
        np.float64(np.float32(input_scale))
        * np.asarray(filter_scales, dtype=np.float32).astype(np.float64)
        / np.float64(np.float32(output_scale))
    )
    return quantize_multiplier(real)


def fc_multiplier_per_tensor(input_scale: float, filter_scale: float, output_scale: float) -> tuple[int, int]:
    """(multiplier, shift) of a per-tensor FULLY_CONNECTED.

    Unlike the per-channel path, ``GetQuantizedConvolutionMultipler`` multiplies the two scales
    in float32 and only then widens to double before dividing by the output scale.
    """
    product = np.float32(input_scale) * np.float32(filter_scale)
    m, e = quantize_multiplier(np.float64(product) / np.float64(np.float32(output_scale)))
    return int(m), int(e)


def quantize_scalar_f32(value: float, scale: float, zero_point: int) -> int:
    """The ``Quantize`` helper of ``kernel_util.cc``: ``zp + round(value / scale)``, computed in float32."""
    tmp = np.float32(value) / np.float32(scale)
    return int(zero_point) + int(_round_half_away(np.float64(tmp)))


def activation_range(
    activation: str, scale: float, zero_point: int, qmin: int = INT8_MIN, qmax: int = INT8_MAX
) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized``: the clamp of a fused activation on an int8 output."""
    if activation == "RELU":
        return max(qmin, quantize_scalar_f32(0.0, scale, zero_point)), qmax
    if activation == "RELU6":
        lo = max(qmin, quantize_scalar_f32(0.0, scale, zero_point))
        return lo, min(qmax, quantize_scalar_f32(6.0, scale, zero_point))
    if activation == "RELU_N1_TO_1":
        lo = max(qmin, quantize_scalar_f32(-1.0, scale, zero_point))
        return lo, min(qmax, quantize_scalar_f32(1.0, scale, zero_point))
    if activation in ("NONE", None):
        return qmin, qmax
    raise ValueError(f"fused activation {activation!r} has no int8 range")


@dataclass(frozen=True)
class AddParams:
    """Fixed-point parameters of int8 ADD, as ``CalculateOpDataAdd`` computes them."""

    input1_offset: int
    input2_offset: int
    output_offset: int
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int


def add_params(
    input1_scale: float,
    input1_zp: int,
    input2_scale: float,
    input2_zp: int,
    output_scale: float,
    output_zp: int,
) -> AddParams:
    """Both inputs are brought to 2·max(s1, s2) with 20 bits of headroom, summed, then rescaled."""
    left_shift = 20
    s1 = np.float64(np.float32(input1_scale))
    s2 = np.float64(np.float32(input2_scale))
    twice_max = 2.0 * max(s1, s2)
    real1 = s1 / twice_max
    real2 = s2 / twice_max
    real_out = twice_max / (float(1 << left_shift) * np.float64(np.float32(output_scale)))
    m1, e1 = quantize_multiplier(real1)
    m2, e2 = quantize_multiplier(real2)
    mo, eo = quantize_multiplier(real_out)
    return AddParams(
        input1_offset=-int(input1_zp),
        input2_offset=-int(input2_zp),
        output_offset=int(output_zp),
        left_shift=left_shift,
        input1_multiplier=int(m1),
        input1_shift=int(e1),
        input2_multiplier=int(m2),
        input2_shift=int(e2),
        output_multiplier=int(mo),
        output_shift=int(eo),
    )


@dataclass(frozen=True)
class Requantizer:
    """``MultiplyByQuantizedMultiplier`` with one op's multipliers and shifts prepared once.

    The same arithmetic as ``multiply_by_quantized_multiplier`` (the tests hold them equal),
    minus the per-call work: shifts split into left and right parts, uniform per-channel
    shifts collapsed to scalars, and no INT32_MIN check (QuantizeMultiplier never returns a
    negative multiplier). Kernels build one per op and keep it in their cached plan.
    """

    multiplier: np.ndarray | int
    left: np.ndarray | int
    right: np.ndarray | int

    @classmethod
    def create(cls, multiplier: ArrayLike, shift: ArrayLike) -> Requantizer:
        multiplier = np.asarray(multiplier, dtype=np.int64)
        shift = np.asarray(shift, dtype=np.int64)
        if np.any(multiplier < 0):
            raise ValueError("quantized multipliers are never negative")
        left = np.maximum(shift, 0)
        right = np.maximum(-shift, 0)

        def compact(a: np.ndarray) -> np.ndarray | int:
            return int(a.flat[0]) if a.size and np.all(a == a.flat[0]) else a

        m = int(multiplier) if multiplier.ndim == 0 else multiplier
        return cls(m, compact(left), compact(right))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: int32 values in an int64 array (left untouched); returns the int64 results."""
        if _ROUNDING.get() == "single":
            return _single_rounding(x, self.multiplier, np.asarray(self.left) - np.asarray(self.right))
        if isinstance(self.left, int):
            if self.left:
                x = wrap_int32(x << self.left)
        else:
            x = wrap_int32(x << self.left)
        s = x * self.multiplier
        s += 1 << 30
        s >>= 31  # SaturatingRoundingDoublingHighMul (see there): floor((x·m + 2^30) / 2^31)
        if isinstance(self.right, int):  # RoundingDivideByPOT inlined for the usual uniform shift
            if self.right == 0:
                return s
            t = s >> 63
            t += s
            t += 1 << (self.right - 1)
            t >>= self.right
            return t
        return rounding_divide_by_pot(s, self.right)

    def to_int8(self, acc: np.ndarray, output_zp: int, act_min: int, act_max: int) -> np.ndarray:
        """The common tail of CONV / DEPTHWISE / FC: scale, add the zero point, clamp, narrow."""
        out = self(acc)
        out += output_zp
        np.maximum(out, act_min, out=out)
        np.minimum(out, act_max, out=out)
        return out.astype(np.int8)
