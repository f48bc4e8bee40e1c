"""LOGISTIC and TANH on int16 (16x8): Prepare and the sigmoid table, as TFLite Micro's int16 paths.

Both int16 kernels interpolate one 256-entry table of sigmoid(i / 24) in unsigned 0.16 fixed
point on the input's absolute value (and mirror negative inputs); TANH reads it at twice the
input (tanh(x) = 2 sigmoid(2x) - 1: one bit less of step). The input is brought to the table's
scale, 3 · 2^12 per unit: by a left shift alone when its scale is a power of two with
``input_left_shift`` 0 (TANH: 0 or 1), else by a 15-bit multiplier and a rounding right shift.
Both zero points are 0 and the output scale is 2^-15.

The table: each entry is the sample at i / 24 corrected by half the error of linear
interpolation at the midpoint of its step, rounded; the last entry is the largest uint16.
That rule reproduces TFLite's ``sigmoid_table_uint16`` entry for entry (every value stays at
least 0.004 from a rounding tie, so double precision is plenty).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.common import input_tensor, output_tensor, refuse

INPUT_INTEGER_BITS = 3
OUTPUT_FRACTIONAL_BITS = 15
# The input left shifts Prepare serves with a shift alone (a power-of-two input scale); any
# other scale gets a multiplier.
SHIFT_ONLY = {"LOGISTIC": (0,), "TANH": (0, 1)}


@dataclass(frozen=True)
class Logistic16Params:
    in_multiplier: int  # 0: a power-of-two input scale (the kernel then multiplies by 3)
    in_left_shift: int


@functools.cache
def sigmoid_table() -> np.ndarray:
    """sigmoid(i / 24) in 0.16, i = 0..255, midpoint-corrected for interpolation."""
    x = np.arange(256, dtype=np.float64) / 24.0
    step = 1.0 / 24.0

    def sigmoid(v: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-v))

    value, following, middle = sigmoid(x), sigmoid(x + step), sigmoid(x + step / 2)
    corrected = 65536.0 * (value + (middle - (value + following) / 2) / 2)
    table = np.floor(corrected + 0.5).astype(np.int64)
    table[-1] = 65535
    table = np.minimum(table, 65535).astype(np.uint16)
    table.flags.writeable = False
    return table


def checked_log2(x: float) -> tuple[bool, int]:
    """``CheckedLog2`` in float32: (is x a power of two within 1e-3 of its log2, rounded log2)."""
    f = np.float32
    log2 = f(math.log(float(f(x)))) * (f(1.0) / f(math.log(f(2.0))))
    rounded = f(math.copysign(math.floor(abs(float(log2)) + 0.5), float(log2)))
    return abs(float(log2 - rounded)) < 1e-3, int(rounded)


def check(graph: Graph, op: Op) -> str | None:
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    pot, log2 = checked_log2(float(y.scale[0]))
    if not pot or log2 != -OUTPUT_FRACTIONAL_BITS:
        return f"int16 {op.kind} needs output scale 2^-15 and zero point 0"
    if not float(x.scale[0]) * 4096 * 3 < 2**31:
        return f"int16 {op.kind} input scale {float(x.scale[0]):.6g} is too large"
    return None


def prepare(graph: Graph, op: Op) -> Logistic16Params:
    scale = float(np.float32(input_tensor(graph, op, 0).scale[0]))
    pot, log2 = checked_log2(scale)
    left_shift = (15 - INPUT_INTEGER_BITS) + log2
    if pot and left_shift in SHIFT_ONLY[op.kind]:
        return Logistic16Params(0, left_shift)
    multiplier = scale * 4096.0 * 3.0  # to 1 / (3 · 4096) per step, as the table expects
    left_shift = 0
    while multiplier <= 32767.0 / 2.0 and left_shift <= 30:
        left_shift += 1
        multiplier *= 2.0
    if multiplier > 32767:
        raise refuse(op, f"input scale {scale:.6g} is too large for int16 {op.kind}")
    return Logistic16Params(int(multiplier), left_shift)
