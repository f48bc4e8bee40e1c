"""Checks that a loaded graph is something mcu-effnet can run: int8 (or 16x8), supported ops, consistent shapes.

Every check raises ``UserError`` with one line naming the file. The per-op checks guarantee
what the simulator and code generator assume (arity, dtypes, ranks, shapes that agree with the
op's attributes), so a crafted or corrupted file is rejected here instead of crashing later.
"""

from __future__ import annotations

from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph, Op, Tensor
from mcu_effnet.graph.ops import SUPPORTED_OPS
from mcu_effnet.ops import int16
from mcu_effnet.ops.registry import check_op

_FLOAT = ("float32", "float16", "float64")


# Ops outside the project's scope, with the reason a user is given. TFLite Micro runs them; we
# name them instead of calling them merely "unsupported".
_RECURRENT = (
    "LSTM",
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "BIDIRECTIONAL_SEQUENCE_LSTM",
    "RNN",
    "UNIDIRECTIONAL_SEQUENCE_RNN",
    "BIDIRECTIONAL_SEQUENCE_RNN",
    "SVDF",
)


def validate_graph(graph: Graph, label: str) -> None:
    """Raises UserError for the first problem found, in the order a user can act on them."""
    if not graph.ops:
        raise UserError(f"{label}: the model has no operators")
    if not graph.inputs or not graph.outputs:
        raise UserError(f"{label}: the model declares no {'inputs' if not graph.inputs else 'outputs'}")
    _check_not_float(graph, label)
    for op in graph.ops:
        if op.kind not in SUPPORTED_OPS:
            raise UserError(f"{label}: {_unsupported(graph, op)}")
    _check_interface(graph, label)
    _check_dataflow(graph, label)
    for op in graph.ops:
        empty = [i for i in op.inputs + op.outputs if i >= 0 and 0 in graph.tensors[i].shape]
        if empty:
            t = graph.tensors[empty[0]]
            raise UserError(
                f"{label}: op {op.index} ({op.kind}): tensor '{t.name}' has shape {list(t.shape)}"
            )
        if int16.is_16x8(graph, op) and op.kind not in int16.INT16_KINDS:
            raise UserError(
                f"{label}: op {op.index} ({op.kind}, {_types(graph, op)}): 16-bit activations (TFLite's "
                f"16x8 scheme) are not supported for {op.kind}; they are for {', '.join(sorted(int16.INT16_KINDS))}"
            )
        problem = check_op(graph, op)
        if problem:
            raise UserError(f"{label}: op {op.index} ({op.kind}): {problem}")


def _types(graph: Graph, op: Op) -> str:
    """The op's element types as a user reads them: "int16 in, int16 out"."""

    def names(indices: list[int]) -> str:
        return "/".join(dict.fromkeys(graph.tensors[i].dtype for i in indices if i >= 0)) or "none"

    data_inputs = [i for i in op.inputs if i >= 0 and not graph.tensors[i].is_constant]
    return f"{names(data_inputs or op.inputs)} in, {names(op.outputs)} out"


def _unsupported(graph: Graph, op: Op) -> str:
    if op.kind in _RECURRENT:
        return (
            f"op {op.index} ({op.kind}, {_types(graph, op)}) is out of scope: mcu-effnet runs "
            "convolutional networks, not recurrent or SVDF layers"
        )
    if op.kind.startswith("CUSTOM:"):
        return f"op {op.index} ({op.kind}, {_types(graph, op)}) is out of scope: custom ops have no reference kernel"
    return (
        f"unsupported op {op.kind} at index {op.index} ({_types(graph, op)}); "
        f"supported: {', '.join(SUPPORTED_OPS)}"
    )


def _check_interface(graph: Graph, label: str) -> None:
    """Inputs and outputs are int8 or int16 (16x8), a float32 input only QUANTIZE reads, a
    float32 output from DEQUANTIZE; otherwise the message names the op that reads or writes them. Whether the op takes int16 is its own check's business."""
    for role, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for i in indices:
            t = graph.tensors[i]
            if t.dtype in int16.ACTIVATION_DTYPES:
                continue
            # A float output (DEQUANTIZE) or indices (ARG_MAX): the op's own check says which types.
            if role == "output" and any(
                (o.kind, t.dtype) in (("DEQUANTIZE", "float32"), ("ARG_MAX", "int32"), ("ARG_MAX", "int64"))
                and i in o.outputs
                for o in graph.ops
            ):
                continue
            # A float input that only QUANTIZE ops read (a model converted with float I/O).
            readers = [o for o in graph.ops if i in o.inputs]
            if (
                role == "input"
                and t.dtype == "float32"
                and readers
                and all(o.kind == "QUANTIZE" for o in readers)
            ):
                continue
            op = next((o for o in graph.ops if i in o.inputs or i in o.outputs), None)
            where = f"op {op.index} ({op.kind}, {_types(graph, op)}): " if op else ""
            raise UserError(
                f"{label}: {where}model {role} '{t.name}' is {t.dtype}; mcu-effnet needs int8 inputs and "
                "outputs, int16 in a 16x8 model (export the model with an int8 interface)"
            )


def _check_not_float(graph: Graph, label: str) -> None:
    """A model computing in float (float tensors feeding anything but a QUANTIZE) is a float model."""
    for op in graph.ops:
        if op.kind in ("QUANTIZE", "DEQUANTIZE"):
            continue
        for i in op.inputs + op.outputs:
            if i >= 0 and graph.tensors[i].dtype in _FLOAT:
                raise UserError(
                    f"{label}: this is a float model: run `mcu-effnet qat` or quantize it first "
                    f"(op {op.index} {op.kind} computes in {graph.tensors[i].dtype})"
                )


def _check_dataflow(graph: Graph, label: str) -> None:
    """Every op input is a constant, a graph input, or an earlier op's output; each tensor written once."""
    ready = {i for i in graph.inputs}
    ready |= {t.index for t in graph.tensors if t.is_constant}
    for op in graph.ops:
        for i in op.inputs:
            if i >= 0 and i not in ready:
                t: Tensor = graph.tensors[i]
                raise UserError(
                    f"{label}: op {op.index} ({op.kind}) reads tensor {i} '{t.name}' before anything writes it"
                )
        for i in op.outputs:
            if i in ready:
                raise UserError(
                    f"{label}: op {op.index} ({op.kind}) overwrites tensor {i} '{graph.tensors[i].name}'"
                )
            ready.add(i)
    for i in graph.outputs:
        if graph.tensors[i].is_constant:
            raise UserError(
                f"{label}: model output '{graph.tensors[i].name}' is a constant, not computed by any op"
            )
        if i not in ready:
            raise UserError(f"{label}: model output '{graph.tensors[i].name}' is never computed")
