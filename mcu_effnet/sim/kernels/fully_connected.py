"""FULLY_CONNECTED with per-tensor or per-channel int8 weights (TFLite Micro's reference kernels).

Rows of the input (its last axis of length ``depth``) are multiplied by the weights as one
BLAS matmul, exact for the same reason as in conv.py, the bias added and the int32
accumulators requantized (``mcu_effnet.ops.fully_connected.FullyConnectedParams``).
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.common import input_tensor, output_tensor
from mcu_effnet.ops.fully_connected import FullyConnectedParams
from mcu_effnet.sim.kernels.common import Kernel, cached, op_params
from mcu_effnet.sim.kernels.conv import FLOAT32_EXACT_K, finish_accumulator


def _weights_t(w: np.ndarray, wide: bool) -> np.ndarray:
    """(depth, units) in float32, or float64 when float32 could not sum a row exactly (always
    for int16 inputs, ``wide``)."""
    dtype = np.float32 if w.shape[1] <= FLOAT32_EXACT_K and not wide else np.float64
    return np.ascontiguousarray(w.astype(dtype).T)


def fully_connected(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p: FullyConnectedParams = op_params(graph, op)
    x = inputs[0]
    wide = x.dtype == np.int16
    weights_t = cached(graph, op, "weights", lambda: _weights_t(input_tensor(graph, op, 1).data, wide))
    depth, units = weights_t.shape
    rows = x.reshape(-1, depth).astype(weights_t.dtype)
    rows += weights_t.dtype.type(p.in_offset)
    acc = (rows @ weights_t).astype(np.int64)  # exact integers: no rounding needed
    acc += p.bias
    y = finish_accumulator(graph, op, acc, p.multiplier, p.shift, p.out_offset, p.act_min, p.act_max)
    if op.attrs.get("keep_num_dims"):
        return [y.reshape(*x.shape[:-1], units)]
    return [y.reshape(x.shape[0], *output_tensor(graph, op).shape[1:])]


KERNELS: dict[str, Kernel] = {"FULLY_CONNECTED": fully_connected}
