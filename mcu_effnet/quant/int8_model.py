"""The int8 model between the QCDQ pattern matcher and the flatbuffer writer.

Tensors are already in TFLite's layout (NHWC activations, OHWI / 1HWC filters) with the
exact float32 scales and integer zero points the file will hold; ops carry TFLite builtin
names and options. Nothing here knows about ONNX or flatbuffers, so the matcher and the
writer can be read (and tested) apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# ONNX NCHW axis -> NHWC axis, for rank-4 activations.
NCHW_TO_NHWC_AXIS = (0, 3, 1, 2)


def to_tflite_shape(onnx_shape: tuple[int, ...]) -> tuple[int, ...]:
    """NCHW → NHWC for rank-4 shapes; other ranks keep their order."""
    if len(onnx_shape) == 4:
        n, c, h, w = onnx_shape
        return (n, h, w, c)
    return tuple(onnx_shape)


def to_tflite_layout(array: np.ndarray) -> np.ndarray:
    """The same transform as ``to_tflite_shape``, applied to data (used by the check)."""
    return np.transpose(array, (0, 2, 3, 1)) if array.ndim == 4 else array


@dataclass
class QTensor:
    name: str
    shape: tuple[int, ...]  # TFLite layout
    dtype: str  # "int8" or "int32": the only types the writer emits
    scale: np.ndarray  # float32; one element per tensor, or one per channel along quantized_dimension
    zero_point: np.ndarray  # int64, same length as scale
    quantized_dimension: int = 0
    data: np.ndarray | None = None  # constant contents in TFLite layout, dtype == self.dtype
    quantized: bool = True  # False for int32 shape/axis operands (RESHAPE shape, MEAN axes, PAD paddings)
    # The ONNX QuantizeLinear output whose integers this tensor holds ("" for weights, biases and
    # tensors that are only a reshape or pad of another); the check reads the reference there.
    onnx_name: str = ""

    def same_quantization(self, other: QTensor) -> bool:
        return (
            self.dtype == other.dtype
            and np.array_equal(self.scale, other.scale)
            and np.array_equal(self.zero_point, other.zero_point)
        )


@dataclass
class QOp:
    kind: str  # TFLite builtin name, e.g. "CONV_2D"
    inputs: list[int]  # tensor indices; -1 for an omitted optional input
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the ONNX node(s) it comes from, for messages and reports


@dataclass
class InputBinding:
    """How an ONNX float input maps onto the int8 model input (for the export check)."""

    onnx_name: str
    onnx_shape: tuple[int, ...]
    tensor: int
    scale: float
    zero_point: int  # int8 zero point


@dataclass
class Int8Model:
    tensors: list[QTensor] = field(default_factory=list)
    ops: list[QOp] = field(default_factory=list)
    inputs: list[InputBinding] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    onnx_outputs: list[str] = field(default_factory=list)  # ONNX output names, same order as outputs
    notes: list[str] = field(default_factory=list)  # approximations worth telling the user about

    def add_tensor(self, tensor: QTensor) -> int:
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def add_op(self, op: QOp) -> None:
        self.ops.append(op)
