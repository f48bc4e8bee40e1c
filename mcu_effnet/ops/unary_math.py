"""LEAKY_RELU and TANH (int8, int16): checks and Prepare, as TFLite Micro's leaky_relu_common.cc and tanh.cc.

LEAKY_RELU requantizes each side with its own multiplier: ``input_scale / output_scale`` for
x ≥ 0 and ``input_scale · alpha / output_scale`` below, the float32 scales and alpha widened to
double before the product and quotient, as the interpreter of ``mcu_effnet.oracle`` does (newer
``leaky_relu_common.cc`` sources compute them in float32, which moves an output by one for a
few inputs in a thousand in int16; the corpus's golden CSVs come from such a build). A negative
alpha gives a negative multiplier, whose sign the kernel applies after multiplying by its
magnitude. int16 (16x8) takes the same path with the int16 clamp.

TANH's int8 path is ``reference_integer_ops::Tanh`` (no lookup table): the same Q4.27 input
rescaling as LOGISTIC (``mcu_effnet.ops.logistic.LogisticParams``), gemmlowp's fixed-point
``tanh`` and a rounding shift to the fixed output scale 1/128, zero point 0. TFLite Micro
checks neither output quantity; the kernel writes codes on that scale whatever the file says.
TANH's int16 path is LOGISTIC's (``mcu_effnet.ops.logistic16``): the sigmoid table read at
twice the input, output scale 2^-15.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks, logistic16
from mcu_effnet.ops.common import input_tensor, output_tensor, qparams, quantize_multiplier
from mcu_effnet.ops.logistic import LogisticParams


@dataclass(frozen=True)
class LeakyReluParams:
    in_zero_point: int
    out_zero_point: int
    identity_multiplier: int
    identity_shift: int
    alpha_multiplier: int  # negative when alpha is
    alpha_shift: int


def prepare_leaky_relu(graph: Graph, op: Op) -> LeakyReluParams:
    si, zi = qparams(input_tensor(graph, op, 0))
    so, zo = qparams(output_tensor(graph, op))
    alpha = np.float64(np.float32(op.attrs.get("alpha", 0.0)))
    si, so = np.float64(np.float32(si)), np.float64(np.float32(so))
    ma, ea = quantize_multiplier(si * alpha / so)
    mi, ei = quantize_multiplier(si / so)
    return LeakyReluParams(zi, zo, int(mi), int(ei), int(ma), int(ea))


def check_leaky_relu(graph: Graph, op: Op) -> str | None:
    problem = checks.unary(graph, op)
    if problem:
        return problem
    alpha = op.attrs.get("alpha", 0.0)
    if not np.isfinite(np.float32(alpha)):
        return f"alpha {alpha} is not finite"
    return None


def prepare_tanh(graph: Graph, op: Op) -> LogisticParams | logistic16.Logistic16Params:
    if input_tensor(graph, op, 0).dtype == "int16":
        return logistic16.prepare(graph, op)
    return LogisticParams.from_scale(*qparams(input_tensor(graph, op, 0)))


def check_tanh(graph: Graph, op: Op) -> str | None:
    problem = checks.unary(graph, op)
    if problem is None and graph.tensors[op.outputs[0]].dtype == "int16":
        return logistic16.check(graph, op)
    return problem


CHECKS = {"LEAKY_RELU": check_leaky_relu, "TANH": check_tanh}
PREPARE = {"LEAKY_RELU": prepare_leaky_relu, "TANH": prepare_tanh}
