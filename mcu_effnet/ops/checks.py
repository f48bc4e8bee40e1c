"""Structural checks every op family shares: arity, int8 quantization, shapes, fused activations.

Each returns None when the op is well formed, else a short description of the first problem.
They check what TFLite Micro's Prepare functions check and what our kernels rely on, so the
simulator and the engine never meet an op they would crash on.
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op, Tensor
from mcu_effnet.ops import int16
from mcu_effnet.ops.common import optional_input

_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def quantized_int8(t: Tensor, what: str, dtypes: tuple[str, ...] = ("int8",)) -> str | None:
    """A per-tensor quantized activation of one of ``dtypes`` (int16 ones with zero point 0)."""
    if t.dtype not in dtypes:
        return f"{what} '{t.name}' is {t.dtype}, expected {' or '.join(dtypes)}"
    if t.scale.size != 1 or t.zero_point.size != 1:
        return f"{what} '{t.name}' needs one scale and zero point (has {t.scale.size})"
    if not (np.isfinite(t.scale[0]) and t.scale[0] > 0):
        return f"{what} '{t.name}' has scale {t.scale[0]}"
    lo, hi = int16.limits(t.dtype)
    if not lo <= int(t.zero_point[0]) <= hi:
        return f"{what} '{t.name}' has zero point {int(t.zero_point[0])} outside {t.dtype}"
    return int16.zero_point_problem(t, what)


def arity(op: Op, n_in: tuple[int, ...], n_out: int = 1) -> str | None:
    if len(op.inputs) not in n_in:
        return f"has {len(op.inputs)} inputs, expected {' or '.join(map(str, n_in))}"
    if len(op.outputs) != n_out:
        return f"has {len(op.outputs)} outputs, expected {n_out}"
    return None


def io_int8(graph: Graph, op: Op, data_inputs: int) -> str | None:
    """The first ``data_inputs`` inputs and every output are quantized activations: int8, or
    int16 for the ops of ``int16.INT16_KINDS``, all of one type (QUANTIZE converts between them)."""
    dtypes = int16.allowed_dtypes(op)
    first = optional_input(graph, op, 0)
    for k in range(data_inputs):
        t = optional_input(graph, op, k)
        if t is None:
            return f"input {k} is missing"
        problem = quantized_int8(t, f"input {k}", dtypes)
        if problem:
            return problem
        if t.dtype != first.dtype:
            return f"input {k} '{t.name}' is {t.dtype}, input 0 is {first.dtype}"
    for k, i in enumerate(op.outputs):
        problem = quantized_int8(graph.tensors[i], f"output {k}", dtypes)
        if problem:
            return problem
        if graph.tensors[i].dtype != first.dtype and op.kind != "QUANTIZE":
            return f"output {k} is {graph.tensors[i].dtype}, the input {first.dtype}"
    return None


def shape_is(t: Tensor, shape: tuple[int, ...], what: str = "output") -> str | None:
    if tuple(t.shape) != tuple(shape):
        return f"{what} '{t.name}' has shape {list(t.shape)}, expected {list(shape)}"
    return None


def activation(op: Op) -> str | None:
    act = op.attrs.get("fused_activation_function", "NONE")
    if act not in _ACTIVATIONS:
        return f"fused activation {act} is not supported on int8"
    return None


def window_attrs(op: Op, dilation: bool) -> str | None:
    a = op.attrs
    if a.get("padding") not in ("SAME", "VALID"):
        return f"padding {a.get('padding')} unknown"
    keys = ["stride_h", "stride_w"] + (["dilation_h_factor", "dilation_w_factor"] if dilation else [])
    for key in keys:
        if not isinstance(a.get(key), int) or not 1 <= a[key] <= 1024:
            return f"{key} = {a.get(key)} (must be >= 1)"
    return activation(op)


def const_int32(graph: Graph, op: Op, k: int, what: str) -> tuple[np.ndarray | None, str | None]:
    t = optional_input(graph, op, k)
    if t is None or not t.is_constant or t.dtype not in ("int32", "int64"):
        return None, f"{what} must be a constant int32 tensor"
    return t.data.astype(np.int64), None


def unary(graph: Graph, op: Op) -> str | None:
    """One int8 input, one int8 output of the same shape."""
    problem = arity(op, (1,)) or io_int8(graph, op, 1)
    if problem:
        return problem
    return shape_is(graph.tensors[op.outputs[0]], optional_input(graph, op, 0).shape)


def weights_and_bias(graph: Graph, op: Op, channels: int, axis: int) -> str | None:
    """Constant symmetric int8 weights (one scale, or one per channel on ``axis``), int32 bias
    (int64 or int32 with int16 activations, as ``int16.bias_dtypes``)."""
    w = optional_input(graph, op, 1)
    if w is None or not w.is_constant or w.dtype != "int8":
        return "weights must be a constant int8 tensor"
    if w.scale.size not in (1, channels) or (w.scale.size > 1 and w.quantized_dimension != axis):
        return f"weights have {w.scale.size} scales on axis {w.quantized_dimension}, expected 1 or {channels} on axis {axis}"
    if not np.all(np.isfinite(w.scale)) or np.any(w.scale <= 0):
        return "weights have non-positive scales"
    if np.any(w.zero_point != 0):
        return "weights must be symmetric (zero point 0)"
    b = optional_input(graph, op, 2)
    if b is not None:
        allowed = int16.bias_dtypes(graph, op)
        if not b.is_constant or b.dtype not in allowed:
            return f"bias must be a constant {' or '.join(allowed)} tensor"
        if b.data.size != channels:
            return f"bias has {b.data.size} values for {channels} output channels"
    return None
