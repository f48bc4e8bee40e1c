"""The ops mcu-effnet runs, and the schema options table each one carries."""

from __future__ import annotations

# Builtin options table of each op (None: it carries none); a mismatch means a corrupt file.
# Order is the order shown to users in "unsupported op" messages.
OPTIONS_TABLE: dict[str, str | None] = {
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
    "LOGISTIC": None,
    "HARD_SWISH": "HardSwishOptions",
    "RELU": None,
    "RELU6": None,
    "QUANTIZE": "QuantizeOptions",
    "CONCATENATION": "ConcatenationOptions",
    "SUB": "SubOptions",
    "MAXIMUM": "MaximumMinimumOptions",
    "MINIMUM": "MaximumMinimumOptions",
    "PRELU": None,
    "LEAKY_RELU": "LeakyReluOptions",
    "TANH": None,
    "SUM": "ReducerOptions",
    "REDUCE_MAX": "ReducerOptions",
    "TRANSPOSE_CONV": "TransposeConvOptions",
    "SQUEEZE": "SqueezeOptions",
    "EXPAND_DIMS": "ExpandDimsOptions",
    "TRANSPOSE": "TransposeOptions",
    "SLICE": "SliceOptions",
    "STRIDED_SLICE": "StridedSliceOptions",
    "PACK": "PackOptions",
    "UNPACK": "UnpackOptions",
    "SPLIT": "SplitOptions",
    "SPLIT_V": "SplitVOptions",
    "SPACE_TO_DEPTH": "SpaceToDepthOptions",
    "DEPTH_TO_SPACE": "DepthToSpaceOptions",
    "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
    "RESIZE_BILINEAR": "ResizeBilinearOptions",
    "DEQUANTIZE": "DequantizeOptions",
}
SUPPORTED_OPS: tuple[str, ...] = tuple(OPTIONS_TABLE)
