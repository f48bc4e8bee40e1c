"""What every op's Prepare shares: quantization lookups, TFLite's multiplier and activation
arithmetic, and the geometry of windowed ops (output size, SAME padding).

Everything here reproduces TFLite Micro's Prepare-time code in double precision (its default
build): ``QuantizeMultiplier`` from ``quantization_util.cc``, ``CalculateActivationRangeQuantized``
and the float32/double evaluation order of each op's real multiplier. The per-element
evaluation of those multipliers lives with the simulator (``mcu_effnet.sim.requantize``).
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph, Op, Tensor


def input_tensor(graph: Graph, op: Op, k: int) -> Tensor:
    return graph.tensors[op.inputs[k]]


def optional_input(graph: Graph, op: Op, k: int) -> Tensor | None:
    """Input k, or None when the op has fewer inputs or input k is omitted (index -1)."""
    if k >= len(op.inputs) or op.inputs[k] < 0:
        return None
    return graph.tensors[op.inputs[k]]


def output_tensor(graph: Graph, op: Op, k: int = 0) -> Tensor:
    return graph.tensors[op.outputs[k]]


def qparams(t: Tensor) -> tuple[float, int]:
    """Per-tensor (scale as float32-exact Python float, zero point) of an activation tensor."""
    return float(np.float32(t.scale[0])), int(t.zero_point[0])


def elements(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def refuse(op: Op, problem: str) -> UserError:
    """The error of an op its Prepare cannot take, naming the op."""
    return UserError(f"op {op.index} {op.kind}: {problem}")


def round_half_away(x: np.ndarray) -> np.ndarray:
    """C's `std::round`: halves go away from zero (numpy's `rint` would go to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_multiplier(real: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's ``QuantizeMultiplier``: a double multiplier as (int32 significand, power-of-two shift).

    ``real ≈ multiplier · 2^(shift − 31)``. Works element-wise on arrays (per-channel
    multipliers). Returns int64 arrays of the input's shape (0-d for a scalar); use ``int()``
    on them for scalars.
    """
    real = np.asarray(real, dtype=np.float64)
    q, shift = np.frexp(real)
    q_fixed = round_half_away(q * float(1 << 31)).astype(np.int64)
    shift = shift.astype(np.int64)
    # Rounding can carry q up to exactly 1.0: halve it and bump the exponent.
    carry = q_fixed == (1 << 31)
    q_fixed = np.where(carry, q_fixed // 2, q_fixed)
    shift = np.where(carry, shift + 1, shift)
    # Shifts below -31 would shift every bit out; TFLite flushes them to a zero multiplier.
    tiny = shift < -31
    q_fixed = np.where(tiny, 0, q_fixed)
    shift = np.where(tiny, 0, shift)
    zero = real == 0.0
    q_fixed = np.where(zero, 0, q_fixed)
    shift = np.where(zero, 0, shift)
    return q_fixed.astype(np.int64), shift.astype(np.int64)


def quantize_scalar_f32(value: float, scale: float, zero_point: int) -> int:
    """The ``Quantize`` helper of ``kernel_util.cc``: ``zp + round(value / scale)``, computed in float32."""
    tmp = np.float32(value) / np.float32(scale)
    return int(zero_point) + int(round_half_away(np.float64(tmp)))


def activation_range(
    activation: str, scale: float, zero_point: int, qmin: int = -128, qmax: int = 127
) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized``: the clamp of a fused activation on an int8 output."""
    if activation == "RELU":
        return max(qmin, quantize_scalar_f32(0.0, scale, zero_point)), qmax
    if activation == "RELU6":
        lo = max(qmin, quantize_scalar_f32(0.0, scale, zero_point))
        return lo, min(qmax, quantize_scalar_f32(6.0, scale, zero_point))
    if activation == "RELU_N1_TO_1":
        lo = max(qmin, quantize_scalar_f32(-1.0, scale, zero_point))
        return lo, min(qmax, quantize_scalar_f32(1.0, scale, zero_point))
    if activation in ("NONE", None):
        return qmin, qmax
    raise ValueError(f"fused activation {activation!r} has no int8 range")


def fused_activation_range(graph: Graph, op: Op) -> tuple[int, int]:
    """The clamp of the op's fused activation on its int8 (or int16) output."""
    y = output_tensor(graph, op)
    scale, zp = qparams(y)
    info = np.iinfo(np.dtype(y.dtype))
    try:
        return activation_range(
            op.attrs.get("fused_activation_function", "NONE"), scale, zp, int(info.min), int(info.max)
        )
    except ValueError as exc:
        raise refuse(op, str(exc)) from None


def conv_multipliers(
    input_scale: float, filter_scales: np.ndarray, output_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift) of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED.

    As ``PopulateConvolutionQuantizationParams``: each float32 scale is widened to double and
    ``input_scale · filter_scale / output_scale`` is evaluated in double, left to right.
    """
    real = (
        np.float64(np.float32(input_scale))
        * np.asarray(filter_scales, dtype=np.float32).astype(np.float64)
        / np.float64(np.float32(output_scale))
    )
    return quantize_multiplier(real)


def folded_bias(bias: Tensor | None, channels: int, weight_sums: np.ndarray, input_offset: int) -> np.ndarray:
    """bias + input_offset · (sum of each output channel's weights), in int64.

    A kernel that adds this once sums x · w alone inside the input and subtracts
    input_offset · w for padding taps: the accumulator TFLite Micro computes, bit for bit.
    """
    values = np.zeros(channels, np.int64) if bias is None else bias.data.astype(np.int64).reshape(-1)
    return values + int(input_offset) * weight_sums.astype(np.int64)


def conv_output_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """TFLite's ComputeOutSize: SAME keeps ceil(size / stride), VALID drops the partial windows."""
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - effective + stride) // stride


def same_padding(size: int, kernel: int, stride: int, dilation: int, out_size: int) -> int:
    """TFLite's ComputePaddingHeightWidth: the padding before the data (the extra one goes after)."""
    effective = (kernel - 1) * dilation + 1
    total = max((out_size - 1) * stride + effective - size, 0)
    return total // 2


def op_padding(graph: Graph, op: Op) -> tuple[int, int]:
    """(top, left) padding of a convolution or pooling op, as TFLite's Prepare computes it."""
    a = op.attrs
    if a.get("padding", "SAME") != "SAME":
        return 0, 0
    x, y = input_tensor(graph, op, 0), output_tensor(graph, op)
    pooling = "filter_height" in a  # the window: a pooling op's attributes, else the weights (OHWI, 1HWC)
    window = (a["filter_height"], a["filter_width"]) if pooling else input_tensor(graph, op, 1).shape[1:3]
    top, left = (
        same_padding(int(x.shape[d]), int(window[d - 1]), int(a.get(s, 1)), int(a.get(f, 1)), int(y.shape[d]))
        for d, s, f in ((1, "stride_h", "dilation_h_factor"), (2, "stride_w", "dilation_w_factor"))
    )
    return top, left
