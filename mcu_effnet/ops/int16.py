"""TFLite's 16x8 scheme: int16 activations (zero point 0), int8 weights, int64 or int32 biases.

The one place that says which ops take int16 activations and what changes for them, so that
the checks, Prepare, the simulator and the engine ask here instead of testing dtypes each on
their own. An op joins ``INT16_KINDS`` once its Prepare, simulator kernel and C kernel all
have an int16 path (see ``docs/ARCHITECTURE.md``, "16-bit activations").
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph, Op, Tensor

# Ops whose activations may be int16, every input and output alike (QUANTIZE also converts
# between int8 and int16).
INT16_KINDS: frozenset[str] = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "ADD",
        "MUL",
        "PAD",
        "RESHAPE",
        "CONCATENATION",
        "QUANTIZE",
        "MEAN",
        "SOFTMAX",
        "LOGISTIC",
        "TANH",
        "SUB",
        "LEAKY_RELU",
        "TRANSPOSE_CONV",
        # Data movement: TFLite Micro copies int16 elements as it copies int8 ones (its
        # SPACE_TO_DEPTH and DEPTH_TO_SPACE take int8 and float32 only).
        "SQUEEZE",
        "EXPAND_DIMS",
        "TRANSPOSE",
        "SLICE",
        "STRIDED_SLICE",
        "PACK",
        "UNPACK",
        "SPLIT",
        "SPLIT_V",
    }
)
ACTIVATION_DTYPES: tuple[str, ...] = ("int8", "int16")

# TensorType.INT32 in the schema: the value of the convolutions' ``quantized_bias_type`` option
# that asks for an int32 accumulator when the op has no bias tensor.
_SCHEMA_INT32 = 2


def limits(dtype: str) -> tuple[int, int]:
    """The value range of an activation type: (-128, 127) or (-32768, 32767)."""
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def allowed_dtypes(op: Op) -> tuple[str, ...]:
    """The activation types the op's checks accept."""
    return ACTIVATION_DTYPES if op.kind in INT16_KINDS else ("int8",)


def activation_dtype(graph: Graph, op: Op) -> str:
    """The element type of the op's first output (its activations)."""
    return graph.tensors[op.outputs[0]].dtype


def is_16x8(graph: Graph, op: Op) -> bool:
    """Does the op read or write an int16 activation?"""
    return any(
        i >= 0 and graph.tensors[i].dtype == "int16" and not graph.tensors[i].is_constant
        for i in op.inputs + op.outputs
    )


def accumulates_in_int64(graph: Graph, op: Op) -> bool:
    """A 16x8 CONV_2D / FULLY_CONNECTED accumulates in int64 (and requantizes with the int64
    ``MultiplyByQuantizedMultiplier``) unless its bias is int32, or, without a bias, its
    ``quantized_bias_type`` asks for int32. A 16x8 DEPTHWISE_CONV_2D or TRANSPOSE_CONV always
    does. int8 ops never do."""
    if graph.tensors[_data_input(op)].dtype != "int16":
        return False
    if op.kind in ("DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"):
        return True
    bias = op.inputs[2] if len(op.inputs) > 2 else -1
    if bias >= 0:
        return graph.tensors[bias].dtype == "int64"
    return op.attrs.get("quantized_bias_type", 0) != _SCHEMA_INT32


def bias_dtypes(graph: Graph, op: Op) -> tuple[str, ...]:
    """The bias types TFLite Micro takes for the op's activations."""
    if graph.tensors[_data_input(op)].dtype != "int16":
        return ("int32",)
    # Their 16x8 kernels read the bias as int64 whatever its type (TRANSPOSE_CONV's scratch
    # accumulators are int64 too).
    return ("int64",) if op.kind in ("DEPTHWISE_CONV_2D", "TRANSPOSE_CONV") else ("int64", "int32")


def _data_input(op: Op) -> int:
    """The activation input: TRANSPOSE_CONV's comes after its output shape and weights."""
    return op.inputs[2] if op.kind == "TRANSPOSE_CONV" else op.inputs[0]


def zero_point_problem(t: Tensor, what: str) -> str | None:
    if t.dtype == "int16" and t.zero_point.size and int(t.zero_point[0]) != 0:
        return f"{what} '{t.name}' is int16 with zero point {int(t.zero_point[0])}; the 16x8 scheme needs 0"
    return None
