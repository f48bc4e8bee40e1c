"""A model's inputs and outputs as a firmware passes them: each with its own element type, packed
back to back as bytes in the model's order (the form ``model_invoke()``, the test vector,
``inputs.bin`` / ``outputs.bin`` and the printed OUTPUT line take).

The packing is plain concatenation, no padding: an int16 input after an int8 one of odd length
starts at an odd byte. Everything that reads the packed form copies bytes (the engine's
``ek_copy``, ``memcpy`` in the harness and the TensorFlow Lite Micro main), never typed loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mcu_effnet.errors import UserError

if TYPE_CHECKING:  # the CLI imports this module at start-up: no graph package behind it
    from mcu_effnet.graph.ir import Graph, Tensor

# Element types a model input may have in a firmware (float32 when QUANTIZE reads it), and those
# of an output (DEQUANTIZE gives float32, ARG_MAX int32 or int64 indices).
INPUT_CTYPES = {"int8": "int8_t", "int16": "int16_t", "float32": "float"}
OUTPUT_CTYPES = {**INPUT_CTYPES, "int32": "int32_t", "int64": "int64_t"}


@dataclass(frozen=True)
class Port:
    """One model input or output in the packed form."""

    k: int  # its position among the model's inputs (or outputs)
    name: str
    shape: tuple[int, ...]  # as the model declares it, batch axis first
    dtype: str  # numpy name: int8, int16, int32, int64, float32
    offset: int  # bytes before it in the packed form
    size: int  # its bytes

    @property
    def ctype(self) -> str:
        return OUTPUT_CTYPES[self.dtype]

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "bytes": self.size}


def ports(tensors: list[Tensor]) -> list[Port]:
    out, offset = [], 0
    for k, t in enumerate(tensors):
        out.append(Port(k, t.name, tuple(int(d) for d in t.shape), t.dtype, offset, int(t.nbytes)))
        offset += int(t.nbytes)
    return out


def shared_ctype(ctypes: list[str]) -> str | None:
    """The C type every port has (typedef'd as model_input_t / model_output_t), or None."""
    return ctypes[0] if len(set(ctypes)) == 1 else None


def from_report(rows: list[dict]) -> list[Port]:
    """The ports ``report.json`` lists (``inputs`` or ``outputs``)."""
    out, offset = [], 0
    for k, row in enumerate(rows):
        out.append(Port(k, row["name"], tuple(row["shape"]), row["dtype"], offset, int(row["bytes"])))
        offset += int(row["bytes"])
    return out


def check_ports(graph: Graph, label: str) -> tuple[list[Port], list[Port]]:
    """The inputs and outputs of a firmware project, or UserError naming the first that no
    firmware can pass (a float16 input, a bool output, ...)."""
    if not graph.inputs or not graph.outputs:
        raise UserError(
            f"{label}: has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; firmware needs at least one of each"
        )
    for what, ids, allowed in (
        ("input", graph.inputs, INPUT_CTYPES),
        ("output", graph.outputs, OUTPUT_CTYPES),
    ):
        if len(set(ids)) != len(ids):
            raise UserError(f"{label}: names one tensor twice among its {what}s")
        for t in (graph.tensors[i] for i in ids):
            if t.dtype not in allowed:
                raise UserError(
                    f"{label}: {what} '{t.name}' is {t.dtype}; firmware takes {what}s of {', '.join(allowed)}"
                )
    if set(graph.inputs) & set(graph.outputs):
        raise UserError(f"{label}: a model input is also a model output; firmware needs an op between them")
    return ports(graph.input_tensors), ports(graph.output_tensors)


def pack(arrays: list[np.ndarray], where: list[Port]) -> np.ndarray:
    """One row of bytes per sample: each port's values (its own type) back to back."""
    n = int(np.asarray(arrays[0]).shape[0])
    rows = [
        np.ascontiguousarray(np.asarray(a, dtype=p.dtype).reshape(n, -1)).view(np.uint8)
        for a, p in zip(arrays, where, strict=True)
    ]
    return np.ascontiguousarray(np.concatenate(rows, axis=1))


def unpack(rows: np.ndarray, where: list[Port]) -> list[np.ndarray]:
    """``pack``'s inverse: rows of packed bytes -> one batch per port, shaped and typed as it."""
    rows = np.ascontiguousarray(np.asarray(rows, dtype=np.uint8).reshape(len(rows), -1))
    return [
        rows[:, p.offset : p.offset + p.size].copy().view(p.dtype).reshape(len(rows), *p.shape[1:])
        for p in where
    ]


def from_printed(values: list[str], where: list[Port]) -> list[np.ndarray]:
    """The harness's OUTPUT line (every output's values in order, a float as its bits) -> one
    array per output."""
    out, pos = [], 0
    for p in where:
        count = p.size // p.itemsize
        chunk = [int(v) for v in values[pos : pos + count]]
        pos += count
        if p.dtype == "float32":
            out.append(np.array(chunk, dtype=np.uint32).view(np.float32))
        else:
            out.append(np.array(chunk, dtype=p.dtype))
    return out
