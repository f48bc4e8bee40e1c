"""FULLY_CONNECTED with per-tensor or per-channel int8 weights (TFLite Micro's reference kernels).

Rows of the input (its last axis of length ``depth``) are multiplied by the weights as one
BLAS matmul, exact for the same reason as in conv.py, the bias added and the int32
accumulators requantized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.sim.kernels.common import Kernel, cached, input_tensor, output_tensor, qparams
from mcu_effnet.sim.requantize import (
    Requantizer,
    activation_range,
    conv_multipliers,
    fc_multiplier_per_tensor,
)

_FLOAT32_EXACT_K = (1 << 24) // (255 * 128)


@dataclass(frozen=True)
class _Plan:
    in_zp: int
    out_zp: int
    weights_t: np.ndarray  # (depth, units), float32 or float64
    bias: np.ndarray | None
    requantizer: Requantizer
    act_min: int
    act_max: int


def _plan(graph: Graph, op: Op) -> _Plan:
    x_t, w_t, y_t = input_tensor(graph, op, 0), input_tensor(graph, op, 1), output_tensor(graph, op)
    in_scale, in_zp = qparams(x_t)
    out_scale, out_zp = qparams(y_t)
    if w_t.per_channel:
        multiplier, shift = conv_multipliers(in_scale, w_t.scale, out_scale)
    else:
        # The per-tensor path multiplies the scales in float32 first (GetQuantizedConvolutionMultipler).
        m, s = fc_multiplier_per_tensor(in_scale, float(w_t.scale[0]), out_scale)
        multiplier, shift = np.int64(m), np.int64(s)
    act_min, act_max = activation_range(op.attrs.get("fused_activation_function", "NONE"), out_scale, out_zp)
    depth = w_t.shape[1]
    dtype = np.float32 if depth <= _FLOAT32_EXACT_K else np.float64
    bias_index = op.inputs[2] if len(op.inputs) > 2 else -1
    bias = graph.tensors[bias_index].data.astype(np.int64) if bias_index >= 0 else None
    weights_t = np.ascontiguousarray(w_t.data.astype(dtype).T)
    return _Plan(in_zp, out_zp, weights_t, bias, Requantizer.create(multiplier, shift), act_min, act_max)


def fully_connected(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    plan = cached(graph, op, "fc", lambda: _plan(graph, op))
    x = inputs[0]
    depth, units = plan.weights_t.shape
    rows = x.reshape(-1, depth).astype(plan.weights_t.dtype)
    rows -= plan.weights_t.dtype.type(plan.in_zp)
    acc = (rows @ plan.weights_t).astype(np.int64)  # exact integers: no rounding needed
    if plan.bias is not None:
        acc += plan.bias
    y = plan.requantizer.to_int8(acc, plan.out_zp, plan.act_min, plan.act_max)
    if op.attrs.get("keep_num_dims"):
        return [y.reshape(*x.shape[:-1], units)]
    return [y.reshape(x.shape[0], *output_tensor(graph, op).shape[1:])]


KERNELS: dict[str, Kernel] = {"FULLY_CONNECTED": fully_connected}
