"""SUB, MAXIMUM, MINIMUM and PRELU, int8 with broadcasting (SUB also 16x8): checks and Prepare.

SUB is ADD's arithmetic with the second term negated, and its Prepare computes ADD's
parameters: in the TFLite Micro we hold ourselves to (the interpreter of ``mcu_effnet.oracle``)
the scales are widened to double as ADD's are. Newer ``sub_common.cc`` sources keep them in
float32; the Q31 multipliers then differ by a few units for almost any scales (an output
differs for a few percent of scale triples), and ``tests/test_ops_arithmetic.py`` pins the one
the interpreter uses. MAXIMUM and MINIMUM have
no Prepare in TFLite Micro: they compare the raw int8 codes and check no quantization, so the
simulator does exactly that. PRELU has two multipliers (the identity branch and the
``input · alpha`` branch), in double.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks, common, elementwise
from mcu_effnet.ops.common import input_tensor, output_tensor, qparams, quantize_multiplier
from mcu_effnet.ops.elementwise import ADD_LEFT_SHIFT, ADD_LEFT_SHIFT_INT16, BinaryParams, add_params


def _sub_left_shift(graph: Graph, op: Op) -> int:
    # CalculateOpDataSub lifts int16 values by 2^15 (65535 · 2^15 still fits int32), int8 by 2^20.
    return ADD_LEFT_SHIFT_INT16 if output_tensor(graph, op).dtype == "int16" else ADD_LEFT_SHIFT


def prepare_sub(graph: Graph, op: Op) -> BinaryParams:
    (s1, z1), (s2, z2) = qparams(input_tensor(graph, op, 0)), qparams(input_tensor(graph, op, 1))
    so, zo = qparams(output_tensor(graph, op))
    lo, hi = common.fused_activation_range(graph, op)
    return add_params(s1, z1, s2, z2, so, zo, lo, hi, _sub_left_shift(graph, op))


def check_sub(graph: Graph, op: Op) -> str | None:
    problem = elementwise.check(graph, op)
    if problem:
        return problem
    # QuantizeMultiplierSmallerThanOneExp aborts TFLite Micro on an output multiplier of 1 or more.
    s1, s2 = (float(np.float32(input_tensor(graph, op, k).scale[0])) for k in (0, 1))
    so = float(np.float32(output_tensor(graph, op).scale[0]))
    shift = _sub_left_shift(graph, op)
    if 2.0 * max(s1, s2) / (float(1 << shift) * so) >= 1.0:
        return f"output scale {so:g} is below 2^-{shift - 1} of the larger input scale (TFLite Micro aborts)"
    return None


def check_min_max(graph: Graph, op: Op) -> str | None:
    """Two int8 inputs that broadcast to the int8 output (no fused activation, no requantization)."""
    problem = checks.arity(op, (2,)) or checks.io_int8(graph, op, 2)
    if problem:
        return problem
    return _broadcast_output(graph, op)


def _broadcast_output(graph: Graph, op: Op) -> str | None:
    a, b, y = input_tensor(graph, op, 0), input_tensor(graph, op, 1), output_tensor(graph, op)
    if len(a.shape) > 4 or len(b.shape) > 4:
        return "inputs of rank above 4 are not supported"
    shape = elementwise.broadcast_shape(a.shape, b.shape)
    if shape is None:
        return f"input shapes {list(a.shape)} and {list(b.shape)} do not broadcast"
    return checks.shape_is(y, shape)


@dataclass(frozen=True)
class PreluParams:
    """out = clamp(out_offset + (x ≥ 0 ? MBQM(x, m1, s1) : MBQM(x · (alpha + alpha_offset), m2, s2))),
    x the input plus in_offset."""

    in_offset: int
    alpha_offset: int
    out_offset: int
    identity_multiplier: int
    identity_shift: int
    alpha_multiplier: int
    alpha_shift: int


def prepare_prelu(graph: Graph, op: Op) -> PreluParams:
    (si, zi), (sa, za) = qparams(input_tensor(graph, op, 0)), qparams(input_tensor(graph, op, 1))
    so, zo = qparams(output_tensor(graph, op))
    m1, e1 = quantize_multiplier(np.float64(si) / np.float64(so))
    m2, e2 = quantize_multiplier(np.float64(si) * np.float64(sa) / np.float64(so))
    return PreluParams(-zi, -za, zo, int(m1), int(e1), int(m2), int(e2))


def check_prelu(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (2,)) or checks.io_int8(graph, op, 2)
    if problem:
        return problem
    alpha, x = input_tensor(graph, op, 1), input_tensor(graph, op, 0)
    if elementwise.broadcast_shape(alpha.shape, x.shape) != tuple(x.shape):
        return f"alpha shape {list(alpha.shape)} does not broadcast to the input shape {list(x.shape)}"
    return _broadcast_output(graph, op)


def macs(graph: Graph, op: Op) -> int:
    """PRELU multiplies the negative inputs by alpha: counted as one MAC per output element."""
    return common.elements(output_tensor(graph, op).shape)


CHECKS = {"SUB": check_sub, "MAXIMUM": check_min_max, "MINIMUM": check_min_max, "PRELU": check_prelu}
PREPARE = {"SUB": prepare_sub, "PRELU": prepare_prelu}
MACS = {"PRELU": macs}
