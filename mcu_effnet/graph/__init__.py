"""mcu_effnet.graph: the IR every int8 ``.tflite`` becomes, its loader and its checks (see docs/ARCHITECTURE.md)."""

from mcu_effnet.graph.ir import Graph, Op, Tensor
from mcu_effnet.graph.loader import load_tflite
from mcu_effnet.graph.ops import SUPPORTED_OPS

__all__ = ["Graph", "Op", "Tensor", "SUPPORTED_OPS", "load_tflite"]
