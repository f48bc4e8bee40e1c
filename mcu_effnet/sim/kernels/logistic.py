"""LOGISTIC, int8 in and out, as TFLite Micro's ``reference_integer_ops::Logistic``.

TFLite Micro computes int8 sigmoid without a lookup table: the centred input is rescaled
to Q4.27 with a multiplier taken straight from ``frexp`` (no QuantizeMultiplier
adjustment), inputs beyond a radius saturate, the rest go through gemmlowp's fixed-point
``logistic`` and are rounded from Q0.31 to the fixed output scale 1/256, zero point -128.
The output scale is not checked by TFLite Micro (only its zero point): the kernel always
produces values on 1/256.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.sim import fixedpoint as fp
from mcu_effnet.sim.requantize import multiply_by_quantized_multiplier, rounding, rounding_mode

INPUT_INTEGER_BITS = 4
OUTPUT_INTEGER_BITS = 8


@dataclass(frozen=True)
class LogisticParams:
    input_zero_point: int
    input_multiplier: int
    input_left_shift: int
    input_range_radius: int

    @classmethod
    @functools.lru_cache(maxsize=1024)  # one entry per op: Prepare runs once in TFLite Micro too
    def from_scale(cls, input_scale: float, input_zero_point: int) -> LogisticParams:
        real = float(np.float32(input_scale)) * float(1 << (31 - INPUT_INTEGER_BITS))
        fraction, exponent = math.frexp(real)
        # TfLiteRound is round-half-away-from-zero; q * 2^31 is exact in double.
        multiplier = int(math.floor(fraction * (1 << 31) + 0.5))
        radius_real = ((1 << INPUT_INTEGER_BITS) - 1) * float(1 << (31 - INPUT_INTEGER_BITS)) / 2.0**exponent
        return cls(int(input_zero_point), multiplier, exponent, int(math.floor(radius_real)))


def logistic_int8(x: np.ndarray, params: LogisticParams) -> np.ndarray:
    centred = x.astype(np.int64) - params.input_zero_point
    # Inside the radius the left shift of MultiplyByQuantizedMultiplier cannot overflow.
    input_in_q4 = multiply_by_quantized_multiplier(centred, params.input_multiplier, params.input_left_shift)
    output_in_q0 = fp.logistic(input_in_q4, INPUT_INTEGER_BITS)
    out = np.clip(fp.rdbpot(output_in_q0, 31 - OUTPUT_INTEGER_BITS) - 128, -128, 127)
    out = np.where(centred >= params.input_range_radius, 127, out)
    out = np.where(centred <= -params.input_range_radius, -128, out)
    return out.astype(np.int8)


def logistic_kernel(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    src, dst = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if src.dtype != "int8" or dst.dtype != "int8":
        raise UserError(
            f"op {op.index} LOGISTIC: only int8 -> int8 is supported, got {src.dtype} -> {dst.dtype}"
        )
    if int(dst.zero_point[0]) != -128:
        raise UserError(
            f"op {op.index} LOGISTIC: output zero point must be -128 (TFLite Micro refuses "
            f"{int(dst.zero_point[0])})"
        )
    params = LogisticParams.from_scale(float(src.scale[0]), int(src.zero_point[0]))
    return [np.take(logistic_table(params, rounding_mode()), inputs[0].view(np.uint8))]


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
