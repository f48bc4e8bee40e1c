"""A read-only view of a quantized (QCDQ or QDQ) ONNX model, prepared for pattern matching.

Brevitas' QCDQ export computes some constants with small subgraphs (the pads of a
``ZeroPad2d`` come out as ConstantOfShape → Concat → Reshape → Slice → Transpose → Cast),
and clamps int8 weights with a ``Clip`` on a constant. Everything whose inputs are all
constant is folded here with ONNX's reference evaluator, except ``DequantizeLinear``: the
int8 weight, its scale and zero point must stay apart, because the writer stores the
integers and the scales separately. A ``QuantizeLinear`` of a constant (onnxruntime's QDQ
quantizes float constants such as GELU's √2 that way) folds into the integers it computes,
leaving the ``DequantizeLinear`` after it as the weight pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from mcu_effnet.errors import UserError

# Never folded: the writer needs the integer tensor and its quantization parameters apart.
_KEEP_OPS = frozenset({"DequantizeLinear"})


@dataclass
class OnnxGraph:
    """Nodes in execution order, constants as numpy arrays, static shapes of every value."""

    path: str
    nodes: list[onnx.NodeProto]  # non-constant nodes, topologically sorted
    consts: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]
    inputs: list[str]  # graph inputs that are not initializers
    outputs: list[str]  # graph outputs that are not constants (Brevitas lists some scales as outputs)
    producer: dict[str, onnx.NodeProto] = field(default_factory=dict)
    consumers: dict[str, list[onnx.NodeProto]] = field(default_factory=dict)

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name) if name else None

    def is_const(self, name: str) -> bool:
        return bool(name) and name in self.consts

    def shape(self, name: str) -> tuple[int, ...]:
        if name in self.consts:
            return tuple(self.consts[name].shape)
        if name not in self.shapes:
            raise UserError(
                f"{self.path}: the shape of value '{name}' is unknown (export with a static input shape)"
            )
        return self.shapes[name]


def attr(node: onnx.NodeProto, name: str, default=None):
    """Attribute value of a node, in plain Python types."""
    for a in node.attribute:
        if a.name == name:
            value = onnx.helper.get_attribute_value(a)
            if isinstance(value, bytes):
                return value.decode()
            if isinstance(value, onnx.TensorProto):
                return numpy_helper.to_array(value)
            return value
    return default


def describe(node: onnx.NodeProto) -> str:
    """How a message names a node: ``node '/blocks/0/conv/Conv' (Conv)``."""
    return f"node '{node.name or node.output[0]}' ({node.op_type})"


def _static_shape(value_info: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for i, d in enumerate(t.shape.dim):
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif i == 0:
            dims.append(1)  # a symbolic batch dimension: the int8 model runs one sample at a time
        else:
            return None
    return tuple(dims)


def _fold(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    feeds = {name: consts[name] for name in node.input if name}
    return list(ReferenceEvaluator(node).run(None, feeds))


def _constant_value(node: onnx.NodeProto, path: str) -> np.ndarray:
    value = attr(node, "value")
    if value is None:
        for key in ("value_float", "value_int", "value_floats", "value_ints"):
            if attr(node, key) is not None:
                return np.array(attr(node, key))
        raise UserError(f"{path}: {describe(node)} has a constant kind the writer does not read")
    return np.asarray(value)


def load_onnx_graph(path: str | Path) -> OnnxGraph:
    """Loads, shape-infers and constant-folds an ONNX file; UserError when it cannot be read."""
    path = str(path)
    try:
        model = onnx.load(path)
    except FileNotFoundError as exc:
        raise UserError(f"{path}: no such file") from exc
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise UserError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from exc
    graph = model.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = _constant_value(node, path)
            continue
        inputs = [name for name in node.input if name]
        if node.op_type not in _KEEP_OPS and inputs and all(name in consts for name in inputs):
            for name, value in zip(node.output, _fold(node, consts), strict=False):
                consts[name] = np.asarray(value)
            continue
        nodes.append(node)

    used = {name for node in nodes for name in node.input}
    # Shapes are inferred after folding: a Pad whose pads come from a folded subgraph only
    # gets a static output shape once those pads are an initializer.
    folded = onnx.helper.make_model(
        onnx.helper.make_graph(
            nodes,
            graph.name or "g",
            [vi for vi in graph.input if vi.name not in consts],
            [vi for vi in graph.output if vi.name not in consts],
            [numpy_helper.from_array(v, k) for k, v in consts.items() if k in used],
        ),
        opset_imports=model.opset_import,
    )
    try:
        folded = onnx.shape_inference.infer_shapes(folded, strict_mode=False)
    except Exception as exc:
        raise UserError(f"{path}: ONNX shape inference failed: {exc}".splitlines()[0]) from exc
    shapes: dict[str, tuple[int, ...]] = {}
    fg = folded.graph
    for vi in list(fg.input) + list(fg.value_info) + list(fg.output):
        shape = _static_shape(vi)
        if shape is not None:
            shapes[vi.name] = shape

    producer = {out: node for node in nodes for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            if name:
                consumers.setdefault(name, []).append(node)

    inputs = [vi.name for vi in graph.input if vi.name not in consts]
    outputs = [vi.name for vi in graph.output if vi.name not in consts]
    return OnnxGraph(path, nodes, consts, shapes, inputs, outputs, producer, consumers)
