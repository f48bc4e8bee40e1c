"""SOFTMAX, int8: check and Prepare (``PreprocessSoftmaxScaling`` + ``CalculateInputRadius``).

For int8 -> int8 TFLite Micro takes gemmlowp's fixed-point path: differences to the row
maximum are scaled by ``beta · input_scale`` into Q5.26, those below ``diff_min`` count as
zero. The output must be on scale 1/256 with zero point -128, exactly.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks, softmax16
from mcu_effnet.ops.common import input_tensor, output_tensor, quantize_multiplier, refuse

SCALED_DIFF_INTEGER_BITS = 5


@dataclass(frozen=True)
class SoftmaxParams:
    in_multiplier: int
    in_left_shift: int
    diff_min: int

    @classmethod
    @functools.lru_cache(maxsize=1024)  # one entry per op: Prepare runs once in TFLite Micro too
    def from_scale(cls, beta: float, input_scale: float) -> SoftmaxParams:
        """PreprocessSoftmaxScaling + CalculateInputRadius, in double like the C++."""
        real = min(
            float(np.float32(beta))
            * float(np.float32(input_scale))
            * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)),
            float((1 << 31) - 1),
        )
        if not real > 1.0:
            # QuantizeMultiplierGreaterThanOne aborts TFLite Micro here.
            raise ValueError(f"beta * input_scale = {real / (1 << 26):.3g} is too small for int8 SOFTMAX")
        multiplier, shift = quantize_multiplier(real)
        radius_real = (
            ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)) / 2.0**shift
        )
        return cls(int(multiplier), int(shift), -int(math.floor(radius_real)))


def prepare(graph: Graph, op: Op) -> SoftmaxParams | softmax16.Softmax16Params:
    src, dst = input_tensor(graph, op, 0), output_tensor(graph, op)
    if src.dtype == "int16":
        return softmax16.prepare(graph, op)
    if int(dst.zero_point[0]) != -128 or np.float32(dst.scale[0]) != np.float32(1.0 / 256):
        raise refuse(
            op,
            f"int8 output must have scale 1/256 and zero point -128 "
            f"(got {float(dst.scale[0]):.6g}, {int(dst.zero_point[0])}); TFLite Micro refuses it",
        )
    try:
        return SoftmaxParams.from_scale(float(op.attrs.get("beta", 1.0)), float(src.scale[0]))
    except ValueError as exc:
        raise refuse(op, str(exc)) from None


def check(graph: Graph, op: Op) -> str | None:
    problem = checks.unary(graph, op)
    if problem:
        return problem
    y = graph.tensors[op.outputs[0]]
    if y.dtype == "int16":
        problem = softmax16.check(graph, op)
    elif int(y.zero_point[0]) != -128 or float(np.float32(y.scale[0])) != float(np.float32(1.0 / 256)):
        problem = "int8 SOFTMAX needs output scale 1/256 and zero point -128"
    if problem:
        return problem
    beta = op.attrs.get("beta", 1.0)
    if not isinstance(beta, float | int) or not np.isfinite(beta) or beta <= 0:
        return f"beta = {beta} (must be positive)"
    return None


CHECKS = {"SOFTMAX": check}
PREPARE = {"SOFTMAX": prepare}
