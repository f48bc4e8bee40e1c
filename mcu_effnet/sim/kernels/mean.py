"""MEAN, int8, as TFLite Micro's ``reference_ops::QuantizedMeanOrSum<int8_t, int32_t>``.

TFLite Micro has one int8 path for every axis set (the 4-D axes-(1, 2) special case is
float-only), whether or not input and output share a scale: int32 sums over the reduced
axes, minus ``zero_point * count``, then ``MultiplyByQuantizedMultiplier`` with the
multiplier of ``input_scale / output_scale`` folded with ``1 / count``: the multiplier is
shifted left by ``floor(log2(count))`` (at most 32 and at most ``31 + shift``) and
integer-divided by ``count``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.sim import fixedpoint as fp
from mcu_effnet.sim.requantize import multiply_by_quantized_multiplier, quantize_multiplier


@dataclass(frozen=True)
class MeanParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int  # already folded with 1 / count
    shift: int
    count: int

    @classmethod
    @functools.lru_cache(maxsize=1024)  # one entry per op: Prepare runs once in TFLite Micro too
    def from_quantization(
        cls,
        input_scale: float,
        input_zero_point: int,
        output_scale: float,
        output_zero_point: int,
        count: int,
    ) -> MeanParams:
        multiplier, shift = quantize_multiplier(
            float(np.float32(input_scale)) / float(np.float32(output_scale))
        )
        multiplier, shift = int(multiplier), int(shift)
        if count > 0:
            count_shift = min(count.bit_length() - 1, 32, 31 + shift)
            multiplier = (multiplier << count_shift) // count
            shift -= count_shift
        return cls(int(input_zero_point), int(output_zero_point), multiplier, shift, count)


def resolve_axes(axes: np.ndarray, rank: int) -> tuple[int, ...]:
    """Negative axes counted from the end, duplicates dropped, order kept (ResolveAxis)."""
    resolved: list[int] = []
    for axis in np.asarray(axes, dtype=np.int64).reshape(-1):
        current = int(axis) + rank if axis < 0 else int(axis)
        if not 0 <= current < rank:
            raise ValueError(f"axis {int(axis)} is out of range for rank {rank}")
        if current not in resolved:
            resolved.append(current)
    return tuple(resolved)


def mean_int8(x: np.ndarray, axes: tuple[int, ...], params: MeanParams) -> np.ndarray:
    """Reduce the given axes of x (keepdims); any leading batch is in x's own axes."""
    if params.count == 0:
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        return np.zeros(shape, dtype=np.int8)
    # The int32 accumulator: numpy's int32 sum wraps like the C++ one, in any order.
    total = x.sum(axis=axes, keepdims=True, dtype=np.int32).astype(np.int64)
    shifted_sum = fp.wrap_int32(total - params.input_zero_point * params.count)
    # The int32 overload of MultiplyByQuantizedMultiplier: its left shift wraps like the C++.
    out = multiply_by_quantized_multiplier(shifted_sum, params.multiplier, params.shift)
    return np.clip(out + params.output_zero_point, -128, 127).astype(np.int8)


def mean_kernel(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    src, dst = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if src.dtype != "int8" or dst.dtype != "int8":
        raise UserError(f"op {op.index} MEAN: only int8 -> int8 is supported, got {src.dtype} -> {dst.dtype}")
    x, axes_data = inputs[0], inputs[1]
    if axes_data is None:
        raise UserError(f"op {op.index} MEAN: the axes input must be a constant tensor")
    file_shape = tuple(int(d) for d in src.shape)
    try:
        axes = resolve_axes(axes_data, len(file_shape))
    except ValueError as exc:
        raise UserError(f"op {op.index} MEAN: {exc}") from None
    count = int(np.prod([file_shape[a] for a in axes], dtype=np.int64))
    params = MeanParams.from_quantization(
        float(src.scale[0]), int(src.zero_point[0]), float(dst.scale[0]), int(dst.zero_point[0]), count
    )
    # The batch axis stands in for the file's first dimension: view the array as
    # (batch, *file_shape) so every sample is reduced on its own, like TFLite Micro.
    batched = x.reshape((-1, *file_shape))
    reduced = mean_int8(batched, tuple(a + 1 for a in axes), params)
    out_shape = tuple(int(d) for d in dst.shape)
    return [reduced.reshape((-1, *out_shape[1:]) if out_shape else (-1,))]


KERNELS = {"MEAN": mean_kernel}
