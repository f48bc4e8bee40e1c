"""Per-op structural checks: arity, dtypes, quantization, and output shapes implied by attributes.

``check_op(graph, op)`` returns None when the op is well formed, else a short description of
the first problem. It checks what TFLite Micro's Prepare functions check and what our kernels
rely on, so the simulator never meets an op it would crash on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mcu_effnet.graph.ir import Graph, Op, Tensor

_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


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


def _t(graph: Graph, op: Op, k: int) -> Tensor | None:
    if k >= len(op.inputs) or op.inputs[k] < 0:
        return None
    return graph.tensors[op.inputs[k]]


def _quantized_int8(t: Tensor, what: str) -> str | None:
    if t.dtype != "int8":
        return f"{what} '{t.name}' is {t.dtype}, expected int8"
    if t.scale.size != 1 or t.zero_point.size != 1:
        return f"{what} '{t.name}' needs one scale and zero point (has {t.scale.size})"
    if not (np.isfinite(t.scale[0]) and t.scale[0] > 0):
        return f"{what} '{t.name}' has scale {t.scale[0]}"
    if not -128 <= int(t.zero_point[0]) <= 127:
        return f"{what} '{t.name}' has zero point {int(t.zero_point[0])} outside int8"
    return None


def _arity(op: Op, n_in: tuple[int, ...], n_out: int = 1) -> str | None:
    if len(op.inputs) not in n_in:
        return f"has {len(op.inputs)} inputs, expected {' or '.join(map(str, n_in))}"
    if len(op.outputs) != n_out:
        return f"has {len(op.outputs)} outputs, expected {n_out}"
    return None


def _io_int8(graph: Graph, op: Op, data_inputs: int) -> str | None:
    for k in range(data_inputs):
        t = _t(graph, op, k)
        if t is None:
            return f"input {k} is missing"
        problem = _quantized_int8(t, f"input {k}")
        if problem:
            return problem
    for k, i in enumerate(op.outputs):
        problem = _quantized_int8(graph.tensors[i], f"output {k}")
        if problem:
            return problem
    return None


def _shape_is(t: Tensor, shape: tuple[int, ...], what: str = "output") -> str | None:
    if tuple(t.shape) != tuple(shape):
        return f"{what} '{t.name}' has shape {list(t.shape)}, expected {list(shape)}"
    return None


def _activation(op: Op) -> str | None:
    act = op.attrs.get("fused_activation_function", "NONE")
    if act not in _ACTIVATIONS:
        return f"fused activation {act} is not supported on int8"
    return None


def _weights_and_bias(graph: Graph, op: Op, channels: int, axis: int) -> str | None:
    w = _t(graph, op, 1)
    if w is None or not w.is_constant or w.dtype != "int8":
        return "weights must be a constant int8 tensor"
    if w.scale.size not in (1, channels) or (w.scale.size > 1 and w.quantized_dimension != axis):
        return f"weights have {w.scale.size} scales on axis {w.quantized_dimension}, expected 1 or {channels} on axis {axis}"
    if not np.all(np.isfinite(w.scale)) or np.any(w.scale <= 0):
        return "weights have non-positive scales"
    if np.any(w.zero_point != 0):
        return "weights must be symmetric (zero point 0)"
    b = _t(graph, op, 2)
    if b is not None:
        if not b.is_constant or b.dtype != "int32":
            return "bias must be a constant int32 tensor"
        if b.data.size != channels:
            return f"bias has {b.data.size} values for {channels} output channels"
    return None


def _window_attrs(op: Op, dilation: bool) -> str | None:
    a = op.attrs
    if a.get("padding") not in ("SAME", "VALID"):
        return f"padding {a.get('padding')} unknown"
    keys = ["stride_h", "stride_w"] + (["dilation_h_factor", "dilation_w_factor"] if dilation else [])
    for key in keys:
        if not isinstance(a.get(key), int) or not 1 <= a[key] <= 1024:
            return f"{key} = {a.get(key)} (must be >= 1)"
    return _activation(op)


def _conv(graph: Graph, op: Op) -> str | None:
    problem = _arity(op, (2, 3)) or _io_int8(graph, op, 1)
    if problem:
        return problem
    x, w, y = _t(graph, op, 0), _t(graph, op, 1), graph.tensors[op.outputs[0]]
    if len(x.shape) != 4 or len(w.shape) != 4:
        return "input and weights must be 4-D (NHWC, OHWI)"
    problem = _window_attrs(op, True) or _weights_and_bias(graph, op, w.shape[0], 0)
    if problem:
        return problem
    if w.shape[3] == 0 or x.shape[3] % w.shape[3]:
        return f"input has {x.shape[3]} channels, weights expect {w.shape[3]}"
    if x.shape[3] != w.shape[3]:
        return "grouped convolution is not supported"
    a = op.attrs
    oh = conv_output_size(x.shape[1], w.shape[1], a["stride_h"], a["dilation_h_factor"], a["padding"])
    ow = conv_output_size(x.shape[2], w.shape[2], a["stride_w"], a["dilation_w_factor"], a["padding"])
    if oh < 1 or ow < 1:
        return "the filter is larger than the input"
    return _shape_is(y, (x.shape[0], oh, ow, w.shape[0]))


def _depthwise(graph: Graph, op: Op) -> str | None:
    problem = _arity(op, (2, 3)) or _io_int8(graph, op, 1)
    if problem:
        return problem
    x, w, y = _t(graph, op, 0), _t(graph, op, 1), graph.tensors[op.outputs[0]]
    if len(x.shape) != 4 or len(w.shape) != 4 or w.shape[0] != 1:
        return "input must be 4-D NHWC and weights 1×H×W×C"
    problem = _window_attrs(op, True) or _weights_and_bias(graph, op, w.shape[3], 3)
    if problem:
        return problem
    mult = op.attrs.get("depth_multiplier")
    # TFLite Micro indexes output channels with the attribute, so it must agree with the shapes.
    if not isinstance(mult, int) or mult < 1 or x.shape[3] * mult != w.shape[3]:
        return f"depth_multiplier {mult} does not turn {x.shape[3]} input channels into {w.shape[3]}"
    a = op.attrs
    oh = conv_output_size(x.shape[1], w.shape[1], a["stride_h"], a["dilation_h_factor"], a["padding"])
    ow = conv_output_size(x.shape[2], w.shape[2], a["stride_w"], a["dilation_w_factor"], a["padding"])
    if oh < 1 or ow < 1:
        return "the filter is larger than the input"
    return _shape_is(y, (x.shape[0], oh, ow, w.shape[3]))


def _fully_connected(graph: Graph, op: Op) -> str | None:
    problem = _arity(op, (2, 3)) or _io_int8(graph, op, 1)
    if problem:
        return problem
    x, w, y = _t(graph, op, 0), _t(graph, op, 1), graph.tensors[op.outputs[0]]
    if len(w.shape) != 2:
        return "weights must be 2-D (units × depth)"
    if op.attrs.get("weights_format", "DEFAULT") != "DEFAULT":
        return f"weights format {op.attrs['weights_format']} is not supported"
    problem = _activation(op) or _weights_and_bias(graph, op, w.shape[0], 0)
    if problem:
        return problem
    b = _t(graph, op, 2)
    if not w.per_channel and b is not None:
        # GetQuantizedConvolutionMultipler refuses a bias scale far from input × weight scale.
        bias_scale = float(b.scale[0]) if b.scale.size else 0.0
        product = float(x.scale[0]) * float(w.scale[0])
        if abs(product - bias_scale) / float(y.scale[0]) > 0.02:
            return f"bias scale {bias_scale:.6g} is not input scale × weight scale ({product:.6g})"
    depth = w.shape[1]
    elements = int(np.prod(x.shape, dtype=np.int64))
    if len(x.shape) == 0 or elements % depth:
        return f"input of shape {list(x.shape)} does not split into rows of depth {depth}"
    if op.attrs.get("keep_num_dims"):
        if x.shape[-1] != depth:
            return f"input's last dimension {x.shape[-1]} is not the weights' depth {depth}"
        return _shape_is(y, (*x.shape[:-1], w.shape[0]))
    if int(np.prod(y.shape, dtype=np.int64)) != elements // depth * w.shape[0] or y.shape[-1] != w.shape[0]:
        return f"output has shape {list(y.shape)}, expected {[elements // depth, w.shape[0]]}"
    return None


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """numpy-style broadcast of two shapes, or None if they do not broadcast."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        return None


