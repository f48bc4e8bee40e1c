"""Reads a ``.tflite`` flatbuffer into the graph IR, turning every defect into one ``UserError`` line.

The flatbuffer is read with the generated schema accessors of the tflite-micro wheel. Python's
flatbuffers reader does no verification, so a corrupt file surfaces as IndexError, struct.error,
ValueError, ... from deep inside it: ``load_tflite`` catches those around the whole read and
reports "corrupt or truncated". Before anything is allocated, vector lengths are bounded by the
file size and tensor shapes by ``MAX_TENSOR_ELEMENTS``, so a flipped byte cannot make us
allocate gigabytes or iterate for minutes.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph, Op, Tensor
from mcu_effnet.graph.ops import OPTIONS_TABLE, SUPPORTED_OPS
from mcu_effnet.graph.support import validate_graph

# Far above any microcontroller model (an int8 activation of 16 Mi elements is 16 MB of SRAM).
MAX_TENSOR_ELEMENTS = 1 << 24
# TFLite Micro multiplies and divides scales in float32 (an activation range is 6 / scale, a bias
# scale input x weight, a multiplier input x weight / output): within 2^-60 .. 2^60 every such
# product and quotient of two or three scales stays finite and normal. Real models sit near 2^-10.
SCALE_MIN = 2.0**-60
SCALE_MAX = 2.0**60
MAX_RANK = 6

# Element types the IR holds as numpy arrays; any other type the schema knows is kept by name
# (a STRING or RESOURCE tensor of an op we refuse must not make the whole file "corrupt").
_DTYPES = {
    schema.TensorType.FLOAT32: "float32",
    schema.TensorType.FLOAT16: "float16",
    schema.TensorType.INT32: "int32",
    schema.TensorType.UINT8: "uint8",
    schema.TensorType.INT64: "int64",
    schema.TensorType.BOOL: "bool",
    schema.TensorType.INT16: "int16",
    schema.TensorType.INT8: "int8",
    schema.TensorType.FLOAT64: "float64",
    schema.TensorType.UINT32: "uint32",
    schema.TensorType.UINT16: "uint16",
    schema.TensorType.UINT64: "uint64",
}
_OTHER_TYPES = {
    value: name.lower()
    for name, value in vars(schema.TensorType).items()
    if not name.startswith("_") and value not in _DTYPES
}

_OP_NAMES = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
_OPTIONS_NAMES = {
    value: name for name, value in vars(schema.BuiltinOptions).items() if not name.startswith("_")
}
_ENUMS = {
    "padding": {v: k for k, v in vars(schema.Padding).items() if not k.startswith("_")},
    "fused_activation_function": {
        v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")
    },
    "weights_format": {
        v: k for k, v in vars(schema.FullyConnectedOptionsWeightsFormat).items() if not k.startswith("_")
    },
}

# Ops that exist only to convert at a float interface; a model made only of these and float
# compute ops is a float model.
_FLOAT_COMPUTE_DTYPES = ("float32", "float16", "float64")

# Exceptions the flatbuffers reader raises on garbage: an offset past the end, a bad string, ...
_PARSE_ERRORS = (
    IndexError,
    struct.error,
    ValueError,
    TypeError,
    UnicodeDecodeError,
    OverflowError,
    AttributeError,
    KeyError,
    RecursionError,
)


class _Corrupt(Exception):
    """Raised inside the reader for a structural defect; becomes a UserError with the file name."""


def load_tflite(path_or_bytes: str | os.PathLike | bytes | bytearray | memoryview) -> Graph:
    """Loads an int8 ``.tflite`` model (a path, or the file's bytes) into a ``Graph``.

    Raises ``UserError`` — one line naming the file — for anything that is not a readable,
    fully int8 model made of supported ops.
    """
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        label = "<bytes>"
        data = bytes(path_or_bytes)
    else:
        label = os.fspath(path_or_bytes)
        try:
            with open(label, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise UserError(f"{label}: no such file") from None
        except IsADirectoryError:
            raise UserError(f"{label}: is a directory, not a .tflite file") from None
        except OSError as exc:
            raise UserError(f"{label}: cannot read: {exc.strerror or exc}") from None
    if len(data) < 8:
        raise UserError(f"{label}: not a flatbuffer (only {len(data)} bytes)")
    root = struct.unpack_from("<I", data, 0)[0]
    identifier = data[4:8]
    if identifier != b"TFL3":
        if root >= len(data) or root < 8:
            raise UserError(
                f"{label}: not a flatbuffer (root offset {root} outside the {len(data)}-byte file)"
            )
        raise UserError(f"{label}: not a TFLite model (file identifier {identifier!r}, expected b'TFL3')")
    if root >= len(data) or root < 8:
        raise UserError(
            f"{label}: corrupt or truncated .tflite (root offset {root} outside the {len(data)}-byte file)"
        )
    try:
        graph = _read(data)
    except _Corrupt as exc:
        raise UserError(f"{label}: corrupt or truncated .tflite ({exc})") from None
    except _PARSE_ERRORS as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{label}: corrupt or truncated .tflite ({type(exc).__name__}: {detail})") from None
    except MemoryError:
        raise UserError(f"{label}: corrupt .tflite (a size field asks for more memory than exists)") from None
    graph.source = label
    validate_graph(graph, label)
    return graph


def _text(raw: bytes | None, fallback: str, limit: int = 120) -> str:
    """A name from the file, made safe for one-line messages (a corrupt file can hold anything)."""
    if not raw:
        return fallback
    text = raw.decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_len(n: int, what: str, limit: int) -> int:
    if n < 0 or n > limit:
        raise _Corrupt(f"{what} has length {n}, more than the file can hold")
    return n


def _read(data: bytes) -> Graph:
    size = len(data)
    model = schema.Model.GetRootAs(data, 0)
    if model.Version() != 3:
        raise _Corrupt(f"schema version {model.Version()}, expected 3")
    n_sub = _check_len(model.SubgraphsLength(), "subgraph list", size // 4)
    if n_sub < 1:
        raise _Corrupt("no subgraph")
    subgraph = model.Subgraphs(0)
    n_buffers = _check_len(model.BuffersLength(), "buffer list", size // 4)
    buffers = [_buffer_bytes(model.Buffers(i), data, i) for i in range(n_buffers)]

    n_codes = _check_len(model.OperatorCodesLength(), "operator code list", size // 4)
    op_kinds = []
    for i in range(n_codes):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            op_kinds.append(f"CUSTOM:{_text(custom, '?')}")
        else:
            op_kinds.append(_OP_NAMES.get(builtin, f"BUILTIN_{builtin}"))

    n_tensors = _check_len(subgraph.TensorsLength(), "tensor list", size // 4)
    tensors = [_tensor(subgraph.Tensors(i), i, buffers) for i in range(n_tensors)]

    def tensor_list(values: np.ndarray | int, what: str, allow_missing: bool) -> list[int]:
        if isinstance(values, int):  # the accessors return 0 for an absent vector
            return []
        out = [int(v) for v in values]
        for v in out:
            if not (0 <= v < n_tensors or (allow_missing and v == -1)):
                raise _Corrupt(f"{what} refers to tensor {v}, but the model has {n_tensors}")
        return out

    inputs = tensor_list(subgraph.InputsAsNumpy(), "subgraph input", False)
    outputs = tensor_list(subgraph.OutputsAsNumpy(), "subgraph output", False)

    n_ops = _check_len(subgraph.OperatorsLength(), "operator list", size // 4)
    ops = []
    for i in range(n_ops):
        op = subgraph.Operators(i)
        opcode = op.OpcodeIndex()
        if opcode >= n_codes:
            raise _Corrupt(f"op {i} uses operator code {opcode}, but the model has {n_codes}")
        kind = op_kinds[opcode]
        ops.append(
            Op(
                index=i,
                kind=kind,
                inputs=tensor_list(op.InputsAsNumpy(), f"op {i} ({kind}) input", True),
                outputs=tensor_list(op.OutputsAsNumpy(), f"op {i} ({kind}) output", False),
                attrs=_attrs(op, kind, i),
            )
        )

    metadata: dict[str, bytes] = {}
    for i in range(_check_len(model.MetadataLength(), "metadata list", size // 4)):
        entry = model.Metadata(i)
        index = entry.Buffer()
        if index >= n_buffers:
            raise _Corrupt(f"metadata entry {i} refers to buffer {index}, but the model has {n_buffers}")
        name = entry.Name()
        metadata[_text(name, f"metadata_{i}", limit=1000)] = buffers[index]

    name = subgraph.Name()
    description = model.Description()
    return Graph(
        tensors=tensors,
        ops=ops,
        inputs=inputs,
        outputs=outputs,
        name=_text(name, ""),
        description=description.decode("utf-8", "replace") if description else "",
        metadata=metadata,
    )


def _buffer_bytes(buffer: Any, data: bytes, index: int) -> bytes:
    """A buffer's contents: inline in the flatbuffer, or (models over 2 GB) at offset/size in the file."""
    offset = buffer.Offset()
    if offset > 1:
        length = buffer.Size()
        if offset + length > len(data):
            raise _Corrupt(
                f"buffer {index} spans bytes {offset}..{offset + length}, past the end of the file"
            )
        return data[offset : offset + length]
    n = buffer.DataLength()
    if n == 0:
        return b""
    start = buffer._tab.Vector(buffer._tab.Offset(4))
    if start < 0 or start + n > len(data):
        raise _Corrupt(f"buffer {index} spans bytes {start}..{start + n}, past the end of the file")
    return data[start : start + n]


def _tensor(t: Any, index: int, buffers: list[bytes]) -> Tensor:
    name = _text(t.Name(), f"tensor_{index}")
    type_code = t.Type()
    dtype = _DTYPES.get(type_code) or _OTHER_TYPES.get(type_code)
    if dtype is None:
        raise _Corrupt(
            f"tensor {index} '{name}' has element type {type_code}, which the schema does not define"
        )
    rank = t.ShapeLength()
    if rank > MAX_RANK:
        raise _Corrupt(f"tensor {index} '{name}' has rank {rank}")
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if rank else ()
    # A zero dimension is legal (the LSTM kernels' placeholder intermediates are [0]); an op we
    # run refuses an empty tensor in validation, by name.
    if any(d < 0 for d in shape):
        raise _Corrupt(f"tensor {index} '{name}' has shape {list(shape)} (dimensions must be >= 0)")
    elements = 1
    for d in shape:
        elements *= d
    if elements > MAX_TENSOR_ELEMENTS:
        raise _Corrupt(
            f"tensor {index} '{name}' has {elements} elements, far more than a microcontroller holds"
        )

    scale = np.zeros(0, np.float32)
    zero_point = np.zeros(0, np.int64)
    axis = 0
    q = t.Quantization()
    if q is not None:
        n_scale = q.ScaleLength()
        n_zp = q.ZeroPointLength()
        if n_scale > 0:
            scale = np.array(q.ScaleAsNumpy(), dtype=np.float32)
        if n_zp > 0:
            zero_point = np.array(q.ZeroPointAsNumpy(), dtype=np.int64)
        axis = int(q.QuantizedDimension())
        if scale.size and zero_point.size != scale.size:
            raise _Corrupt(
                f"tensor {index} '{name}' has {scale.size} scales but {zero_point.size} zero points"
            )
        with np.errstate(invalid="ignore"):  # a signalling NaN warns when widened; NaN is out of range
            magnitude = np.abs(scale.astype(np.float64))
            out_of_range = (magnitude != 0) & ~((magnitude >= SCALE_MIN) & (magnitude <= SCALE_MAX))
        if out_of_range.any():
            raise _Corrupt(
                f"tensor {index} '{name}' has scale {float(scale[out_of_range][0]):.4g}, out of the range "
                "2^-60 .. 2^60 in which TFLite Micro's float32 arithmetic on scales stays finite"
            )
        # A 1-D tensor has only axis 0: converters write any axis on per-channel biases
        # (TFLite Micro's person-detection model says 3), and TFLite Micro never reads it.
        if len(shape) == 1 and scale.size == shape[0]:
            axis = 0
        if scale.size > 1 and not (0 <= axis < len(shape) and shape[axis] == scale.size):
            raise _Corrupt(
                f"tensor {index} '{name}' of shape {list(shape)} has {scale.size} per-channel scales on axis {axis}"
            )

    buffer_index = t.Buffer()
    if buffer_index >= len(buffers):
        raise _Corrupt(
            f"tensor {index} '{name}' refers to buffer {buffer_index}, but the model has {len(buffers)}"
        )
    payload = buffers[buffer_index]
    data = None
    if payload and dtype not in _DTYPES.values():
        data = np.frombuffer(payload, dtype=np.uint8).copy()  # a constant of a type no kernel of ours reads
    elif payload:
        itemsize = np.dtype(dtype).itemsize
        if len(payload) != elements * itemsize:
            raise _Corrupt(
                f"tensor {index} '{name}' of shape {list(shape)} {dtype} needs {elements * itemsize} bytes, "
                f"its buffer {buffer_index} has {len(payload)}"
            )
        data = np.frombuffer(payload, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
    return Tensor(
        index=index,
        name=name,
        shape=shape,
        dtype=dtype,
        scale=scale,
        zero_point=zero_point,
        quantized_dimension=axis,
        data=data,
    )


def _snake(camel: str) -> str:
    out = []
    for ch in camel:
        if ch.isupper():
            out.append("_")
            out.append(ch.lower())
        else:
            out.append(ch)
    return "".join(out)


def _attrs(op: Any, kind: str, index: int) -> dict[str, Any]:
    """The op's builtin options as plain Python values, named after the schema fields in snake_case."""
    options_type = op.BuiltinOptionsType()
    if options_type == schema.BuiltinOptions.NONE or kind not in SUPPORTED_OPS:
        return {}  # an unsupported op is reported by name later; its options are not our concern
    expected = OPTIONS_TABLE.get(kind)
    if expected is None:
        return {}  # LOGISTIC, RELU, ...: nothing to read even if a writer attached a table
    if _OPTIONS_NAMES.get(options_type) != expected:
        raise _Corrupt(
            f"op {index} ({kind}) carries {_OPTIONS_NAMES.get(options_type, options_type)}, expected {expected}"
        )
    options = schema.BuiltinOptionsCreator(options_type, op.BuiltinOptions())
    if options is None:
        raise _Corrupt(f"op {index} ({kind}) has unreadable options")
    attrs: dict[str, Any] = {}
    for field_name, value in vars(options).items():
        key = _snake(field_name)
        if value is None:
            continue
        if isinstance(value, np.ndarray):
            value = [v.item() for v in value]
        elif isinstance(value, np.generic):
            value = value.item()
        if key in _ENUMS:
            if value not in _ENUMS[key]:
                raise _Corrupt(f"op {index} ({kind}) has {key} = {value}, not a known value")
            value = _ENUMS[key][value]
        if isinstance(value, list | int | float | bool | str):
            attrs[key] = value
    return attrs


__all__ = ["load_tflite", "SUPPORTED_OPS", "MAX_TENSOR_ELEMENTS"]
