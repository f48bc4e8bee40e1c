"""LOGISTIC, int8: check and Prepare, as TFLite Micro's ``CalculateArithmeticOpData``.

The centred input is rescaled to Q4.27 with a multiplier taken straight from ``frexp`` (no
QuantizeMultiplier adjustment); inputs beyond the radius saturate. The output scale is not
checked by TFLite Micro (only its zero point, -128): the kernel always produces values on 1/256.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks, logistic16
from mcu_effnet.ops.common import input_tensor, output_tensor, qparams, refuse

INPUT_INTEGER_BITS = 4


@dataclass(frozen=True)
class LogisticParams:
    in_zero_point: int
    in_multiplier: int
    in_left_shift: int
    in_range_radius: int

    @classmethod
    @functools.lru_cache(maxsize=1024)  # one entry per op: Prepare runs once in TFLite Micro too
    def from_scale(cls, input_scale: float, in_zero_point: int) -> LogisticParams:
        real = float(np.float32(input_scale)) * float(1 << (31 - INPUT_INTEGER_BITS))
        fraction, exponent = math.frexp(real)
        # TfLiteRound is round-half-away-from-zero; q * 2^31 is exact in double.
        multiplier = int(math.floor(fraction * (1 << 31) + 0.5))
        radius_real = ((1 << INPUT_INTEGER_BITS) - 1) * float(1 << (31 - INPUT_INTEGER_BITS)) / 2.0**exponent
        return cls(int(in_zero_point), multiplier, exponent, int(math.floor(radius_real)))


def prepare(graph: Graph, op: Op) -> LogisticParams | logistic16.Logistic16Params:
    if input_tensor(graph, op, 0).dtype == "int16":
        return logistic16.prepare(graph, op)
    out_zp = qparams(output_tensor(graph, op))[1]
    if out_zp != -128:
        raise refuse(op, f"output zero point must be -128 (TFLite Micro refuses {out_zp})")
    return LogisticParams.from_scale(*qparams(input_tensor(graph, op, 0)))


def check(graph: Graph, op: Op) -> str | None:
    problem = checks.unary(graph, op)
    if problem:
        return problem
    if graph.tensors[op.outputs[0]].dtype == "int16":
        return logistic16.check(graph, op)
    if int(graph.tensors[op.outputs[0]].zero_point[0]) != -128:
        return "int8 LOGISTIC needs output zero point -128"
    return None


CHECKS = {"LOGISTIC": check}
PREPARE = {"LOGISTIC": prepare}