def _binary(graph: Graph, op: Op) -> str | None:
    problem = _arity(op, (2,)) or _io_int8(graph, op, 2) or _activation(op)
    if problem:
        return problem
    a, b, y = _t(graph, op, 0), _t(graph, op, 1), graph.tensors[op.outputs[0]]
    if len(a.shape) > 5 or len(b.shape) > 5:
        return "inputs of rank above 5 are not supported"
    shape = broadcast_shape(a.shape, b.shape)
    if shape is None:
        return f"input shapes {list(a.shape)} and {list(b.shape)} do not broadcast"
    if tuple(a.shape) != tuple(b.shape) and len(shape) > 4:
        return (
            "broadcasting is supported up to rank 4 (TFLite Micro's BroadcastAdd4DSlow / BroadcastMul4DSlow)"
        )
    return _shape_is(y, shape)


def _same_quant(graph: Graph, op: Op, what: str) -> str | None:
    x, y = _t(graph, op, 0), graph.tensors[op.outputs[0]]
    if abs(float(x.scale[0]) - float(y.scale[0])) > 1e-6 or int(x.zero_point[0]) != int(y.zero_point[0]):
        return f"{what} needs the same scale and zero point on input and output"
    return None


def _pool(graph: Graph, op: Op) -> str | None:
    problem = _arity(op, (1,)) or _io_int8(graph, op, 1)
    if problem:
        return problem
    x, y = _t(graph, op, 0), graph.tensors[op.outputs[0]]
    if len(x.shape) != 4:
        return "input must be 4-D NHWC"
    problem = _window_attrs(op, False)
    if problem:
        return problem
    a = op.attrs
    for key in ("filter_height", "filter_width"):
        if not isinstance(a.get(key), int) or not 1 <= a[key] <= 4096:
            return f"{key} = {a.get(key)} (must be >= 1)"
    oh = conv_output_size(x.shape[1], a["filter_height"], a["stride_h"], 1, a["padding"])
    ow = conv_output_size(x.shape[2], a["filter_width"], a["stride_w"], 1, a["padding"])
    if oh < 1 or ow < 1:
        return "the pooling window is larger than the input"
    return _same_quant(graph, op, "pooling") or _shape_is(y, (x.shape[0], oh, ow, x.shape[3]))


