"""FULLY_CONNECTED with per-tensor or per-channel int8 weights (TFLite Micro's reference kernels).

Rows of the input (its last axis of length ``depth``) are multiplied by the weights as one
float64 matmul (exact, see conv.py), the bias added and the int32 accumulators requantized.
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.sim.kernels.common import Kernel, input_tensor, output_tensor, qparams
from mcu_effnet.sim.requantize import (
    activation_range,
    conv_multipliers,
    fc_multiplier_per_tensor,
    requantize_to_int8,
)


def fully_connected(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    x_t, w_t, y_t = input_tensor(graph, op, 0), input_tensor(graph, op, 1), output_tensor(graph, op)
    in_scale, in_zp = qparams(x_t)
    out_scale, out_zp = qparams(y_t)
    units, depth = w.shape
    rows = (x.reshape(-1, depth).astype(np.float64) - in_zp) @ w.astype(np.float64).T
    acc = np.rint(rows).astype(np.int64)
    if bias is not None:
        acc += bias.astype(np.int64)
    if w_t.per_channel:
        multiplier, shift = conv_multipliers(in_scale, w_t.scale, out_scale)
    else:
        # The per-tensor path multiplies the scales in float32 first (GetQuantizedConvolutionMultipler).
        multiplier, shift = fc_multiplier_per_tensor(in_scale, float(w_t.scale[0]), out_scale)
    act_min, act_max = activation_range(op.attrs.get("fused_activation_function", "NONE"), out_scale, out_zp)
    y = requantize_to_int8(acc, multiplier, shift, out_zp, act_min, act_max)
    if op.attrs.get("keep_num_dims"):
        return [y.reshape(*x.shape[:-1], units)]
    return [y.reshape(x.shape[0], *y_t.shape[1:])]


KERNELS: dict[str, Kernel] = {"FULLY_CONNECTED": fully_connected}
