"""FULLY_CONNECTED: checks, Prepare and MAC count.

Prepare is TFLite Micro's ``CalculateOpDataFullyConnected``: per-channel weights take the
convolutions' multipliers; per-tensor weights take ``GetQuantizedConvolutionMultipler``,
which multiplies the two scales in float32 before widening to double.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks, common
from mcu_effnet.ops.common import elements, input_tensor, optional_input, output_tensor, qparams


@dataclass(frozen=True)
class FullyConnectedParams:
    in_offset: int
    out_offset: int
    act_min: int
    act_max: int
    per_channel: bool
    multiplier: np.ndarray  # one per unit, or one for all (per-tensor weights)
    shift: np.ndarray
    bias: np.ndarray  # per unit, int64 (zeros when the op has none)
    folded_bias: np.ndarray  # bias + in_offset · (sum of the unit's weights), int64


def fc_multiplier_per_tensor(input_scale: float, filter_scale: float, output_scale: float) -> tuple[int, int]:
    """(multiplier, shift) of a per-tensor FULLY_CONNECTED.

    Unlike the per-channel path, ``GetQuantizedConvolutionMultipler`` multiplies the two scales
    in float32 and only then widens to double before dividing by the output scale.
    """
    product = np.float32(input_scale) * np.float32(filter_scale)
    m, e = common.quantize_multiplier(np.float64(product) / np.float64(np.float32(output_scale)))
    return int(m), int(e)


def prepare(graph: Graph, op: Op) -> FullyConnectedParams:
    x, w, y = input_tensor(graph, op, 0), input_tensor(graph, op, 1), output_tensor(graph, op)
    in_scale, in_zp = qparams(x)
    out_scale, out_zp = qparams(y)
    if w.per_channel:
        multiplier, shift = common.conv_multipliers(in_scale, w.scale, out_scale)
    else:
        m, s = fc_multiplier_per_tensor(in_scale, float(w.scale[0]), out_scale)
        multiplier, shift = np.array([m]), np.array([s])
    units = int(w.shape[0])
    sums = w.data.astype(np.int64).sum(axis=1)
    bias_t = optional_input(graph, op, 2)
    return FullyConnectedParams(
        -in_zp, out_zp, *common.fused_activation_range(graph, op), bool(w.per_channel), multiplier, shift,
        common.folded_bias(bias_t, units, sums, 0), common.folded_bias(bias_t, units, sums, -in_zp),
    )  # fmt: skip


def macs(graph: Graph, op: Op) -> int:
    return elements(output_tensor(graph, op).shape) * input_tensor(graph, op, 1).shape[1]


def check(graph: Graph, op: Op) -> str | None:
    problem = checks.arity(op, (2, 3)) or checks.io_int8(graph, op, 1)
    if problem:
        return problem
    x, w, y = input_tensor(graph, op, 0), input_tensor(graph, op, 1), output_tensor(graph, op)
    if len(w.shape) != 2:
        return "weights must be 2-D (units × depth)"
    if op.attrs.get("weights_format", "DEFAULT") != "DEFAULT":
        return f"weights format {op.attrs['weights_format']} is not supported"
    problem = checks.activation(op) or checks.weights_and_bias(graph, op, w.shape[0], 0)
    if problem:
        return problem
    b = optional_input(graph, op, 2)
    if not w.per_channel and b is not None:
        # GetQuantizedConvolutionMultipler refuses a bias scale far from input × weight scale.
        bias_scale = float(b.scale[0]) if b.scale.size else 0.0
        product = float(x.scale[0]) * float(w.scale[0])
        if abs(product - bias_scale) / float(y.scale[0]) > 0.02:
            return f"bias scale {bias_scale:.6g} is not input scale × weight scale ({product:.6g})"
    depth = w.shape[1]
    count = elements(x.shape)
    if len(x.shape) == 0 or count % depth:
        return f"input of shape {list(x.shape)} does not split into rows of depth {depth}"
    if op.attrs.get("keep_num_dims"):
        if x.shape[-1] != depth:
            return f"input's last dimension {x.shape[-1]} is not the weights' depth {depth}"
        return checks.shape_is(y, (*x.shape[:-1], w.shape[0]))
    if elements(y.shape) != count // depth * w.shape[0] or y.shape[-1] != w.shape[0]:
        return f"output has shape {list(y.shape)}, expected {[count // depth, w.shape[0]]}"
    return None


CHECKS = {"FULLY_CONNECTED": check}
PREPARE = {"FULLY_CONNECTED": prepare}
MACS = {"FULLY_CONNECTED": macs}