def _const_int32(graph: Graph, op: Op, k: int, what: str) -> tuple[np.ndarray | None, str | None]:
    t = _t(graph, op, k)
    if t is None or not t.is_constant or t.dtype not in ("int32", "int64"):
        return None, f"{what} must be a constant int32 tensor"
    return t.data.astype(np.int64), None


def _mean(graph: Graph, op: Op) -> str | None:
    problem = _arity(op, (2,)) or _io_int8(graph, op, 1)
    if problem:
        return problem
    axes, problem = _const_int32(graph, op, 1, "axes")
    if problem:
        return problem
    x, y = _t(graph, op, 0), graph.tensors[op.outputs[0]]
    rank = len(x.shape)
    if rank == 0:
        return "input must have at least one dimension"
    flat = [int(a) for a in axes.reshape(-1)]
    if any(not -rank <= a < rank for a in flat):
        return f"axes {flat} are out of range for rank {rank}"
    norm = sorted({a % rank for a in flat})
    if op.attrs.get("keep_dims"):
        expected = tuple(1 if i in norm else d for i, d in enumerate(x.shape))
    else:
        expected = tuple(d for i, d in enumerate(x.shape) if i not in norm)
    return _shape_is(y, expected)


def _pad(graph: Graph, op: Op) -> str | None:
    problem = _arity(op, (2,)) or _io_int8(graph, op, 1)
    if problem:
        return problem
    pads, problem = _const_int32(graph, op, 1, "paddings")
    if problem:
        return problem
    x, y = _t(graph, op, 0), graph.tensors[op.outputs[0]]
    if pads.shape != (len(x.shape), 2):
        return f"paddings have shape {list(pads.shape)}, expected [{len(x.shape)}, 2]"
    if np.any(pads < 0) or np.any(pads > 4096):
        return "paddings must be between 0 and 4096"
    if len(x.shape) > 5:
        return "inputs of rank above 5 are not supported"
    return _shape_is(y, tuple(int(d + p[0] + p[1]) for d, p in zip(x.shape, pads, strict=True)))


