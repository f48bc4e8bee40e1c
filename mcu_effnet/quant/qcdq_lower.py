"""Pattern matching a quantized ONNX graph (Brevitas QCDQ or onnxruntime QDQ) into an ``Int8Model``.

A QCDQ graph computes in float between QuantizeLinear/DequantizeLinear pairs. Walking the
nodes in order, every ONNX value falls in one of these kinds:

* ``qval``: the integer output of a QuantizeLinear → an int8 tensor of the model;
* ``fval``: a float value that is exactly ``DQ(int8 tensor)`` (a DequantizeLinear output,
  or a Flatten/Reshape/Identity of one) → the same int8 tensor;
* ``padded``: a zero Pad of an ``fval`` (folded into the next conv when it is TF SAME,
  otherwise written as PAD, which fills with the zero point — the exact image of float 0);
* ``dq_const``: ``DQ(int constant)``: a weight or bias, kept as integers plus scales;
* ``pending``: the float result of a compute node (Conv, Gemm, Add, Mul, Sigmoid, mean…),
  possibly clamped by Relu/Clip, waiting for the QuantizeLinear that fixes its output
  scale and zero point. The int8 op is written when that QuantizeLinear is reached.

Because QuantizeLinear is monotone, ``Q(clip(y, lo, hi)) = clamp(Q(y), Q(lo), Q(hi))``: a
Relu/Clip before the output quantizer becomes a fused activation when TFLite's fused
RELU/RELU6/RELU_N1_TO_1 (or none) yields exactly that integer range.

The QDQ graphs onnxruntime's ``quantize_static`` writes are the same patterns without the
integer Clip between Q and DQ, so the one matcher takes both. Their differences are met
where they arise: activations may be uint8 (zero point z is int8 z - 128, exactly); biases
are int32 at input_scale x weight_scale already; a ReLU/ReLU6 whose range the calibrated
output quantizer covers is removed by onnxruntime, its clamp implied by an int8 zero point
of -128 (``_implied_activation``); Q of a float constant is folded by ``onnx_graph`` into a
weight-like DQ; BatchNormalization must have been folded into the convolution before
quantizing; weights may use -128, which TFLite's int8 spec reserves but TFLite Micro's
kernels compute exactly (a note says so).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import onnx

from mcu_effnet.errors import UserError
from mcu_effnet.quant.int8_model import (
    NCHW_TO_NHWC_AXIS,
    InputBinding,
    Int8Model,
    QOp,
    QTensor,
    to_tflite_layout,
    to_tflite_shape,
)
from mcu_effnet.quant.onnx_graph import OnnxGraph, attr, describe

LOGISTIC_SCALE = np.float32(1.0 / 256.0)
LOGISTIC_ZERO_POINT = -128

# Ops that accept a fused activation in TFLite (the others need the clamp to be a no-op).
_FUSABLE = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL"})

# Scope segments Brevitas adds inside a module; a tensor is named after the module above them.
_QUANT_SCOPE = re.compile(r"^((act|weight|bias|input|output)_quant(_\d+)?|export_handler|activation_impl)$")


def module_name(node: onnx.NodeProto) -> str:
    """PyTorch module path of a node from its ONNX scope name.

    torch names nodes ``/blocks/blocks.0/conv/Conv``: each scope segment is a child name,
    the full dotted path so far, or (inside nested containers) the previous segment followed
    by the child's name: ``/features/features.1/conv/conv.0/conv.0.2/Clip``. The results here
    are ``blocks.0.conv`` and ``features.1.conv.0.2``.
    """
    parts = [p for p in (node.name or "").split("/") if p]
    path: list[str] = []
    previous = ""
    for segment in parts[:-1]:  # the last segment is the op itself ("Conv", "Relu", ...)
        if _QUANT_SCOPE.match(segment):
            break
        joined = ".".join(path)
        if joined and segment.startswith(joined + "."):
            path = segment.split(".")
        elif previous and segment.startswith(previous + "."):
            path += segment[len(previous) + 1 :].split(".")
        else:
            path.append(segment)
        previous = segment
    return ".".join(path)


@dataclass
class DQConst:
    """``DequantizeLinear`` of an integer constant: a weight or a bias."""

    values: np.ndarray  # integers as stored (int8 weights, int32 biases)
    scale: np.ndarray  # float32, scalar or 1-D
    zero_point: np.ndarray
    axis: int
    node: onnx.NodeProto


@dataclass
class Pending:
    """A compute op whose output quantization is not known yet."""

    kind: str
    inputs: list[int]
    onnx_shape: tuple[int, ...]
    node: onnx.NodeProto
    options: dict[str, Any] = field(default_factory=dict)
    lo: float = -math.inf  # float clamp from Relu/Clip nodes between the op and its quantizer
    hi: float = math.inf
    clamp_nodes: tuple[onnx.NodeProto, ...] = ()
    # A Flatten/Reshape between the op and its quantizer: quantization commutes with it, so the
    # op is written with the quantizer's parameters and followed by a RESHAPE to this shape.
    reshape_to: tuple[int, ...] | None = None
    reshape_node: onnx.NodeProto | None = None


def _round_half_even_quantize(value: float, scale: np.float32, zero_point: int) -> float:
    """ONNX QuantizeLinear of one float (float32 division, round half to even), unsaturated."""
    if math.isinf(value):
        return value
    return float(np.rint(np.float32(value) / scale)) + zero_point


def _tflite_quantize(value: float, scale: np.float32, zero_point: int) -> int:
    """TFLite's ``Quantize`` used for fused activation bounds (float32 divide, round half away)."""
    q = np.float32(value) / scale
    return zero_point + int(math.copysign(math.floor(abs(float(q)) + 0.5), float(q)))


