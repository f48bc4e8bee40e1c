"""``Int8Model`` → ``.tflite`` bytes with the TFLite schema object API of the tflite-micro wheel.

The Python flatbuffer builder does not honour the schema's 16-byte alignment of buffer
data, so the packed model goes once through the wheel's C++ aligner
(``tflite_flatbuffer_align_wrapper.align_tflite_model``), which rewrites it with the C++
builder and aligned buffers.
"""

from __future__ import annotations

import os
import tempfile

import flatbuffers
import numpy as np

from mcu_effnet.quant.int8_model import Int8Model, QOp, QTensor

LABELS_METADATA = "mcu_effnet_labels"
DESCRIPTION = "mcu-effnet int8 model (QCDQ ONNX -> TFLite, QAT scales kept)"

# Versions LiteRT checks against its kernels (TFLite Micro ignores them); see TensorFlow's
# op_version.cc for the int8 cases.
OP_VERSIONS = {
    "CONV_2D": 3,
    "DEPTHWISE_CONV_2D": 3,
    "FULLY_CONNECTED": 4,
    "ADD": 2,
    "MUL": 2,  # 3 when input1_scale * input2_scale / output_scale >= 1, chosen per op below
    "MEAN": 2,
    "LOGISTIC": 2,
    "QUANTIZE": 2,
    "PAD": 2,
    "HARD_SWISH": 1,
    "RESHAPE": 1,
    "RELU": 2,
    "RELU6": 2,
    "RELU_N1_TO_1": 1,
    "MAX_POOL_2D": 2,
    "SOFTMAX": 2,
}
WRITTEN_OPS = frozenset(OP_VERSIONS)


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema


def _op_version(op: QOp, model: Int8Model) -> int:
    if op.kind == "MUL":
        out_scale = float(model.tensors[op.outputs[0]].scale[0])
        if op.options.get("input_scale_product", 0.0) / out_scale >= 1.0:
            return 3
    return OP_VERSIONS[op.kind]


def _builtin_options(op: QOp, schema):
    """(BuiltinOptions type, options object) for one op."""
    o = op.options
    act = getattr(schema.ActivationFunctionType, o.get("fused_activation", "NONE"))
    bo = schema.BuiltinOptions
    if op.kind == "CONV_2D":
        opt = schema.Conv2DOptionsT()
        opt.padding = getattr(schema.Padding, o["padding"])
        opt.strideH, opt.strideW = o["stride_h"], o["stride_w"]
        opt.dilationHFactor, opt.dilationWFactor = o["dilation_h"], o["dilation_w"]
        opt.fusedActivationFunction = act
        return bo.Conv2DOptions, opt
    if op.kind == "DEPTHWISE_CONV_2D":
        opt = schema.DepthwiseConv2DOptionsT()
        opt.padding = getattr(schema.Padding, o["padding"])
        opt.strideH, opt.strideW = o["stride_h"], o["stride_w"]
        opt.dilationHFactor, opt.dilationWFactor = o["dilation_h"], o["dilation_w"]
        opt.depthMultiplier = o["depth_multiplier"]
        opt.fusedActivationFunction = act
        return bo.DepthwiseConv2DOptions, opt
    if op.kind == "FULLY_CONNECTED":
        opt = schema.FullyConnectedOptionsT()
        opt.fusedActivationFunction = act
        opt.keepNumDims = False
        return bo.FullyConnectedOptions, opt
    if op.kind == "ADD":
        opt = schema.AddOptionsT()
        opt.fusedActivationFunction = act
        return bo.AddOptions, opt
    if op.kind == "MUL":
        opt = schema.MulOptionsT()
        opt.fusedActivationFunction = act
        return bo.MulOptions, opt
    if op.kind == "MEAN":
        opt = schema.ReducerOptionsT()
        opt.keepDims = bool(o["keep_dims"])
        return bo.ReducerOptions, opt
    if op.kind == "RESHAPE":
        opt = schema.ReshapeOptionsT()
        opt.newShape = list(o["new_shape"])
        return bo.ReshapeOptions, opt
    if op.kind == "PAD":
        return bo.PadOptions, schema.PadOptionsT()
    if op.kind == "SOFTMAX":
        opt = schema.SoftmaxOptionsT()
        opt.beta = float(o["beta"])
        return bo.SoftmaxOptions, opt
    if op.kind == "MAX_POOL_2D":
        opt = schema.Pool2DOptionsT()
        opt.padding = getattr(schema.Padding, o["padding"])
        opt.strideH, opt.strideW = o["stride_h"], o["stride_w"]
        opt.filterHeight, opt.filterWidth = o["filter_h"], o["filter_w"]
        opt.fusedActivationFunction = act
        return bo.Pool2DOptions, opt
    if op.kind == "HARD_SWISH":
        return bo.HardSwishOptions, schema.HardSwishOptionsT()
    if op.kind == "QUANTIZE":
        return bo.QuantizeOptions, schema.QuantizeOptionsT()
    return bo.NONE, None  # LOGISTIC, RELU, RELU6, RELU_N1_TO_1 have no options


