"""Runs a Graph on a batch of int8 inputs with the numpy kernels, op by op in execution order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph, Op, Tensor
from mcu_effnet.sim.kernels import KERNELS, Kernel

# Activation elements per batch slice (see run): 2 MB per int64 intermediate; measured best of 2^14..2^20.
_SLICE_ELEMENTS = 1 << 18


def _describe(shape: tuple[int, ...], dtype: str) -> str:
    return f"({', '.join(str(d) for d in shape)}) {dtype}"


def check_batchable(graph: Graph) -> None:
    """The simulator batches on axis 0, so every activation must have a leading dimension of 1."""
    for t in graph.tensors:
        if not t.is_constant and (not t.shape or t.shape[0] != 1):
            raise UserError(
                f"{graph.source or 'model'}: tensor '{t.name}' has shape {list(t.shape)}; "
                "the simulator needs every activation to start with a batch dimension of 1"
            )
    for op in graph.ops:
        # Other ops that mix samples (PAD or CONCATENATION on axis 0) change the first dimension,
        # caught above; a MEAN over axis 0 with keep_dims does not.
        folds_batch = False
        if op.kind in ("MEAN", "SUM", "REDUCE_MAX"):
            axes = graph.tensors[op.inputs[1]].data
            rank = len(graph.tensors[op.inputs[0]].shape)
            folds_batch = bool(axes is not None and any(int(a) % rank == 0 for a in axes.reshape(-1)))
        if folds_batch:
            raise UserError(
                f"{graph.source or 'model'}: op {op.index} ({op.kind}) works across the batch axis, "
                "which the simulator cannot batch"
            )


def _check_input(x: np.ndarray, t: Tensor, which: str) -> np.ndarray:
    x = np.asarray(x)
    expected = ("N", *t.shape[1:])
    if x.dtype != np.dtype(t.dtype) or x.ndim != len(t.shape) or tuple(x.shape[1:]) != tuple(t.shape[1:]):
        raise UserError(
            f"{which} has shape {_describe(x.shape, str(x.dtype))}, the model expects "
            f"({', '.join(map(str, expected))}) {t.dtype} (a leading batch axis N, then {list(t.shape[1:])})"
        )
    if x.shape[0] < 1:
        raise UserError(f"{which} is an empty batch")
    return x


def run(
    graph: Graph, x: np.ndarray | list[np.ndarray], capture: bool = False
) -> np.ndarray | list[np.ndarray] | dict[int, np.ndarray]:
    """Runs the whole batch through the graph, bit-exact with TFLite Micro.

    ``x``: one int8 array with a leading batch axis N replacing the input's first dimension
    (a list of such arrays, one per graph input, for multi-input graphs).

    Returns the output array (N, ...) for a single-output graph, else a list aligned with
    ``graph.outputs``. With ``capture=True`` returns instead a dict mapping every tensor index
    of the graph inputs and of every op output to its batched value (outputs included).
    Raises ``UserError`` when ``x`` does not fit the graph's input (both shapes named).

    The first run prepares per-op plans (multipliers, reshaped weights) and keeps them on the
    graph object; a graph is treated as immutable once loaded, as TFLite Micro treats a model
    after Prepare. Load the file again rather than editing a Graph that has been run.
    """
    xs = list(x) if isinstance(x, list | tuple) else [x]
    if len(xs) != len(graph.inputs):
        raise UserError(f"the model has {len(graph.inputs)} inputs, got {len(xs)} arrays")
    plan = _plan(graph)
    values: dict[int, np.ndarray] = {}
    for k, (array, index) in enumerate(zip(xs, graph.inputs, strict=True)):
        values[index] = _check_input(array, graph.tensors[index], "input" if len(xs) == 1 else f"input {k}")
    n = xs[0].shape[0]
    if any(v.shape[0] != n for v in values.values()):
        raise UserError("all inputs must have the same batch size")

    step = max(1, min(n, plan.slice_size))
    slices = [
        _run_slice(graph, plan, {i: v[s : s + step] for i, v in values.items()}, capture)
        for s in range(0, n, step)
    ]
    merged = {
        i: (parts[0] if len(parts) == 1 else np.concatenate(parts)) for i, parts in _gather(slices).items()
    }
    if capture:
        return merged
    outs = [merged[i] for i in graph.outputs]
    return outs[0] if len(outs) == 1 else outs


@dataclass(frozen=True)
class _Step:
    op: Op
    kernel: Kernel
    constants: list[np.ndarray | None]  # constant inputs by position (None: an activation or omitted)
    frees: list[int]  # activations read for the last time here
    out_shapes: list[tuple[tuple[int, ...], np.dtype]]  # per output: shape after the batch axis, dtype


@dataclass(frozen=True)
class _Plan:
    steps: list[_Step]
    slice_size: int


def _plan(graph: Graph) -> _Plan:
    """What does not depend on the inputs, worked out once per graph (kept on the graph object)."""
    cached = graph.__dict__.get("_sim_plan")
    if cached is not None:
        return cached
    check_batchable(graph)
    last_use: dict[int, int] = {}
    for op in graph.ops:
        for i in op.inputs:
            last_use[i] = op.index
    keep = set(graph.outputs)
    steps = []
    for op in graph.ops:
        kernel = KERNELS.get(op.kind)
        if kernel is None:
            raise UserError(f"the simulator has no kernel for {op.kind} (op {op.index})")
        constants = [
            graph.tensors[i].data if i >= 0 and graph.tensors[i].is_constant else None for i in op.inputs
        ]
        frees = sorted(
            {i for i in op.inputs if i >= 0 and last_use.get(i) == op.index and i not in keep}
            - {t.index for t in graph.tensors if t.is_constant}
        )
        out_shapes = [
            (tuple(graph.tensors[i].shape[1:]), np.dtype(graph.tensors[i].dtype)) for i in op.outputs
        ]
        steps.append(_Step(op, kernel, constants, frees, out_shapes))
    # Run the batch in slices whose largest activation stays cache-sized: the int64 passes of
    # requantization are memory-bound, so one huge slice is slower per image than several.
    largest = max(
        (int(np.prod(t.shape[1:], dtype=np.int64)) for t in graph.tensors if not t.is_constant), default=1
    )
    plan = _Plan(steps, max(1, _SLICE_ELEMENTS // max(largest, 1)))
    graph.__dict__["_sim_plan"] = plan
    return plan


def _gather(slices: list[dict[int, np.ndarray]]) -> dict[int, list[np.ndarray]]:
    out: dict[int, list[np.ndarray]] = {}
    for values in slices:
        for i, v in values.items():
            out.setdefault(i, []).append(v)
    return out


def _run_slice(
    graph: Graph, plan: _Plan, values: dict[int, np.ndarray], capture: bool
) -> dict[int, np.ndarray]:
    """Runs every op on one slice of the batch; returns the outputs (or, capturing, every tensor)."""
    n = next(iter(values.values())).shape[0]
    for step in plan.steps:
        op = step.op
        args = [
            const if const is not None or i < 0 else values[i]
            for i, const in zip(op.inputs, step.constants, strict=True)
        ]
        results = step.kernel(graph, op, args)
        for index, value, (shape, dtype) in zip(op.outputs, results, step.out_shapes, strict=True):
            if value.dtype != dtype or value.shape[1:] != shape or value.shape[0] != n:
                t = graph.tensors[index]
                raise RuntimeError(
                    f"kernel {op.kind} (op {op.index}) produced {value.shape} {value.dtype} "
                    f"for tensor '{t.name}' {list(t.shape)} {t.dtype}"
                )
            values[index] = value
        if not capture:
            for i in step.frees:
                values.pop(i, None)
    if capture:
        return values
    return {i: values[i] for i in graph.outputs}
