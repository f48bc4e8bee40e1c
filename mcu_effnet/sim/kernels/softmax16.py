"""SOFTMAX int16 -> int16, as TFLite Micro's ``reference_ops::SoftmaxInt16``.

Along the last axis: each difference to the row maximum is scaled (``MultiplyByQuantizedMultiplier``)
so that [-65535, 0] spans [-10, 0], recentred to int16 and looked up in the exp table with
linear interpolation on the low 7 bits (``LUTLookup``); the exps (Q0.15) are summed in int32,
the sum normalised by its leading zeros and looked up in the 1 / (1 + x) table; each exp times
that reciprocal, rounded and clamped to [0, 32767], is the output
(``mcu_effnet.ops.softmax16.Softmax16Params``).
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.ops.softmax16 import Softmax16Params
from mcu_effnet.sim import fixedpoint as fp
from mcu_effnet.sim.requantize import multiply_by_quantized_multiplier, wrap_int32


def _wrap16(x: np.ndarray) -> np.ndarray:
    return ((x + 32768) & 0xFFFF) - 32768


def lut_lookup(value: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``LUTLookup(int16, lut)``: base at the high 9 bits, slope times the low 7, rounded."""
    value = np.asarray(value, np.int64)
    table = lut.astype(np.int64)
    index = 256 + (value >> 7)
    base = table[index]
    slope = _wrap16(table[index + 1] - base)
    delta = (slope * (value & 0x7F) + 64) >> 7
    return _wrap16(base + delta)


def softmax_int16(x: np.ndarray, p: Softmax16Params) -> np.ndarray:
    x = x.astype(np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    scaled = multiply_by_quantized_multiplier(diff, p.in_multiplier, p.in_left_shift)
    exps = lut_lookup(np.clip(scaled + 32767, -32768, 32767), p.exp_lut)
    total = wrap_int32(exps.sum(axis=-1, keepdims=True))
    headroom_plus_one = fp.count_leading_zeros_u32(total)  # the row maximum's exp keeps it positive
    shifted = ((total << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    centred = np.clip(shifted - ((1 << 15) + (1 << 16)), -32768, 32767)
    reciprocal = lut_lookup(centred, p.one_over_one_plus_x_lut)
    right_shift = 31 - headroom_plus_one
    result = (exps * reciprocal + (np.int64(1) << (right_shift - 1))) >> right_shift
    return np.clip(wrap_int32(result), 0, 32767).astype(np.int16)