def _reshape(graph: Graph, op: Op) -> str | None:
    problem = _arity(op, (1, 2)) or _io_int8(graph, op, 1)
    if problem:
        return problem
    x, y = _t(graph, op, 0), graph.tensors[op.outputs[0]]
    if int(np.prod(x.shape, dtype=np.int64)) != int(np.prod(y.shape, dtype=np.int64)):
        return f"cannot reshape {list(x.shape)} into {list(y.shape)}"
    return None


def _elementwise(graph: Graph, op: Op) -> str | None:
    problem = _arity(op, (1,)) or _io_int8(graph, op, 1)
    if problem:
        return problem
    return _shape_is(graph.tensors[op.outputs[0]], _t(graph, op, 0).shape)


def _softmax(graph: Graph, op: Op) -> str | None:
    problem = _elementwise(graph, op)
    if problem:
        return problem
    y = graph.tensors[op.outputs[0]]
    if int(y.zero_point[0]) != -128 or float(np.float32(y.scale[0])) != float(np.float32(1.0 / 256)):
        return "int8 SOFTMAX needs output scale 1/256 and zero point -128"
    beta = op.attrs.get("beta", 1.0)
    if not isinstance(beta, float | int) or not np.isfinite(beta) or beta <= 0:
        return f"beta = {beta} (must be positive)"
    return None


def _logistic(graph: Graph, op: Op) -> str | None:
    problem = _elementwise(graph, op)
    if problem:
        return problem
    if int(graph.tensors[op.outputs[0]].zero_point[0]) != -128:
        return "int8 LOGISTIC needs output zero point -128"
    return None


def _concatenation(graph: Graph, op: Op) -> str | None:
    if len(op.outputs) != 1 or not op.inputs:
        return "needs at least one input and exactly one output"
    problem = _io_int8(graph, op, len(op.inputs))
    if problem:
        return problem
    if op.attrs.get("fused_activation_function", "NONE") != "NONE":
        return "a fused activation on CONCATENATION is not supported (TFLite Micro refuses it)"
    if len(op.inputs) > 10:
        return f"{len(op.inputs)} inputs, TFLite Micro takes at most 10"
    y = graph.tensors[op.outputs[0]]
    for i in op.inputs:
        t = graph.tensors[i]
        if float(t.scale[0]) != float(y.scale[0]) or int(t.zero_point[0]) != int(y.zero_point[0]):
            return f"input '{t.name}' is quantized differently from the output (int8 CONCATENATION cannot rescale)"
    shapes = [graph.tensors[i].shape for i in op.inputs]
    rank = len(shapes[0])
    axis = op.attrs.get("axis", 0)
    if rank == 0 or not isinstance(axis, int) or not -rank <= axis < rank:
        return f"axis {axis} is out of range for rank {rank}"
    axis %= rank
    for s in shapes:
        if len(s) != rank or any(s[d] != shapes[0][d] for d in range(rank) if d != axis):
            return f"input shapes {[list(s) for s in shapes]} do not concatenate on axis {axis}"
    expected = list(shapes[0])
    expected[axis] = sum(s[axis] for s in shapes)
    return _shape_is(graph.tensors[op.outputs[0]], tuple(expected))


_CHECKS: dict[str, Callable[[Graph, Op], str | None]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _binary,
    "MUL": _binary,
    "MEAN": _mean,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "PAD": _pad,
    "RESHAPE": _reshape,
    "SOFTMAX": _softmax,
    "LOGISTIC": _logistic,
    "HARD_SWISH": _elementwise,
    "RELU": _elementwise,
    "RELU6": _elementwise,
    "QUANTIZE": _elementwise,
    "CONCATENATION": _concatenation,
}


def check_op(graph: Graph, op: Op) -> str | None:
    """None if the op is well formed for mcu-effnet, else what is wrong with it."""
    check = _CHECKS.get(op.kind)
    return check(graph, op) if check else f"no checks for {op.kind}"
