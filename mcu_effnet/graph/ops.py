"""The ops mcu-effnet runs, and the schema options table each one carries."""

from __future__ import annotations

# Order is the order shown to users in "unsupported op" messages.
SUPPORTED_OPS: tuple[str, ...] = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "ADD",
    "MUL",
    "MEAN",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "PAD",
    "RESHAPE",
    "SOFTMAX",
    "LOGISTIC",
    "HARD_SWISH",
    "RELU",
    "RELU6",
    "QUANTIZE",
    "CONCATENATION",
)

# Builtin options table of each op (ops absent here carry none). A mismatch means a corrupt file.
OPTIONS_TABLE: dict[str, str] = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "ADD": "AddOptions",
    "MUL": "MulOptions",
    "MEAN": "ReducerOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "PAD": "PadOptions",
    "RESHAPE": "ReshapeOptions",
    "SOFTMAX": "SoftmaxOptions",
    "HARD_SWISH": "HardSwishOptions",
    "QUANTIZE": "QuantizeOptions",
    "CONCATENATION": "ConcatenationOptions",
}
