"""The graph IR: what any int8 ``.tflite`` CNN becomes once loaded (see docs/ARCHITECTURE.md).

Tensors carry their quantization exactly as stored (float32 scales, int zero points);
ops carry their builtin name and attributes in plain Python types, so the simulator,
the memory planner and the code generator never touch the flatbuffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: "int8", "int32", "int16", "uint8", "float32", ...
    # Per-tensor quantization has one element; per-channel one per channel along `quantized_dimension`.
    # Both are empty for tensors without quantization (int32 shapes, for instance).
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    zero_point: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    quantized_dimension: int = 0
    data: np.ndarray | None = None  # constant contents (weights, biases, shapes), shaped like `shape`

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class Op:
    index: int
    kind: str  # builtin name as in TFLite's schema: "CONV_2D", "DEPTHWISE_CONV_2D", ...
    inputs: list[int]  # tensor indices; -1 marks an omitted optional input (e.g. no bias)
    outputs: list[int]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]  # in execution order
    inputs: list[int]
    outputs: list[int]
    name: str = ""
    description: str = ""
    # Model metadata entries (name -> raw bytes), e.g. class labels stored by our exporter.
    metadata: dict[str, bytes] = field(default_factory=dict)
    source: str = ""  # the file the graph was read from ("<bytes>" when loaded from memory)

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    @property
    def input_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.inputs]

    @property
    def output_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.outputs]