def fused_activation_for(lo: float, hi: float, scale: np.float32, zero_point: int) -> str | None:
    """The TFLite fused activation whose int8 clamp equals ``Q(clip(·, lo, hi))``, or None."""
    want_lo = int(min(max(_round_half_even_quantize(lo, scale, zero_point), -128), 127))
    want_hi = int(min(max(_round_half_even_quantize(hi, scale, zero_point), -128), 127))
    ranges = {
        "NONE": (-128, 127),
        "RELU": (max(-128, _tflite_quantize(0.0, scale, zero_point)), 127),
        "RELU6": (
            max(-128, _tflite_quantize(0.0, scale, zero_point)),
            min(127, _tflite_quantize(6.0, scale, zero_point)),
        ),
        "RELU_N1_TO_1": (
            max(-128, _tflite_quantize(-1.0, scale, zero_point)),
            min(127, _tflite_quantize(1.0, scale, zero_point)),
        ),
    }
    # Prefer the activation the float bounds name, so a Relu reads as RELU in Netron.
    named = {(0.0, math.inf): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}.get((lo, hi))
    order = ([named] if named else []) + ["RELU", "RELU6", "RELU_N1_TO_1", "NONE"]
    if (lo, hi) == (-math.inf, math.inf):
        order = ["NONE"]
    for name in order:
        if ranges[name] == (want_lo, want_hi):
            return name
    return None


