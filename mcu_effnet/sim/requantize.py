"""TFLite Micro's integer requantization arithmetic, vectorised in numpy int64.

Everything here reproduces TFLite Micro's default build (double rounding, i.e. without
``TFLITE_SINGLE_ROUNDING``): gemmlowp's ``SaturatingRoundingDoublingHighMul`` and
``RoundingDivideByPOT``, and ``MultiplyByQuantizedMultiplier`` from ``common.cc``, applied
with the multipliers and shifts an op's Prepare derived (``mcu_effnet.ops``). Values are carried in int64 arrays but
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


def multiply_by_quantized_multiplier_int64(
    x: ArrayLike, multiplier: ArrayLike, shift: ArrayLike
) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier(int64 x, multiplier, shift)`` (the 16x8 ops with
    an int64 accumulator): the multiplier rounded to Q0.15, one rounding shift by 15 − shift.

    The same in both rounding modes (TFLite has one int64 version). |x| < 2^47 and the reduced
    multiplier < 2^15 keep the product inside int64.
    """
    x = np.asarray(x, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    reduced = np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - np.asarray(shift, dtype=np.int64)
    return (x * reduced + (np.int64(1) << (total - 1))) >> total


def narrow(values: np.ndarray, zero_point: int, lo: int, hi: int, dtype: str | np.dtype) -> np.ndarray:
    """Adds the output zero point, clamps to [lo, hi] and narrows to the activation type."""
    out = values + zero_point
    np.maximum(out, lo, out=out)
    np.minimum(out, hi, out=out)
    return out.astype(dtype)


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

    def to_int8(
        self, acc: np.ndarray, output_zp: int, act_min: int, act_max: int, dtype: str | np.dtype = np.int8
    ) -> np.ndarray:
        """The common tail of CONV / DEPTHWISE / FC: scale, add the zero point, clamp, narrow
        (to ``dtype``: int16 for 16x8 ops)."""
        out = self(acc)
        out += output_zp
        np.maximum(out, act_min, out=out)
        np.minimum(out, act_max, out=out)
        return out.astype(dtype)
