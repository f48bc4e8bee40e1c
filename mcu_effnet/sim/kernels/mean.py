"""MEAN, int8 or int16, as TFLite Micro's ``reference_ops::QuantizedMeanOrSum<int8_t, int32_t>``
(``<int16_t, int32_t>`` for 16x8).

TFLite Micro has one int8 path for every axis set (the 4-D axes-(1, 2) special case is
float-only): int32 sums over the reduced axes, minus ``zero_point * count``, then
``MultiplyByQuantizedMultiplier`` with the multiplier already folded with ``1 / count``
(``mcu_effnet.ops.mean.MeanParams``).
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.common import input_tensor, output_tensor
from mcu_effnet.ops.mean import MeanParams
from mcu_effnet.sim import fixedpoint as fp
from mcu_effnet.sim.kernels.common import op_params
from mcu_effnet.sim.requantize import multiply_by_quantized_multiplier


def mean_int8(x: np.ndarray, axes: tuple[int, ...], p: MeanParams) -> np.ndarray:
    """Reduce the given axes of x (keepdims); any leading batch is in x's own axes. The
    result has x's type."""
    if p.count == 0:
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        return np.zeros(shape, dtype=x.dtype)
    # The int32 accumulator: numpy's int32 sum wraps like the C++ one, in any order.
    total = x.sum(axis=axes, keepdims=True, dtype=np.int32).astype(np.int64)
    shifted_sum = fp.wrap_int32(total - p.in_zero_point * p.count)
    # The int32 overload of MultiplyByQuantizedMultiplier: its left shift wraps like the C++.
    out = multiply_by_quantized_multiplier(shifted_sum, p.multiplier, p.shift)
    info = np.iinfo(x.dtype)  # int8, or int16 (16x8: EvalIntegerMean<int16_t>, same int32 sum)
    return np.clip(out + p.out_zero_point, int(info.min), int(info.max)).astype(x.dtype)


def mean_kernel(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    p: MeanParams = op_params(graph, op)
    file_shape = tuple(int(d) for d in input_tensor(graph, op, 0).shape)
    # The batch axis stands in for the file's first dimension: view the array as
    # (batch, *file_shape) so every sample is reduced on its own, like TFLite Micro.
    batched = inputs[0].reshape((-1, *file_shape))
    reduced = mean_int8(batched, tuple(a + 1 for a in p.axes), p)
    out_shape = tuple(int(d) for d in output_tensor(graph, op).shape)
    return [reduced.reshape((-1, *out_shape[1:]) if out_shape else (-1,))]


KERNELS = {"MEAN": mean_kernel}