def tf_same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow SAME padding (before, after) along one axis: the extra pixel goes after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class QCDQLowering:
    """Walks the ONNX nodes once and fills an ``Int8Model``. One instance per export."""

    def __init__(self, graph: OnnxGraph):
        self.g = graph
        self.m = Int8Model()
        self.qval: dict[str, int] = {}
        self.fval: dict[str, int] = {}
        self.padded: dict[str, tuple[int, tuple[int, int, int, int]]] = {}  # src, (top, left, bottom, right)
        self.dq_const: dict[str, DQConst] = {}
        self.pending: dict[str, Pending] = {}
        self.hard_sigmoid: dict[str, str] = {}  # HardSigmoid output -> its input
        # Tensors holding a C x H x W map flattened in NHWC order: tensor -> ONNX (CHW) index of
        # each element. Only a fully connected layer may read them (it permutes its weights).
        self.nhwc_flat: dict[int, np.ndarray] = {}
        self._materialized: dict[str, int] = {}
        self._names: set[str] = set()
        self._full_range_weights: list[str] = []  # layers whose int8 weights use -128

    # ------------------------------------------------------------------ entry
    def run(self) -> Int8Model:
        g = self.g
        op_types = {n.op_type for n in g.nodes}
        if "QuantizeLinear" not in op_types:
            raise UserError(
                f"{g.path}: a float ONNX model (no QuantizeLinear/DequantizeLinear): it needs QAT or "
                "calibration first (export it with brevitas export_onnx_qcdq, or quantize it with "
                "onnxruntime's quantize_static in QDQ format)"
            )
        if len(g.inputs) != 1:
            raise UserError(f"{g.path}: the writer takes models with one input, this one has {len(g.inputs)}")
        for node in g.nodes:
            handler = getattr(self, f"_op_{node.op_type}", None)
            if handler is None:
                raise UserError(f"{g.path}: {describe(node)} has no int8 TFLite equivalent in this writer")
            handler(node)
        for name in g.outputs:
            self.m.outputs.append(self._output_tensor(name))
            self.m.onnx_outputs.append(name)
        if not self.m.inputs:
            raise UserError(f"{g.path}: the model input never passes a QuantizeLinear")
        if self._full_range_weights:
            # TFLite's int8 spec keeps weights in [-127, 127] so that some optimized kernels
            # may pair products in 16 bits; TFLite Micro's reference kernels and CMSIS-NN widen
            # every product to 32 bits, so -128 computes exactly there (the check runs it).
            layers = ", ".join(self._full_range_weights)
            self.m.notes.append(
                f"int8 weights use -128 ({layers}): outside TFLite's symmetric range [-127, 127], which "
                "TFLite Micro's kernels compute exactly but other TFLite runtimes may not"
            )
        self._drop_dead_ops()
        return self.m

    # ------------------------------------------------------------------ helpers
    def _fail(self, node: onnx.NodeProto, why: str) -> UserError:
        return UserError(f"{self.g.path}: {describe(node)}: {why}")

    def _unique(self, name: str) -> str:
        name = name or "tensor"
        candidate, k = name, 1
        while candidate in self._names:
            candidate = f"{name}_{k}"
            k += 1
        self._names.add(candidate)
        return candidate

    def _activation(
        self, name: str, shape: tuple[int, ...], scale: np.float32, zero_point: int, qnode: onnx.NodeProto
    ) -> int:
        """A new int8 activation tensor holding the integers of ``qnode``'s output."""
        return self.m.add_tensor(
            QTensor(
                name=self._unique(name),
                shape=to_tflite_shape(shape),
                dtype="int8",
                scale=np.array([scale], dtype=np.float32),
                zero_point=np.array([zero_point], dtype=np.int64),
                onnx_name=qnode.output[0],
            )
        )

    def _int32_operand(self, name: str, values) -> int:
        data = np.asarray(values, dtype=np.int32)
        return self.m.add_tensor(
            QTensor(
                name=self._unique(name),
                shape=tuple(data.shape),
                dtype="int32",
                scale=np.zeros(0, np.float32),
                zero_point=np.zeros(0, np.int64),
                data=data,
                quantized=False,
            )
        )

    def _act_params(self, node: onnx.NodeProto) -> tuple[np.float32, int]:
        """Per-tensor scale and int8 zero point of an activation Q/DQ node."""
        scale = self.g.const(node.input[1])
        zp = self.g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else np.uint8(0)
        if scale is None or zp is None:
            raise self._fail(node, "scale and zero point must be constants")
        if scale.size != 1 or np.asarray(zp).size != 1:
            raise self._fail(node, "per-channel activation quantization has no TFLite int8 equivalent")
        zp = np.asarray(zp)
        if zp.dtype == np.uint8:
            zero_point = int(zp.reshape(())) - 128  # uint8 zp z is int8 zp z-128, exactly
        elif zp.dtype == np.int8:
            zero_point = int(zp.reshape(()))
        else:
            raise self._fail(
                node, f"{zp.dtype} activations are not int8 (only 8-bit activations are written)"
            )
        s = np.float32(scale.reshape(()))
        if not (s > 0 and np.isfinite(s)):
            raise self._fail(node, f"scale {float(s)} is not a positive finite number")
        return s, zero_point

    def _float_source(self, name: str, node: onnx.NodeProto, flattened_ok: bool = False) -> int:
        """The int8 tensor behind a float input of ``node``; writes a PAD when the input is padded."""
        if name in self.fval:
            src = self.fval[name]
            if src in self.nhwc_flat and not flattened_ok:
                raise self._fail(
                    node,
                    f"input '{name}' is a C x H x W map flattened in NCHW order; in NHWC only a "
                    "fully connected layer can read it (by permuting its weights)",
                )
            return src
        if name in self.padded:
            return self._materialize_pad(name)
        raise self._not_quantized(name, node)

    def _not_quantized(self, name: str, node: onnx.NodeProto) -> UserError:
        if name in self.pending:
            prod = self.pending[name].node
            return self._fail(
                node, f"input '{name}' from {describe(prod)} is not quantized (no QuantizeLinear before it)"
            )
        if self.g.is_const(name):
            return self._fail(node, f"input '{name}' is a float constant; the writer needs quantized inputs")
        if name in self.hard_sigmoid:
            return self._fail(node, "HardSigmoid is only written as part of x·hardsigmoid(x) (HARD_SWISH)")
        return self._fail(node, f"input '{name}' is not quantized (no DequantizeLinear before it)")

    def _materialize_pad(self, name: str) -> int:
        if name in self._materialized:
            return self._materialized[name]
        src, (top, left, bottom, right) = self.padded[name]
        node = self.g.producer[name]
        t = self.m.tensors[src]
        shape = (t.shape[0], t.shape[1] + top + bottom, t.shape[2] + left + right, t.shape[3])
        out = self.m.add_tensor(
            replace(t, name=self._unique(module_name(node) or "pad"), shape=shape, data=None, onnx_name="")
        )
        paddings = self._int32_operand(
            self.m.tensors[out].name + ".paddings", [[0, 0], [top, bottom], [left, right], [0, 0]]
        )
        self.m.add_op(QOp("PAD", [src, paddings], [out], {}, node.name))
        self._materialized[name] = out
        return out

    def _output_tensor(self, name: str) -> int:
        index = self.fval.get(name, self.qval.get(name))
        if index is not None and index in self.nhwc_flat:
            raise UserError(
                f"{self.g.path}: model output '{name}' is a C x H x W map flattened in NCHW order, "
                "which the NHWC model cannot reproduce; pool to 1x1 before flattening"
            )
        if name in self.fval:
            return self.fval[name]
        if name in self.qval:
            return self.qval[name]
        if name in self.padded:
            return self._materialize_pad(name)
        if name in self.pending:
            raise self._fail(
                self.pending[name].node,
                f"model output '{name}' is float (no output quantizer): the int8 model needs quantized logits",
            )
        raise UserError(f"{self.g.path}: model output '{name}' is not a quantized value")

    def _drop_dead_ops(self) -> None:
        """Removes ops whose results reach no output (Brevitas exports some unused Q/DQ pairs),
        then the tensors nothing refers to any more, so the file holds no dead weights."""
        live = set(self.m.outputs)
        kept: list[QOp] = []
        for op in reversed(self.m.ops):
            if any(o in live for o in op.outputs):
                kept.append(op)
                live.update(i for i in op.inputs if i >= 0)
        self.m.ops = kept[::-1]
        used = sorted(live | {b.tensor for b in self.m.inputs})
        remap = {old: new for new, old in enumerate(used)}
        self.m.tensors = [self.m.tensors[i] for i in used]
        for op in self.m.ops:
            op.inputs = [remap[i] if i >= 0 else -1 for i in op.inputs]
            op.outputs = [remap[o] for o in op.outputs]
        for b in self.m.inputs:
            b.tensor = remap[b.tensor]
        self.m.outputs = [remap[o] for o in self.m.outputs]

    # ------------------------------------------------------------------ Q / DQ
    def _op_QuantizeLinear(self, node: onnx.NodeProto) -> None:
        x, out = node.input[0], node.output[0]
        scale, zp = self._act_params(node)
        if x in self.g.inputs:
            shape = self.g.shape(x)
            if len(shape) != 4:
                raise self._fail(node, f"model input has shape {shape}; an NCHW image input is expected")
            idx = self._activation(module_name(node) or "input", shape, scale, zp, node)
            self.m.inputs.append(InputBinding(x, shape, idx, float(scale), zp))
            self.qval[out] = idx
        elif x in self.pending:
            self.qval[out] = self._emit(self.pending[x], node, scale, zp)
        elif x in self.fval or x in self.padded:
            src = self._float_source(x, node, flattened_ok=True)
            t = self.m.tensors[src]
            if t.scale[0] == scale and t.zero_point[0] == zp:
                self.qval[out] = src  # Q(DQ(q)) with the same parameters is q itself
            else:
                dst = self._activation(module_name(node), self.g.shape(x), scale, zp, node)
                self.m.add_op(QOp("QUANTIZE", [src], [dst], {}, node.name))
                if src in self.nhwc_flat:  # element-wise: the order carries over
                    self.nhwc_flat[dst] = self.nhwc_flat[src]
                self.qval[out] = dst
        elif x in self.g.producer:
            raise self._not_quantized(x, node)
        else:
            raise self._fail(node, f"quantizes '{x}', which is neither the model input nor a computed value")

    def _op_DequantizeLinear(self, node: onnx.NodeProto) -> None:
        x, out = node.input[0], node.output[0]
        if self.g.is_const(x):
            scale = self.g.const(node.input[1])
            zp = (
                self.g.const(node.input[2])
                if len(node.input) > 2 and node.input[2]
                else np.zeros((), np.int64)
            )
            if scale is None or zp is None:
                raise self._fail(node, "scale and zero point must be constants")
            self.dq_const[out] = DQConst(
                self.g.const(x),
                np.asarray(scale, np.float32),
                np.asarray(zp),
                int(attr(node, "axis", 1)),
                node,
            )
            return
        if x not in self.qval:
            raise self._fail(node, f"dequantizes '{x}', which is not the output of a QuantizeLinear")
        scale, zp = self._act_params(node)
        t = self.m.tensors[self.qval[x]]
        if t.scale[0] != scale or t.zero_point[0] != zp:
            raise self._fail(node, "dequantizes with other parameters than its QuantizeLinear used")
        self.fval[out] = self.qval[x]

    # ------------------------------------------------------------------ emission
    def _emit(self, p: Pending, qnode: onnx.NodeProto, scale: np.float32, zp: int) -> int:
        """Writes the pending op now that its output quantizer ``qnode`` is known."""
        options = dict(p.options)
        if p.kind in _FUSABLE:
            fused = fused_activation_for(p.lo, p.hi, scale, zp)
            if fused == "NONE" and zp == -128:
                fused = self._implied_activation(scale, zp)
            if fused is None:
                clamp = p.clamp_nodes[-1]
                raise self._fail(
                    clamp,
                    f"{clamp.op_type} with min {p.lo:g} and max {p.hi:g} has no TFLite int8 equivalent "
                    f"(at output scale {float(scale):g}, zero point {zp})",
                )
            options["fused_activation"] = fused
        elif p.clamp_nodes:
            clamp = p.clamp_nodes[0]
            raise self._fail(
                clamp, f"{clamp.op_type} after {p.node.op_type} cannot be fused into a TFLite op"
            )
        if p.kind in ("LOGISTIC", "SOFTMAX") and (
            abs(float(scale) / float(LOGISTIC_SCALE) - 1.0) > 1e-6 or zp != LOGISTIC_ZERO_POINT
        ):
            raise self._fail(
                qnode,
                f"{p.node.op_type} output quantized with scale {float(scale):.9g} and zero point {zp}; TFLite's "
                f"int8 {p.kind} always outputs scale 1/256, zero point -128 (uint8 zero point 0); TFLite Micro "
                "would compute it wrongly without a word",
            )
        if p.kind in ("LOGISTIC", "SOFTMAX"):
            scale = LOGISTIC_SCALE  # store exactly 1/256, as the kernels assume
        if p.kind in ("RELU6", "RELU_N1_TO_1"):
            src = self.m.tensors[p.inputs[0]]
            if src.scale[0] != scale or src.zero_point[0] != zp:
                raise self._fail(p.node, f"standalone {p.kind} needs the same input and output quantization")
        name = module_name(qnode) or module_name(p.node) or p.node.op_type.lower()
        sources = ",".join([p.node.name] + [c.name for c in p.clamp_nodes] + [qnode.name])
        if p.reshape_to is None:
            out = self._activation(name, p.onnx_shape, scale, zp, qnode)
            self.m.add_op(QOp(p.kind, list(p.inputs), [out], options, sources))
            return out
        mid = self._activation(module_name(p.node) or name, p.onnx_shape, scale, zp, qnode)
        self.m.tensors[mid].onnx_name = ""  # ONNX holds only the reshaped integers
        self.m.add_op(QOp(p.kind, list(p.inputs), [mid], options, sources))
        out = self._activation(name, p.reshape_to, scale, zp, qnode)
        shape = list(to_tflite_shape(p.reshape_to))
        shape_t = self._int32_operand(self.m.tensors[out].name + ".shape", shape)
        assert p.reshape_node is not None
        self.m.add_op(QOp("RESHAPE", [mid, shape_t], [out], {"new_shape": shape}, p.reshape_node.name))
        return out

    @staticmethod
    def _implied_activation(scale: np.float32, zp: int) -> str:
        """An unsigned output quantizer (int8 zero point -128) clamps at real 0 by itself, and at
        real 6 too when 6 already saturates it: name that RELU6 / RELU, as the model meant it."""
        for hi in (6.0, math.inf):
            if _round_half_even_quantize(hi, scale, zp) >= 127:
                fused = fused_activation_for(0.0, hi, scale, zp)
                if fused is not None:
                    return fused
        return "NONE"

    # ------------------------------------------------------------------ clamps
    def _clip_bounds(self, node: onnx.NodeProto) -> tuple[float, float]:
        if node.op_type == "Relu":
            return 0.0, math.inf
        lo, hi = attr(node, "min", -math.inf), attr(node, "max", math.inf)
        if len(node.input) > 1 and node.input[1]:
            if not self.g.is_const(node.input[1]):
                raise self._fail(node, "min must be a constant")
            lo = float(self.g.const(node.input[1]))
        if len(node.input) > 2 and node.input[2]:
            if not self.g.is_const(node.input[2]):
                raise self._fail(node, "max must be a constant")
            hi = float(self.g.const(node.input[2]))
        return float(lo), float(hi)

    def _clamp(self, node: onnx.NodeProto) -> None:
        x, out = node.input[0], node.output[0]
        lo, hi = self._clip_bounds(node)
        if x in self.pending:
            p = self.pending[x]
            self.pending[out] = replace(
                p, lo=max(p.lo, lo), hi=min(p.hi, hi), clamp_nodes=(*p.clamp_nodes, node)
            )
        elif x in self.qval:
            # Integer Clip between Q and DQ: Brevitas' narrow-range or sub-8-bit activations.
            storage_lo, storage_hi = self._storage_range(x)
            if lo > storage_lo or hi < storage_hi:
                raise self._fail(
                    node,
                    f"Clip to [{lo:g}, {hi:g}] makes a narrow-range or sub-8-bit activation; TFLite int8 "
                    "activations use the full range [-128, 127]",
                )
            self.qval[out] = self.qval[x]
        elif x in self.fval or x in self.padded:
            kind = {(0.0, math.inf): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}.get((lo, hi))
            if kind is None:
                raise self._fail(
                    node, f"{node.op_type} with min {lo:g} and max {hi:g} has no TFLite int8 equivalent"
                )
            self.pending[out] = Pending(kind, [self._float_source(x, node)], self.g.shape(out), node)
        else:
            raise self._not_quantized(x, node)

    def _storage_range(self, qname: str) -> tuple[int, int]:
        qnode = self.g.producer[qname]
        zp = self.g.const(qnode.input[2]) if len(qnode.input) > 2 and qnode.input[2] else np.uint8(0)
        return (0, 255) if np.asarray(zp).dtype == np.uint8 else (-128, 127)

    _op_Relu = _clamp
    _op_Clip = _clamp

    # ------------------------------------------------------------------ element-wise and pooling
    def _pending(self, node: onnx.NodeProto, kind: str, inputs: list[int], **options) -> None:
        self.pending[node.output[0]] = Pending(kind, inputs, self.g.shape(node.output[0]), node, options)

    def _op_Sigmoid(self, node: onnx.NodeProto) -> None:
        self._pending(node, "LOGISTIC", [self._float_source(node.input[0], node)])

    def _op_Softmax(self, node: onnx.NodeProto) -> None:
        x = node.input[0]
        rank = len(self.g.shape(x))
        if attr(node, "axis", -1) % rank != rank - 1 or rank != 2:
            raise self._fail(node, "only a softmax over the last axis of [N, classes] is written (SOFTMAX)")
        self._pending(node, "SOFTMAX", [self._float_source(x, node)], beta=1.0)

    def _op_HardSwish(self, node: onnx.NodeProto) -> None:
        self._pending(node, "HARD_SWISH", [self._float_source(node.input[0], node)])

    def _op_HardSigmoid(self, node: onnx.NodeProto) -> None:
        # torch's Hardswish exports (opset < 14) as x * HardSigmoid(x, alpha=1/6, beta=1/2).
        alpha, beta = attr(node, "alpha", 0.2), attr(node, "beta", 0.5)
        if abs(alpha - 1 / 6) > 1e-6 or abs(beta - 0.5) > 1e-6:
            raise self._fail(
                node, f"HardSigmoid with alpha {alpha:g}, beta {beta:g} is not part of a hard swish"
            )
        self._float_source(node.input[0], node)  # must read a quantized value
        self.hard_sigmoid[node.output[0]] = node.input[0]

    def _binary_inputs(self, node: onnx.NodeProto) -> list[int]:
        a, b = node.input[0], node.input[1]
        ra, rb = len(self.g.shape(a)), len(self.g.shape(b))
        if ra != rb:
            raise self._fail(node, f"inputs of rank {ra} and {rb}: broadcasting across ranks is not written")
        return [self._float_source(a, node), self._float_source(b, node)]

    def _op_Mul(self, node: onnx.NodeProto) -> None:
        a, b = node.input[0], node.input[1]
        for gate, other in ((a, b), (b, a)):
            if gate in self.hard_sigmoid and self.hard_sigmoid[gate] == other:
                self._pending(node, "HARD_SWISH", [self._float_source(other, node)])
                return
        inputs = self._binary_inputs(node)
        s1, s2 = (float(self.m.tensors[i].scale[0]) for i in inputs)
        self._pending(node, "MUL", inputs, input_scale_product=s1 * s2)

    def _op_Add(self, node: onnx.NodeProto) -> None:
        self._pending(node, "ADD", self._binary_inputs(node))

    def _mean(self, node: onnx.NodeProto, axes: list[int], keep_dims: bool) -> None:
        x = node.input[0]
        rank = len(self.g.shape(x))
        axes = sorted(a % rank for a in axes)
        tfl_axes = [NCHW_TO_NHWC_AXIS[a] for a in axes] if rank == 4 else axes
        src = self._float_source(x, node)
        owner = module_name(node) or self.m.tensors[src].name
        axes_t = self._int32_operand(owner + ".axes", sorted(tfl_axes))
        self._pending(node, "MEAN", [src, axes_t], keep_dims=keep_dims, onnx_axes=tuple(axes))

    def _op_GlobalAveragePool(self, node: onnx.NodeProto) -> None:
        self._mean(node, [2, 3], True)

    def _op_ReduceMean(self, node: onnx.NodeProto) -> None:
        axes = attr(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = [int(a) for a in self.g.const(node.input[1]).reshape(-1)]
        if axes is None:
            axes = list(range(len(self.g.shape(node.input[0]))))
        self._mean(node, list(axes), bool(attr(node, "keepdims", 1)))

    def _op_MaxPool(self, node: onnx.NodeProto) -> None:
        """Max commutes with the monotone DQ: the pooled value is DQ of the pooled int8 codes, at
        the input's own scale and zero point (what MAX_POOL_2D requires)."""
        x = node.input[0]
        if len(node.output) > 1 and node.output[1]:
            raise self._fail(node, "MaxPool with an indices output has no TFLite equivalent")
        kh, kw = attr(node, "kernel_shape")
        sh, sw = attr(node, "strides", [1, 1])
        if attr(node, "dilations", [1, 1]) != [1, 1] or attr(node, "ceil_mode", 0):
            raise self._fail(node, "MaxPool with dilation or ceil_mode has no TFLite equivalent")
        src = self._float_source(x, node)
        t = self.m.tensors[src]
        _, in_h, in_w, _ = t.shape
        top, left, bottom, right = (list(attr(node, "pads", [0, 0, 0, 0])) + [0, 0, 0, 0])[:4]
        if attr(node, "auto_pad", "NOTSET") == "SAME_UPPER":
            (top, bottom), (left, right) = tf_same_pads(in_h, kh, sh, 1), tf_same_pads(in_w, kw, sw, 1)
        if (top, left, bottom, right) == (0, 0, 0, 0):
            padding = "VALID"
        elif ((top, bottom), (left, right)) == (tf_same_pads(in_h, kh, sh, 1), tf_same_pads(in_w, kw, sw, 1)):
            padding = "SAME"  # both skip out-of-bounds positions (ONNX pads with -inf)
        else:
            raise self._fail(node, f"MaxPool pads {[top, left, bottom, right]} are neither TF SAME nor VALID")
        out_shape = to_tflite_shape(self.g.shape(node.output[0]))
        dst = self.m.add_tensor(
            replace(
                t, name=self._unique(module_name(node) or t.name + "_pool"), shape=out_shape, onnx_name=""
            )
        )
        options = {"padding": padding, "stride_h": sh, "stride_w": sw, "filter_h": kh, "filter_w": kw}
        self.m.add_op(QOp("MAX_POOL_2D", [src], [dst], options, node.name))
        self.fval[node.output[0]] = dst

    def _op_AveragePool(self, node: onnx.NodeProto) -> None:
        shape = self.g.shape(node.input[0])
        kernel = list(attr(node, "kernel_shape"))
        pads = list(attr(node, "pads", [0, 0, 0, 0]))
        if len(shape) != 4 or kernel != list(shape[2:]) or any(pads):
            raise self._fail(
                node,
                "only global average pooling is written (as MEAN); AVERAGE_POOL_2D forces equal in/out scales",
            )
        self._mean(node, [2, 3], True)

    # ------------------------------------------------------------------ layout-only ops
    def _layout_safe(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> bool:
        """True when reshaping in NHWC keeps the same elements as reshaping in NCHW."""

        def plain(shape: tuple[int, ...]) -> bool:  # NCHW and NHWC hold the same element order
            return len(shape) != 4 or shape[1] == 1 or shape[2] * shape[3] == 1

        if plain(in_shape) and plain(out_shape):
            return True
        if int(np.prod(in_shape)) > 1 << 22:
            return False  # too large to compare by value; the cases above cover real networks
        x = np.arange(int(np.prod(in_shape))).reshape(in_shape)
        onnx_result = to_tflite_layout(x.reshape(out_shape))
        tflite_result = to_tflite_layout(x).reshape(to_tflite_shape(out_shape))
        return np.array_equal(onnx_result, tflite_result)

    def _reshape(self, node: onnx.NodeProto) -> None:
        x, out = node.input[0], node.output[0]
        in_shape, out_shape = self.g.shape(x), self.g.shape(out)
        flattens_map = len(in_shape) == 4 and out_shape == (in_shape[0], int(np.prod(in_shape[1:])))
        if flattens_map and x in self.fval and not self._layout_safe(in_shape, out_shape):
            self._flatten_map(node, in_shape, out_shape)
            return
        if not self._layout_safe(in_shape, out_shape):
            raise self._fail(
                node,
                f"reshaping {in_shape} to {out_shape} orders elements differently in NCHW and NHWC; "
                "pool to 1x1 before flattening",
            )
        if x in self.pending:
            p = self.pending[x]
            if p.reshape_to is not None:
                p = replace(p, reshape_to=None)  # two reshapes in a row: only the last one counts
            reduced = p.options.get("onnx_axes")
            if p.kind == "MEAN" and p.options.get("keep_dims") and reduced is not None:
                squeezed = tuple(d for i, d in enumerate(p.onnx_shape) if i not in reduced)
                if squeezed == out_shape:  # GlobalAveragePool + Flatten: MEAN without keep_dims
                    options = {**p.options, "keep_dims": False}
                    self.pending[out] = replace(p, onnx_shape=out_shape, options=options)
                    return
            self.pending[out] = replace(p, reshape_to=out_shape, reshape_node=node)
            return
        src = self._float_source(x, node)
        t = self.m.tensors[src]
        if to_tflite_shape(out_shape) == t.shape:
            self.fval[out] = src
            return
        dst = self.m.add_tensor(
            replace(
                t,
                name=self._unique(module_name(node) or t.name + "_reshaped"),
                shape=to_tflite_shape(out_shape),
                onnx_name="",
            )
        )
        shape_t = self._int32_operand(self.m.tensors[dst].name + ".shape", list(to_tflite_shape(out_shape)))
        self.m.add_op(
            QOp("RESHAPE", [src, shape_t], [dst], {"new_shape": list(to_tflite_shape(out_shape))}, node.name)
        )
        self.fval[out] = dst

    def _flatten_map(
        self, node: onnx.NodeProto, in_shape: tuple[int, ...], out_shape: tuple[int, ...]
    ) -> None:
        """Flatten of an N x C x H x W map: RESHAPE in NHWC order, remember where each element
        sits in ONNX's CHW order, so the fully connected layer reading it permutes its columns."""
        src = self._float_source(node.input[0], node)
        t = self.m.tensors[src]
        _, c, h, w = in_shape
        dst = self.m.add_tensor(
            replace(
                t, name=self._unique(module_name(node) or t.name + "_flat"), shape=out_shape, onnx_name=""
            )
        )
        shape_t = self._int32_operand(self.m.tensors[dst].name + ".shape", list(out_shape))
        self.m.add_op(QOp("RESHAPE", [src, shape_t], [dst], {"new_shape": list(out_shape)}, node.name))
        self.nhwc_flat[dst] = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
        self.fval[node.output[0]] = dst

    _op_Flatten = _reshape
    _op_Reshape = _reshape
    _op_Squeeze = _reshape
    _op_Unsqueeze = _reshape

    def _op_BatchNormalization(self, node: onnx.NodeProto) -> None:
        raise self._fail(
            node,
            "a float batch norm between quantized ops has no int8 TFLite equivalent; fold it into the "
            "convolution before quantizing (torch.onnx.export of model.eval() with do_constant_folding=True, "
            "or onnxruntime's quant_pre_process)",
        )

    def _op_Identity(self, node: onnx.NodeProto) -> None:
        x = node.input[0]
        for table in (self.qval, self.fval, self.padded, self.pending, self.dq_const):
            if x in table:
                table[node.output[0]] = table[x]
                return
        raise self._not_quantized(x, node)

    def _op_Pad(self, node: onnx.NodeProto) -> None:
        x = node.input[0]
        mode = attr(node, "mode", "constant")
        pads = attr(node, "pads")
        if pads is None and len(node.input) > 1 and node.input[1]:
            pads = self.g.const(node.input[1])
            if pads is None:
                raise self._fail(node, "pads must be constant")
        value = 0.0
        if len(node.input) > 2 and node.input[2]:
            if not self.g.is_const(node.input[2]):
                raise self._fail(node, "the pad value must be constant")
            value = float(self.g.const(node.input[2]))
        if len(node.input) > 3 and node.input[3]:
            raise self._fail(node, "Pad with an axes input is not written")
        pads = [int(p) for p in np.asarray(pads).reshape(-1)]
        if mode != "constant" or value != 0.0:
            raise self._fail(node, f"only zero padding has an int8 equivalent (mode {mode}, value {value:g})")
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
            raise self._fail(node, f"pads {pads}: only non-negative padding of H and W is written")
        top, left, bottom, right = pads[2], pads[3], pads[6], pads[7]
        if x in self.padded:
            src, (t0, l0, b0, r0) = self.padded[x]
            self.padded[node.output[0]] = (src, (t0 + top, l0 + left, b0 + bottom, r0 + right))
        else:
            self.padded[node.output[0]] = (self._float_source(x, node), (top, left, bottom, right))

    # ------------------------------------------------------------------ conv and fully connected
    def _weight(self, node: onnx.NodeProto, name: str) -> DQConst:
        if name not in self.dq_const:
            if self.g.is_const(name):
                raise self._fail(
                    node,
                    f"weight '{name}' is float; the writer needs int8 weights (QAT or calibration first)",
                )
            raise self._fail(node, f"weight '{name}' is not a DequantizeLinear of a constant")
        w = self.dq_const[name]
        if w.values.dtype != np.int8:
            raise self._fail(
                node,
                f"weight '{name}' is {w.values.dtype}; TFLite int8 weights are symmetric int8 "
                "(with onnxruntime's quantize_static: weight_type=QuantType.QInt8)",
            )
        if np.any(w.zero_point != 0):
            raise self._fail(
                node, f"weight '{name}' has non-zero zero points; TFLite int8 weights are symmetric"
            )
        if np.any(w.values == -128):
            self._full_range_weights.append(module_name(node) or node.name)
        return w

    def _bias(self, node: onnx.NodeProto, name: str, expected: np.ndarray, tensor_name: str) -> int:
        """int32 bias at scale input_scale × weight_scale[c], as TFLite kernels assume."""
        n = expected.size
        if not name:
            data = np.zeros(n, np.int64)
        elif name in self.dq_const:
            b = self.dq_const[name]
            if b.values.dtype != np.int32:
                raise self._fail(
                    node, f"bias '{name}' is {b.values.dtype}; TFLite int8 ops take an int32 bias"
                )
            if np.any(b.zero_point != 0):
                raise self._fail(node, f"bias '{name}' has a non-zero zero point")
            scale = np.broadcast_to(b.scale.astype(np.float32), (n,))
            values = b.values.reshape(-1).astype(np.int64)
            if np.allclose(scale, expected, rtol=1e-5, atol=0):
                data = values
            else:
                data = np.rint(values * scale.astype(np.float64) / expected.astype(np.float64)).astype(
                    np.int64
                )
                self.m.notes.append(f"{tensor_name}: int32 bias rescaled to input_scale x weight_scale")
        elif self.g.is_const(name):
            real = self.g.const(name).astype(np.float64).reshape(-1)
            data = np.rint(real / expected.astype(np.float64)).astype(np.int64)
            self.m.notes.append(f"{tensor_name}: float bias quantized to int32 at input_scale x weight_scale")
        else:
            raise self._fail(node, f"bias '{name}' is not a constant")
        if data.size != n:
            raise self._fail(node, f"bias has {data.size} values for {n} output channels")
        if np.any(np.abs(data) > 2**31 - 1):
            raise self._fail(node, "bias does not fit int32 at scale input_scale x weight_scale")
        return self.m.add_tensor(
            QTensor(
                name=self._unique(tensor_name),
                shape=(n,),
                dtype="int32",
                scale=expected.astype(np.float32),
                zero_point=np.zeros(n, np.int64),
                data=data.astype(np.int32),
            )
        )

    @staticmethod
    def _channel_scales(w: DQConst, axis: int, n: int) -> np.ndarray:
        scale = w.scale.reshape(-1)
        if scale.size == 1:
            return np.full(n, scale[0], np.float32)
        if scale.size != n or w.axis % w.values.ndim != axis:
            return np.zeros(0, np.float32)
        return scale.astype(np.float32)

    def _op_Conv(self, node: onnx.NodeProto) -> None:
        x = node.input[0]
        if attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID", "SAME_UPPER"):
            raise self._fail(node, f"auto_pad {attr(node, 'auto_pad')} is not TFLite padding")
        w = self._weight(node, node.input[1])
        out_c, in_per_group, kh, kw = w.values.shape
        group = int(attr(node, "group", 1))
        strides = list(attr(node, "strides", [1, 1]))
        dilations = list(attr(node, "dilations", [1, 1]))
        if len(w.values.shape) != 4:
            raise self._fail(node, "only 2-D convolutions are written")

        # Source tensor and the total explicit padding (Pad node + the conv's own pads).
        if x in self.padded:
            src, (top, left, bottom, right) = self.padded[x]
        else:
            src, (top, left, bottom, right) = self._float_source(x, node), (0, 0, 0, 0)
        src_t = self.m.tensors[src]
        _, in_h, in_w, in_c = src_t.shape
        auto_pad = attr(node, "auto_pad", "NOTSET")
        if auto_pad == "SAME_UPPER":
            (pt, pb), (pl, pr) = (
                tf_same_pads(in_h, kh, strides[0], dilations[0]),
                tf_same_pads(in_w, kw, strides[1], dilations[1]),
            )
        else:
            pt, pl, pb, pr = (list(attr(node, "pads", [0, 0, 0, 0])) + [0, 0, 0, 0])[:4]
        top, left, bottom, right = top + pt, left + pl, bottom + pb, right + pr
        same = (
            tf_same_pads(in_h, kh, strides[0], dilations[0]),
            tf_same_pads(in_w, kw, strides[1], dilations[1]),
        )
        if ((top, bottom), (left, right)) == same:
            padding = "SAME"
        elif (top, left, bottom, right) == (0, 0, 0, 0):
            padding = "VALID"
        else:
            # PyTorch-style symmetric padding that TF SAME does not reproduce: explicit PAD (zero point).
            padding = "VALID"
            pad_name = x if x in self.padded else None
            if pad_name is None or (pt, pl, pb, pr) != (0, 0, 0, 0):
                pad_name = node.output[0] + "::pad"
                self.padded[pad_name] = (src, (top, left, bottom, right))
                self.g.producer.setdefault(pad_name, node)
            src = self._materialize_pad(pad_name)
            src_t = self.m.tensors[src]

        in_scale = np.float32(src_t.scale[0])
        options: dict[str, Any] = {
            "padding": padding,
            "stride_h": strides[0],
            "stride_w": strides[1],
            "dilation_h": dilations[0],
            "dilation_w": dilations[1],
        }
        scales = self._channel_scales(w, 0, out_c)
        if scales.size == 0:
            raise self._fail(node, "weight scales must be per output channel (axis 0) or per tensor")
        layer = module_name(node) or node.name
        if group == 1:
            kind = "CONV_2D"
            filt = np.transpose(w.values, (0, 2, 3, 1))  # OIHW -> OHWI
            qdim = 0
        elif group == in_c and in_per_group == 1 and out_c % in_c == 0:
            kind = "DEPTHWISE_CONV_2D"
            filt = np.transpose(w.values[:, 0], (1, 2, 0))[None]  # (O,1,H,W) -> (1,H,W,O)
            qdim = 3
            options["depth_multiplier"] = out_c // in_c
        else:
            raise self._fail(node, f"grouped convolution (group {group}) has no TFLite int8 equivalent")
        weight_t = self.m.add_tensor(
            QTensor(
                name=self._unique(layer + ".weight"),
                shape=tuple(filt.shape),
                dtype="int8",
                scale=scales,
                zero_point=np.zeros(out_c, np.int64),
                quantized_dimension=qdim,
                data=np.ascontiguousarray(filt, dtype=np.int8),
            )
        )
        bias_name = node.input[2] if len(node.input) > 2 else ""
        bias_t = self._bias(node, bias_name, (in_scale * scales).astype(np.float32), layer + ".bias")
        self._pending(node, kind, [src, weight_t, bias_t], **options)

    def _op_Gemm(self, node: onnx.NodeProto) -> None:
        if attr(node, "transA", 0) or attr(node, "alpha", 1.0) != 1.0 or attr(node, "beta", 1.0) != 1.0:
            raise self._fail(node, "Gemm with transA, alpha or beta is not a plain fully connected layer")
        src = self._float_source(node.input[0], node, flattened_ok=True)
        if len(self.m.tensors[src].shape) != 2:
            raise self._fail(node, "fully connected input must be rank 2")
        w = self._weight(node, node.input[1])
        trans_b = int(attr(node, "transB", 0))
        values = w.values if trans_b else w.values.T  # TFLite wants [out, in]
        if src in self.nhwc_flat:  # input flattened in NHWC order: column j reads ONNX column order[j]
            values = values[:, self.nhwc_flat[src]]
        out_c = values.shape[0]
        scales = self._channel_scales(w, 0 if trans_b else 1, out_c)
        if scales.size == 0:
            raise self._fail(node, "weight scales must be per output channel or per tensor")
        layer = module_name(node) or node.name
        weight_t = self.m.add_tensor(
            QTensor(
                name=self._unique(layer + ".weight"),
                shape=tuple(values.shape),
                dtype="int8",
                # per-tensor when all channels agree: the int8 spec's form, which every runtime takes
                scale=scales[:1] if np.all(scales == scales[0]) else scales,
                zero_point=np.zeros(1 if np.all(scales == scales[0]) else out_c, np.int64),
                data=np.ascontiguousarray(values, dtype=np.int8),
            )
        )
        in_scale = np.float32(self.m.tensors[src].scale[0])
        bias_name = node.input[2] if len(node.input) > 2 else ""
        bias_t = self._bias(node, bias_name, (in_scale * scales).astype(np.float32), layer + ".bias")
        self._pending(node, "FULLY_CONNECTED", [src, weight_t, bias_t])


def lower_qcdq(graph: OnnxGraph) -> Int8Model:
    """QCDQ ONNX → int8 model (TFLite layout and ops); UserError on anything it cannot write exactly."""
    return QCDQLowering(graph).run()