def _tensor(t: QTensor, buffer_index: int, schema):
    out = schema.TensorT()
    out.name = t.name
    out.shape = np.asarray(t.shape, dtype=np.int32)
    out.type = {"int8": schema.TensorType.INT8, "int32": schema.TensorType.INT32}[t.dtype]
    out.buffer = buffer_index
    if t.quantized:
        q = schema.QuantizationParametersT()
        q.scale = np.asarray(t.scale, dtype=np.float32)
        q.zeroPoint = np.asarray(t.zero_point, dtype=np.int64)
        q.quantizedDimension = int(t.quantized_dimension)
        out.quantization = q
    return out


def _buffer(data: bytes | None, schema):
    b = schema.BufferT()
    if data is not None:
        b.data = np.frombuffer(data, dtype=np.uint8)
    return b


def pack_model(model: Int8Model, labels: list[str] | None = None) -> bytes:
    """Packs the model with the object API (unaligned buffers; see ``write_tflite``)."""
    schema = _schema()
    buffers = [_buffer(None, schema)]  # buffer 0: the empty sentinel every activation points to
    tensors = []
    for t in model.tensors:
        if t.data is None:
            tensors.append(_tensor(t, 0, schema))
            continue
        if str(t.data.dtype) != t.dtype or tuple(t.data.shape) != tuple(t.shape):
            raise ValueError(f"tensor {t.name}: data {t.data.dtype}{t.data.shape} != {t.dtype}{t.shape}")
        buffers.append(
            _buffer(np.ascontiguousarray(t.data).astype(f"<{t.data.dtype.str[1:]}").tobytes(), schema)
        )
        tensors.append(_tensor(t, len(buffers) - 1, schema))

    opcode_index: dict[tuple[str, int], int] = {}
    opcodes = []
    operators = []
    for op in model.ops:
        key = (op.kind, _op_version(op, model))
        if key not in opcode_index:
            code = schema.OperatorCodeT()
            builtin = getattr(schema.BuiltinOperator, op.kind)
            code.builtinCode = builtin
            code.deprecatedBuiltinCode = min(builtin, 127)  # 127: PLACEHOLDER_FOR_GREATER_OP_CODES
            code.version = key[1]
            opcode_index[key] = len(opcodes)
            opcodes.append(code)
        o = schema.OperatorT()
        o.opcodeIndex = opcode_index[key]
        o.inputs = np.asarray(op.inputs, dtype=np.int32)
        o.outputs = np.asarray(op.outputs, dtype=np.int32)
        o.builtinOptionsType, o.builtinOptions = _builtin_options(op, schema)
        operators.append(o)

    sub = schema.SubGraphT()
    sub.name = "main"
    sub.tensors = tensors
    sub.inputs = np.asarray([b.tensor for b in model.inputs], dtype=np.int32)
    sub.outputs = np.asarray(model.outputs, dtype=np.int32)
    sub.operators = operators

    m = schema.ModelT()
    m.version = 3
    m.description = DESCRIPTION
    m.operatorCodes = opcodes
    m.subgraphs = [sub]
    metadata = []
    if labels:
        buffers.append(_buffer("\n".join(labels).encode("utf-8"), schema))
        entry = schema.MetadataT()
        entry.name = LABELS_METADATA
        entry.buffer = len(buffers) - 1
        metadata.append(entry)
    m.buffers = buffers
    m.metadata = metadata or None

    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def align(model_bytes: bytes) -> bytes:
    """Re-serialises through the wheel's C++ aligner so buffer data sits on 16-byte boundaries."""
    from tflite_micro.tensorflow.lite.micro.tools import tflite_flatbuffer_align_wrapper

    with tempfile.TemporaryDirectory(prefix="mcu_effnet_align_") as tmp:
        src, dst = os.path.join(tmp, "in.tflite"), os.path.join(tmp, "out.tflite")
        with open(src, "wb") as f:
            f.write(model_bytes)
        tflite_flatbuffer_align_wrapper.align_tflite_model(src, dst)
        with open(dst, "rb") as f:
            return f.read()


def write_tflite_bytes(model: Int8Model, labels: list[str] | None = None) -> bytes:
    return align(pack_model(model, labels))
