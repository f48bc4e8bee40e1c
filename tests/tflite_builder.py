"""Builds small int8 ``.tflite`` models in the tests, and runs them in TFLite Micro (the oracle).

Two layers:

- ``ModelBuilder``: tensors and ops as the schema has them (``add_tensor``, ``add_op``,
  ``build``), written with the schema object API shipped in the tflite-micro wheel and passed
  through the wheel's C++ aligner so constant buffers are 16-byte aligned as the schema asks.
  It also tracks each tensor's shape and quantization, so the layer helpers (``conv2d``,
  ``depthwise``, ``add``, ...) can derive output shapes and pick plausible random weights,
  biases and output scales from a numpy ``Generator``.
- ready-made random CNNs (``random_cnn``, ``random_mbconv``) for whole-model tests.

``run_tflm(model_bytes, x_batch)`` runs a batch through the real TFLite Micro interpreter
(``mcu_effnet.oracle``), one sample at a time.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from mcu_effnet import oracle
from mcu_effnet.graph.ops import OPTIONS_TABLE

_TENSOR_TYPES = {
    "float32": schema.TensorType.FLOAT32,
    "float16": schema.TensorType.FLOAT16,
    "int32": schema.TensorType.INT32,
    "uint8": schema.TensorType.UINT8,
    "int64": schema.TensorType.INT64,
    "int16": schema.TensorType.INT16,
    "int8": schema.TensorType.INT8,
}

# Versions LiteRT checks (TensorFlow's op_version.cc); TFLite Micro ignores them.
_OP_VERSIONS = {
    "CONV_2D": 3,
    "DEPTHWISE_CONV_2D": 3,
    "FULLY_CONNECTED": 4,
    "ADD": 2,
    "MUL": 2,
    "MEAN": 2,
    "AVERAGE_POOL_2D": 2,
    "MAX_POOL_2D": 2,
    "SOFTMAX": 2,
    "LOGISTIC": 2,
    "QUANTIZE": 2,
    "PAD": 2,
    "HARD_SWISH": 1,
    "RESHAPE": 1,
    "CONCATENATION": 2,
    "RELU": 2,
    "RELU6": 2,
}

# Op kind -> name of its builtin options table (absent: the op has no options): the loader's own
# table, so a model the builder writes carries what the loader checks.
_OPTIONS = {kind: table for kind, table in OPTIONS_TABLE.items() if table}

_ENUM_OPTIONS = {
    "padding": schema.Padding,
    "fused_activation_function": schema.ActivationFunctionType,
}


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass
class TensorInfo:
    """What the layer helpers need to know about a tensor already added."""

    index: int
    shape: tuple[int, ...]
    dtype: str
    scale: np.ndarray
    zero_point: np.ndarray


class ModelBuilder:
    """Accumulates tensors, ops and buffers of a one-subgraph model; ``build()`` returns the bytes."""

    def __init__(self, rng: np.random.Generator | None = None, description: str = "mcu-effnet test model"):
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.description = description
        self.tensors: list[Any] = []
        self.info: list[TensorInfo] = []
        self.buffers: list[Any] = [schema.BufferT()]  # buffer 0: the empty sentinel
        self.operators: list[Any] = []
        self.opcodes: list[Any] = []
        self._opcode_index: dict[tuple[str, int], int] = {}
        self.metadata: dict[str, bytes] = {}
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    # ---- raw schema level -------------------------------------------------------------------

    def add_tensor(
        self,
        name: str,
        shape: tuple[int, ...] | list[int],
        dtype: str = "int8",
        scale: float | np.ndarray | None = None,
        zero_point: int | np.ndarray | None = None,
        quantized_dimension: int = 0,
        data: np.ndarray | None = None,
    ) -> int:
        """Adds a tensor (constant when ``data`` is given); returns its index."""
        tensor = schema.TensorT()
        tensor.name = name
        tensor.shape = [int(d) for d in shape]
        tensor.type = _TENSOR_TYPES[dtype]
        scales = np.zeros(0, np.float32)
        zps = np.zeros(0, np.int64)
        if scale is not None:
            scales = np.atleast_1d(np.asarray(scale, dtype=np.float32))
            zps = np.atleast_1d(np.asarray(0 if zero_point is None else zero_point, dtype=np.int64))
            if zps.size == 1 and scales.size > 1:
                zps = np.zeros(scales.size, np.int64) + zps[0]
            q = schema.QuantizationParametersT()
            q.scale = [float(s) for s in scales]
            q.zeroPoint = [int(z) for z in zps]
            q.quantizedDimension = int(quantized_dimension)
            tensor.quantization = q
        tensor.buffer = 0
        if data is not None:
            array = np.ascontiguousarray(np.asarray(data, dtype=dtype).reshape(tuple(tensor.shape)))
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(array.tobytes(), dtype=np.uint8)
            self.buffers.append(buffer)
            tensor.buffer = len(self.buffers) - 1
        self.tensors.append(tensor)
        self.info.append(TensorInfo(len(self.tensors) - 1, tuple(tensor.shape), dtype, scales, zps))
        return len(self.tensors) - 1

    def add_op(
        self, kind: str, inputs: list[int], outputs: list[int], version: int | None = None, **options
    ) -> int:
        """Adds an op; options are the schema's option fields in snake_case (enums by name)."""
        code = getattr(schema.BuiltinOperator, kind)
        version = version if version is not None else _OP_VERSIONS.get(kind, 1)
        key = (kind, version)
        if key not in self._opcode_index:
            opcode = schema.OperatorCodeT()
            opcode.builtinCode = code
            opcode.deprecatedBuiltinCode = min(code, 127)  # readers take the max of both fields
            opcode.version = version
            self.opcodes.append(opcode)
            self._opcode_index[key] = len(self.opcodes) - 1
        op = schema.OperatorT()
        op.opcodeIndex = self._opcode_index[key]
        op.inputs = [int(i) for i in inputs]
        op.outputs = [int(i) for i in outputs]
        table = _OPTIONS.get(kind)
        if table is not None:
            opts = getattr(schema, table + "T")()
            for name, value in options.items():
                if name in _ENUM_OPTIONS and isinstance(value, str):
                    value = getattr(_ENUM_OPTIONS[name], value)
                field_name = _camel(name)
                if not hasattr(opts, field_name):
                    raise TypeError(f"{kind} has no option {name!r}")
                setattr(opts, field_name, value)
            op.builtinOptionsType = getattr(schema.BuiltinOptions, table)
            op.builtinOptions = opts
        elif options:
            raise TypeError(f"{kind} takes no options, got {sorted(options)}")
        self.operators.append(op)
        return len(self.operators) - 1

    def add_metadata(self, name: str, data: bytes) -> None:
        self.metadata[name] = bytes(data)

    def build(
        self, inputs: list[int] | None = None, outputs: list[int] | None = None, align: bool = True
    ) -> bytes:
        """Packs the model (identifier ``TFL3``, version 3); aligns constant buffers to 16 bytes."""
        subgraph = schema.SubGraphT()
        subgraph.tensors = self.tensors
        subgraph.inputs = list(inputs if inputs is not None else self.inputs)
        subgraph.outputs = list(outputs if outputs is not None else self.outputs)
        subgraph.operators = self.operators
        subgraph.name = "main"
        model = schema.ModelT()
        model.version = 3
        model.description = self.description
        model.operatorCodes = self.opcodes
        model.subgraphs = [subgraph]
        buffers = list(self.buffers)
        if self.metadata:
            model.metadata = []
            for name, payload in self.metadata.items():
                buffer = schema.BufferT()
                buffer.data = np.frombuffer(payload, dtype=np.uint8)
                buffers.append(buffer)
                entry = schema.MetadataT()
                entry.name = name
                entry.buffer = len(buffers) - 1
                model.metadata.append(entry)
        model.buffers = buffers
        fb = flatbuffers.Builder(1024)
        fb.Finish(model.Pack(fb), file_identifier=b"TFL3")
        raw = bytes(fb.Output())
        return align_model(raw) if align else raw

    # ---- layer helpers (random weights from self.rng) ---------------------------------------

    def input(self, shape: tuple[int, ...], scale: float | None = None, zero_point: int | None = None) -> int:
        scale = float(self.rng.uniform(0.01, 0.05)) if scale is None else scale
        zero_point = int(self.rng.integers(-30, 31)) if zero_point is None else zero_point
        index = self.activation("input", shape, scale, zero_point)
        self.inputs.append(index)
        return index

    def float_input(self, shape: tuple[int, ...], dtype: str = "int8") -> int:
        """A float32 model input quantized by QUANTIZE (a model converted with float I/O); returns
        the quantized tensor (zero point 0 for int16, as 16x8 requires)."""
        x = self.add_tensor(f"float_input_{len(self.tensors)}", shape, "float32")
        self.inputs.append(x)
        scale = float(self.rng.uniform(0.005, 0.05)) / (256 if dtype == "int16" else 1)
        zero_point = 0 if dtype == "int16" else int(self.rng.integers(-30, 31))
        q = self.add_tensor(f"quantize_{len(self.tensors)}", shape, dtype, scale, zero_point)
        self.add_op("QUANTIZE", [x], [q])
        return q

    def activation(self, name: str, shape: tuple[int, ...], scale: float, zero_point: int) -> int:
        return self.add_tensor(f"{name}_{len(self.tensors)}", shape, "int8", scale, zero_point)

    def qparams(self, index: int) -> tuple[float, int]:
        info = self.info[index]
        return float(info.scale[0]), int(info.zero_point[0])

    def _output_scale(self, in_index: int, w_scales: np.ndarray, fan_in: int, relu: bool = False) -> float:
        """A scale that puts about ±3σ of the accumulator (for roughly uniform int8 inputs) in range.

        σ of the real-valued output ≈ σ(x − zp) · σ(w) · √fan_in · w_scale · in_scale, taking
        σ(w) ≈ 73 (uniform integers in [−127, 127]) and σ(x − zp) ≈ 60 (somewhat below uniform
        int8's 74, as activations after a clamp are).
        """
        in_scale, _ = self.qparams(in_index)
        sigma = 60.0 * 73.0 * math.sqrt(fan_in) * float(np.mean(w_scales)) * in_scale
        return float(sigma * (2.0 if relu else 3.0) / 128.0)

    def _weights(
        self, shape: tuple[int, ...], channels: int, per_channel: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        base = float(self.rng.uniform(0.002, 0.02))
        scales = (base * self.rng.uniform(0.5, 1.5, size=channels if per_channel else 1)).astype(np.float32)
        return self.rng.integers(-127, 128, size=shape).astype(np.int8), scales

    def _bias(self, in_index: int, w_scales: np.ndarray, channels: int, fan_in: int) -> int:
        in_scale, _ = self.qparams(in_index)
        bias_scales = (np.float32(in_scale) * w_scales.astype(np.float32)).astype(np.float32)
        if bias_scales.size == 1:
            bias_scales = np.full(channels, bias_scales[0], np.float32)
        spread = int(20 * 73 * math.sqrt(fan_in))
        data = self.rng.integers(-spread, spread + 1, size=channels).astype(np.int32)
        return self.add_tensor(f"bias_{len(self.tensors)}", (channels,), "int32", bias_scales, 0, 0, data)

    def conv2d(
        self,
        x: int,
        out_channels: int,
        kernel: tuple[int, int] = (3, 3),
        stride: tuple[int, int] = (1, 1),
        padding: str = "SAME",
        dilation: tuple[int, int] = (1, 1),
        activation: str = "NONE",
        per_channel: bool = True,
        bias: bool = True,
        out_scale: float | None = None,
        out_zp: int | None = None,
    ) -> int:
        n, h, w, c = self.info[x].shape
        kh, kw = kernel
        weights, w_scales = self._weights((out_channels, kh, kw, c), out_channels, per_channel)
        w_index = self.add_tensor(
            f"conv_w_{len(self.tensors)}", weights.shape, "int8", w_scales, 0, 0, weights
        )
        b_index = self._bias(x, w_scales, out_channels, kh * kw * c) if bias else -1
        oh = _out_size(h, kh, stride[0], dilation[0], padding)
        ow = _out_size(w, kw, stride[1], dilation[1], padding)
        scale = out_scale or self._output_scale(x, w_scales, kh * kw * c, activation != "NONE")
        zp = (
            out_zp
            if out_zp is not None
            else (-100 if activation != "NONE" else int(self.rng.integers(-20, 21)))
        )
        y = self.activation("conv", (n, oh, ow, out_channels), scale, zp)
        self.add_op(
            "CONV_2D",
            [x, w_index, b_index],
            [y],
            padding=padding,
            stride_h=stride[0],
            stride_w=stride[1],
            dilation_h_factor=dilation[0],
            dilation_w_factor=dilation[1],
            fused_activation_function=activation,
        )
        return y

    def depthwise(
        self,
        x: int,
        kernel: tuple[int, int] = (3, 3),
        stride: tuple[int, int] = (1, 1),
        padding: str = "SAME",
        dilation: tuple[int, int] = (1, 1),
        depth_multiplier: int = 1,
        activation: str = "NONE",
        per_channel: bool = True,
        bias: bool = True,
    ) -> int:
        n, h, w, c = self.info[x].shape
        kh, kw = kernel
        oc = c * depth_multiplier
        weights, w_scales = self._weights((1, kh, kw, oc), oc, per_channel)
        w_index = self.add_tensor(f"dw_w_{len(self.tensors)}", weights.shape, "int8", w_scales, 0, 3, weights)
        b_index = self._bias(x, w_scales, oc, kh * kw) if bias else -1
        oh = _out_size(h, kh, stride[0], dilation[0], padding)
        ow = _out_size(w, kw, stride[1], dilation[1], padding)
        scale = self._output_scale(x, w_scales, kh * kw, activation != "NONE")
        zp = -100 if activation != "NONE" else int(self.rng.integers(-20, 21))
        y = self.activation("dw", (n, oh, ow, oc), scale, zp)
        self.add_op(
            "DEPTHWISE_CONV_2D",
            # No bias means two inputs here: TFLite Micro's depthwise Prepare dereferences a
            # missing third input (-1) and crashes, unlike CONV_2D which handles it.
            [x, w_index, b_index] if bias else [x, w_index],
            [y],
            padding=padding,
            stride_h=stride[0],
            stride_w=stride[1],
            dilation_h_factor=dilation[0],
            dilation_w_factor=dilation[1],
            depth_multiplier=depth_multiplier,
            fused_activation_function=activation,
        )
        return y

    def fully_connected(
        self,
        x: int,
        units: int,
        activation: str = "NONE",
        per_channel: bool = False,
        keep_num_dims: bool = False,
    ) -> int:
        shape = self.info[x].shape
        depth = shape[-1]
        weights, w_scales = self._weights((units, depth), units, per_channel)
        w_index = self.add_tensor(f"fc_w_{len(self.tensors)}", weights.shape, "int8", w_scales, 0, 0, weights)
        b_index = self._bias(x, w_scales, units, depth)
        out_shape = (*shape[:-1], units) if keep_num_dims else (int(np.prod(shape[:-1])), units)
        scale = self._output_scale(x, w_scales, depth, activation != "NONE")
        y = self.activation("fc", out_shape, scale, int(self.rng.integers(-20, 21)))
        self.add_op(
            "FULLY_CONNECTED",
            [x, w_index, b_index],
            [y],
            fused_activation_function=activation,
            keep_num_dims=keep_num_dims,
        )
        return y

    def add(self, a: int, b: int, activation: str = "NONE", kind: str = "ADD") -> int:
        """ADD (or MUL with kind="MUL") with numpy broadcasting of the two input shapes."""
        shape = tuple(np.broadcast_shapes(self.info[a].shape, self.info[b].shape))
        sa, _ = self.qparams(a)
        sb, _ = self.qparams(b)
        if kind == "MUL":
            scale = float(sa * sb * 128 * 128 / 128 / self.rng.uniform(2.0, 6.0))
        else:
            scale = float((sa + sb) * self.rng.uniform(0.8, 1.4))
        y = self.activation(kind.lower(), shape, scale, int(self.rng.integers(-20, 21)))
        self.add_op(kind, [a, b], [y], fused_activation_function=activation)
        return y

    # ---- arithmetic ops (SUB, MAXIMUM, MINIMUM, PRELU, LEAKY_RELU, TANH) ----------------------

    def sub(self, a: int, b: int, activation: str = "NONE") -> int:
        """SUB with numpy broadcasting; the output scale covers the difference's range."""
        shape = tuple(np.broadcast_shapes(self.info[a].shape, self.info[b].shape))
        scale = float((self.qparams(a)[0] + self.qparams(b)[0]) * self.rng.uniform(0.6, 1.4))
        y = self.activation("sub", shape, scale, int(self.rng.integers(-20, 21)))
        self.add_op("SUB", [a, b], [y], fused_activation_function=activation)
        return y

    def min_max(self, kind: str, a: int, b: int) -> int:
        """MAXIMUM or MINIMUM; the output keeps the first input's quantization, as converters write it."""
        shape = tuple(np.broadcast_shapes(self.info[a].shape, self.info[b].shape))
        y = self.activation(kind.lower(), shape, *self.qparams(a))
        self.add_op(kind, [a, b], [y])
        return y

    def prelu(self, x: int, alpha_shape: tuple[int, ...]) -> int:
        """PRELU with a constant int8 alpha of ``alpha_shape`` (broadcast onto x), slopes in about [-0.5, 1]."""
        alpha_scale = float(self.rng.uniform(0.002, 0.01))
        alpha_zp = int(self.rng.integers(-60, 61))
        codes = np.clip(
            np.round(self.rng.uniform(-0.5, 1.0, size=alpha_shape) / alpha_scale) + alpha_zp, -128, 127
        )
        alpha = self.add_tensor(
            f"alpha_{len(self.tensors)}",
            alpha_shape,
            "int8",
            alpha_scale,
            alpha_zp,
            data=codes.astype(np.int8),
        )
        scale, _ = self.qparams(x)
        y = self.activation(
            "prelu",
            self.info[x].shape,
            scale * float(self.rng.uniform(0.5, 1.5)),
            int(self.rng.integers(-40, 41)),
        )
        self.add_op("PRELU", [x, alpha], [y])
        return y

    def leaky_relu(self, x: int, alpha: float) -> int:
        scale, _ = self.qparams(x)
        y = self.activation(
            "leaky_relu",
            self.info[x].shape,
            scale * float(self.rng.uniform(0.5, 1.5)),
            int(self.rng.integers(-40, 41)),
        )
        self.add_op("LEAKY_RELU", [x], [y], alpha=float(alpha))
        return y

    def reduce(self, kind: str, x: int, axes: tuple[int, ...], keep_dims: bool = True) -> int:
        """SUM (output scale about the sum's spread) or REDUCE_MAX (the input's quantization, as
        TFLite Micro requires), over constant ``axes`` (negative ones allowed)."""
        shape = self.info[x].shape
        norm = {a % len(shape) for a in axes}
        out_shape = tuple(1 if i in norm else d for i, d in enumerate(shape) if keep_dims or i not in norm)
        axis_index = self.add_tensor(
            f"axes_{len(self.tensors)}", (len(axes),), "int32", data=np.array(axes, np.int32)
        )
        scale, zp = self.qparams(x)
        if kind == "SUM":
            count = int(np.prod([shape[a] for a in norm]))
            scale, zp = (
                scale * math.sqrt(count) * float(self.rng.uniform(1.0, 3.0)),
                int(self.rng.integers(-20, 21)),
            )
        y = self.activation(kind.lower(), out_shape, scale, zp)
        self.add_op(kind, [x, axis_index], [y], keep_dims=keep_dims)
        return y

    def transpose_conv(
        self,
        x: int,
        out_channels: int,
        kernel: tuple[int, int] = (3, 3),
        stride: tuple[int, int] = (2, 2),
        padding: str = "SAME",
        activation: str = "NONE",
        per_channel: bool = True,
        bias: bool = True,
    ) -> int:
        """TRANSPOSE_CONV (weights OHWI, per-channel on axis 0); the output is the size a
        converter writes: input x stride (SAME), (input - 1) x stride + kernel (VALID)."""
        n, h, w, c = self.info[x].shape
        kh, kw = kernel
        weights, w_scales = self._weights((out_channels, kh, kw, c), out_channels, per_channel)
        w_index = self.add_tensor(
            f"tconv_w_{len(self.tensors)}", weights.shape, "int8", w_scales, 0, 0, weights
        )
        if padding == "SAME":
            oh, ow = h * stride[0], w * stride[1]
        else:
            oh, ow = (h - 1) * stride[0] + kh, (w - 1) * stride[1] + kw
        shape_index = self.add_tensor(
            f"tconv_shape_{len(self.tensors)}",
            (4,),
            "int32",
            data=np.array([n, oh, ow, out_channels], np.int32),
        )
        # Each output sums about kh·kw·c / (stride_h·stride_w) products.
        fan_in = max(1, kh * kw * c // (stride[0] * stride[1]))
        b_index = self._bias(x, w_scales, out_channels, fan_in) if bias else -1
        scale = self._output_scale(x, w_scales, fan_in, activation != "NONE")
        y = self.activation("tconv", (n, oh, ow, out_channels), scale, int(self.rng.integers(-20, 21)))
        inputs = [shape_index, w_index, x] + ([b_index] if bias else [])
        self.add_op(
            "TRANSPOSE_CONV",
            inputs,
            [y],
            padding=padding,
            stride_h=stride[0],
            stride_w=stride[1],
            fused_activation_function=activation,
        )
        return y

    def tanh(self, x: int) -> int:
        """TANH on int8: the output scale TFLite's converter writes, 1/128 and zero point 0."""
        return self.unary("TANH", x, out_scale=1.0 / 128.0, out_zp=0)

    def unary(
        self, kind: str, x: int, out_scale: float | None = None, out_zp: int | None = None, **options
    ) -> int:
        """An op with one input whose output keeps the input shape (RELU, LOGISTIC, HARD_SWISH, ...)."""
        scale, zp = self.qparams(x)
        y = self.activation(
            kind.lower(), self.info[x].shape, out_scale or scale, zp if out_zp is None else out_zp
        )
        self.add_op(kind, [x], [y], **options)
        return y

    def argmax(self, x: int, axis: int, output_dtype: str = "int32") -> int:
        """ARG_MAX over ``axis`` (a constant int32), indices of ``output_dtype``."""
        shape = self.info[x].shape
        a = self.add_tensor(f"axis_{len(self.tensors)}", (1,), "int32", data=np.array([axis], np.int32))
        out_shape = tuple(d for k, d in enumerate(shape) if k != axis % len(shape))
        y = self.add_tensor(f"argmax{len(self.tensors)}", out_shape, dtype=output_dtype)
        self.add_op("ARG_MAX", [x, a], [y], output_type=_TENSOR_TYPES[output_dtype])
        return y

    def dequantize(self, x: int) -> int:
        """DEQUANTIZE to a float32 tensor of the same shape (a model's float output)."""
        y = self.add_tensor(f"dequantize{len(self.tensors)}", self.info[x].shape, dtype="float32")
        self.add_op("DEQUANTIZE", [x], [y])
        return y

    def pool(
        self,
        kind: str,
        x: int,
        filter_hw: tuple[int, int],
        stride: tuple[int, int],
        padding: str = "VALID",
        activation: str = "NONE",
    ) -> int:
        n, h, w, c = self.info[x].shape
        oh = _out_size(h, filter_hw[0], stride[0], 1, padding)
        ow = _out_size(w, filter_hw[1], stride[1], 1, padding)
        scale, zp = self.qparams(x)  # TFLite Micro requires equal in/out quantization for pooling
        y = self.activation(kind.lower(), (n, oh, ow, c), scale, zp)
        self.add_op(
            kind,
            [x],
            [y],
            padding=padding,
            stride_h=stride[0],
            stride_w=stride[1],
            filter_height=filter_hw[0],
            filter_width=filter_hw[1],
            fused_activation_function=activation,
        )
        return y

    def mean(
        self, x: int, axes: tuple[int, ...] = (1, 2), keep_dims: bool = True, out_scale: float | None = None
    ) -> int:
        shape = self.info[x].shape
        out_shape = (
            tuple(1 if i in axes else d for i, d in enumerate(shape))
            if keep_dims
            else tuple(d for i, d in enumerate(shape) if i not in axes)
        )
        scale, zp = self.qparams(x)
        axis_index = self.add_tensor(
            f"axes_{len(self.tensors)}", (len(axes),), "int32", data=np.array(axes, np.int32)
        )
        y = self.activation("mean", out_shape, out_scale or scale * 0.5, int(self.rng.integers(-20, 21)))
        self.add_op("MEAN", [x, axis_index], [y], keep_dims=keep_dims)
        return y

    def reshape(self, x: int, new_shape: tuple[int, ...]) -> int:
        scale, zp = self.qparams(x)
        shape_index = self.add_tensor(
            f"shape_{len(self.tensors)}", (len(new_shape),), "int32", data=np.array(new_shape, np.int32)
        )
        y = self.activation("reshape", tuple(new_shape), scale, zp)
        self.add_op("RESHAPE", [x, shape_index], [y], new_shape=list(new_shape))
        return y

    def pad(self, x: int, paddings: list[tuple[int, int]]) -> int:
        shape = self.info[x].shape
        scale, zp = self.qparams(x)
        pad_index = self.add_tensor(
            f"pad_{len(self.tensors)}", (len(shape), 2), "int32", data=np.array(paddings, np.int32)
        )
        out_shape = tuple(d + a + b for d, (a, b) in zip(shape, paddings, strict=True))
        y = self.activation("pad", out_shape, scale, zp)
        self.add_op("PAD", [x, pad_index], [y])
        return y

    def softmax(self, x: int, beta: float | None = None) -> int:
        """SOFTMAX; by default beta makes a 64-LSB logit gap worth e^-4, so outputs are not one-hot."""
        if beta is None:
            beta = 4.0 / (64.0 * self.qparams(x)[0])
        return self.unary("SOFTMAX", x, out_scale=1.0 / 256.0, out_zp=-128, beta=beta)

    def logistic(self, x: int) -> int:
        return self.unary("LOGISTIC", x, out_scale=1.0 / 256.0, out_zp=-128)


def _out_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - effective + stride) // stride


_ALIGNER = None


def align_model(model_bytes: bytes) -> bytes:
    """Re-lays the flatbuffer with the wheel's C++ aligner so every buffer is 16-byte aligned."""
    global _ALIGNER
    if _ALIGNER is None:
        from tflite_micro.tensorflow.lite.micro.tools import tflite_flatbuffer_align_wrapper

        _ALIGNER = tflite_flatbuffer_align_wrapper
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.tflite")
        dst = os.path.join(tmp, "out.tflite")
        with open(src, "wb") as f:
            f.write(model_bytes)
        _ALIGNER.align_tflite_model(src, dst)
        with open(dst, "rb") as f:
            return f.read()


# ---- the oracle ---------------------------------------------------------------------------------


def run_tflm(model_bytes: bytes, x_batch: np.ndarray | list[np.ndarray]):
    """``mcu_effnet.oracle.run_tflm`` with ``mcu_effnet.sim.run``'s convention: one batched array
    for a single-output model, else a list aligned with the graph outputs."""
    outputs = oracle.run_tflm(model_bytes, x_batch)
    return outputs[0] if len(outputs) == 1 else outputs


# ---- ready-made random models -------------------------------------------------------------------


def random_two_input(rng: np.random.Generator, dequantize: bool = False) -> bytes:
    """Two inputs of different shapes meeting after a convolution (ADD, then MUL); with
    ``dequantize`` the output is float32 (DEQUANTIZE)."""
    b = ModelBuilder(rng)
    size, c = int(rng.integers(3, 8)), int(rng.integers(2, 9))
    x1 = b.input((1, size, size, 3))
    x2 = b.input((1, size, size, c))
    y1 = b.conv2d(x1, c, (3, 3), (1, 1), "SAME", activation="RELU6")
    y = b.add(b.add(y1, x2), y1, kind="MUL")
    b.outputs = [b.dequantize(y) if dequantize else y]
    return b.build()


def random_float_io_cnn(rng: np.random.Generator) -> bytes:
    """A CNN converted with float I/O: float32 input, QUANTIZE, convolutions, DEQUANTIZE."""
    b = ModelBuilder(rng)
    size, c = int(rng.integers(4, 9)), int(rng.integers(2, 9))
    x = b.float_input((1, size, size, int(rng.integers(1, 4))))
    y = b.conv2d(x, c, (3, 3), (2, 2), "SAME", activation="RELU6")
    y = b.conv2d(y, c, (1, 1), (1, 1), "VALID")
    b.outputs = [b.dequantize(y)]
    return b.build()


def random_two_heads(rng: np.random.Generator, typed: bool = False, index_dtype: str = "int32") -> bytes:
    """A CNN with two outputs: the classifier's int8 scores and the pooled features, which the
    classifier also reads (an output that is not the last op's). With ``typed`` a third output
    of ARG_MAX indices (``index_dtype``) follows and the features leave as float32 (DEQUANTIZE)."""
    b = ModelBuilder(rng)
    size, c = int(rng.integers(5, 10)), int(rng.integers(3, 9))
    x = b.input((1, size, size, int(rng.integers(1, 4))))
    stem = b.conv2d(x, c, (3, 3), (2, 2), "SAME", activation="RELU6")
    feat = b.reshape(b.mean(stem, (1, 2), keep_dims=True), (1, c))
    scores = b.fully_connected(feat, int(rng.integers(3, 8)))
    b.outputs = [scores, b.dequantize(feat), b.argmax(scores, 1, index_dtype)] if typed else [scores, feat]
    return b.build()


def random_cnn(
    rng: np.random.Generator, size: int | None = None, head: str = "mean", softmax: bool = True
) -> bytes:
    """conv(s2, relu6) → depthwise(relu6) → conv 1x1 → residual ADD → conv 1x1 → pool → FC [→ softmax].

    ``head``: "mean" (MEAN over H, W) or "avgpool" (AVERAGE_POOL_2D over the whole map, then
    RESHAPE). Shapes, channels and quantization are drawn from ``rng``.
    """
    b = ModelBuilder(rng)
    size = size or int(rng.integers(8, 17))
    c = int(rng.integers(4, 13))
    x = b.input((1, size, size, 3))
    stem = b.conv2d(x, c, (3, 3), (2, 2), "SAME", activation="RELU6")
    dw = b.depthwise(stem, (3, 3), activation="RELU6")
    proj = b.conv2d(dw, c, (1, 1))
    res = b.add(stem, proj)
    feat = b.conv2d(res, int(rng.integers(8, 17)), (1, 1), activation="RELU")
    if head == "mean":
        pooled = b.mean(feat, (1, 2), keep_dims=True)
    else:
        _, h, w, _ = b.info[feat].shape
        pooled = b.pool("AVERAGE_POOL_2D", feat, (h, w), (1, 1), "VALID")
    channels = b.info[pooled].shape[-1]
    flat = b.reshape(pooled, (1, channels))
    logits = b.fully_connected(flat, int(rng.integers(3, 11)))
    out = b.softmax(logits) if softmax else logits
    b.outputs = [out]
    return b.build()


def random_mbconv(rng: np.random.Generator, size: int | None = None, activation: str = "HARD_SWISH") -> bytes:
    """An EfficientNet-like block: expand 1x1 → activation → depthwise → squeeze-excitation
    (MEAN → conv → RELU → conv → LOGISTIC → MUL) → project 1x1 → residual ADD → MEAN → FC → SOFTMAX.

    ``activation``: "HARD_SWISH" or "RELU6" (EfficientNet-Lite style: no SE then).
    """
    b = ModelBuilder(rng)
    size = size or int(rng.integers(6, 13))
    c = int(rng.integers(4, 9))
    x = b.input((1, size, size, c))
    if activation == "HARD_SWISH":
        expand = b.conv2d(x, 3 * c, (1, 1))
        act = b.unary("HARD_SWISH", expand, out_scale=b.qparams(expand)[0] * 0.7, out_zp=-90)
        dw = b.depthwise(act, (3, 3))
        dw_act = b.unary("HARD_SWISH", dw, out_scale=b.qparams(dw)[0] * 0.7, out_zp=-90)
        squeezed = b.mean(dw_act, (1, 2), keep_dims=True)
        se1 = b.conv2d(squeezed, max(1, c // 2), (1, 1), activation="RELU")
        se2 = b.conv2d(se1, 3 * c, (1, 1))
        gate = b.logistic(se2)
        body = b.add(dw_act, gate, kind="MUL")
    else:
        expand = b.conv2d(x, 3 * c, (1, 1), activation="RELU6")
        body = b.depthwise(expand, (3, 3), activation="RELU6")
    proj = b.conv2d(body, c, (1, 1))
    res = b.add(x, proj)
    pooled = b.mean(res, (1, 2), keep_dims=False)
    logits = b.fully_connected(pooled, int(rng.integers(3, 11)))
    b.outputs = [b.softmax(logits)]
    return b.build()
