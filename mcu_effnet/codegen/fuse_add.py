"""Residual ADDs fused into the convolution that produces one of their operands (native engine).

A residual block ends with ADD(x, conv(u)): TFLite Micro holds x, u and the convolution's
output y at once. Fused, the engine computes y a few output pixels at a time into a small
scratch buffer and adds each chunk to x straight away, writing the sum over x when x dies
there (``mcu_effnet.graph.planner``, kind ``CONV_ADD``): y never exists whole. The values are
the same bytes: each chunk is the convolution's own kernel on a view of the op, then the ADD's
own arithmetic on the chunk (``ek_chunks.h``).

Candidates: an ADD of two same-shape int8 maps (no broadcasting) of one image, one of them the
output of a CONV_2D read by that ADD alone and not a model output, the other not the
convolution's own input. ``choose`` (the engine's) makes them, and the row-by-row fusions of
``fuse_lines``, where that lowers the arena.
Like the SiLU fusion, only the engine sees the fused graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.graph.op_order import drop_needless_modes
from mcu_effnet.graph.planner import CONV_ADD, ArenaPlan, plan_arena

Fusion = Any  # AddFusion here, LineFusion (fuse_lines): anything with an index and to_dict()


@dataclass(frozen=True)
class AddFusion:
    conv: int  # the CONV_2D's index
    add: int  # the ADD's index: the fused op takes it
    conv_first: bool  # the convolution's output is the ADD's first operand

    @property
    def index(self) -> int:
        return self.add

    def to_dict(self) -> dict[str, object]:
        return {"op": self.add, "replaces": [self.conv, self.add], "kind": "CONV_2D + residual ADD"}


def candidates(graph: Graph) -> list[AddFusion]:
    """Every ADD that can take in one of its operands' convolutions (at most one per ADD: the
    convolution stored later, the end of the block's main path)."""
    readers: dict[int, list[int]] = {}
    for op in graph.ops:
        for t in op.inputs:
            readers.setdefault(t, []).append(op.index)
    producer = {t: op for op in graph.ops for t in op.outputs}
    found: list[AddFusion] = []
    for add in graph.ops:
        if add.kind != "ADD" or len(add.inputs) != 2 or len(add.outputs) != 1:
            continue
        z = graph.tensors[add.outputs[0]]
        if len(z.shape) != 4 or z.shape[0] != 1 or z.dtype != "int8":
            continue
        options = []
        for k in (0, 1):
            y, x = add.inputs[k], add.inputs[1 - k]
            conv = producer.get(y)
            ty, tx = graph.tensors[y], graph.tensors[x]
            if (
                conv is None
                or conv.kind != "CONV_2D"
                or len(conv.outputs) != 1
                or readers.get(y) != [add.index]
                or y in graph.outputs
                or tx.is_constant
                or x == conv.inputs[0]
                or tuple(tx.shape) != tuple(z.shape)
                or tuple(ty.shape) != tuple(z.shape)
                or tx.dtype != "int8"
                or ty.dtype != "int8"
            ):
                continue
            options.append(AddFusion(conv.index, add.index, k == 0))
        if options:
            found.append(max(options, key=lambda f: f.conv))
    return found


def fuse(graph: Graph, fusions: list[AddFusion]) -> Graph:
    """``graph`` with each fusion's CONV_2D and ADD as one ``CONV_ADD`` op at the ADD's place
    (a new Graph sharing the tensors). Its inputs: the convolution's input, weights, bias (-1
    without one) and the ADD's other operand; its attributes keep both ops for their Params."""
    if not fusions:
        return graph
    by_index = {op.index: op for op in graph.ops}
    fused: dict[int, Op] = {}
    for f in fusions:
        conv, add = by_index[f.conv], by_index[f.add]
        other = add.inputs[1] if f.conv_first else add.inputs[0]
        bias = conv.inputs[2] if len(conv.inputs) > 2 else -1
        fused[f.add] = Op(
            f.add,
            CONV_ADD,
            [conv.inputs[0], conv.inputs[1], bias, other],
            list(add.outputs),
            {"conv": conv, "add": add, "conv_first": f.conv_first, "fused_ops": [f.conv, f.add]},
        )
    dropped = {f.conv for f in fusions}
    ops = [fused.get(op.index, op) for op in graph.ops if op.index not in dropped]
    return replace(graph, ops=ops)


def choose(
    graph: Graph,
    options: list[Fusion],
    fuse_all: Callable[[Graph, list[Fusion]], Graph],
    plan: Callable[[Graph], ArenaPlan],
) -> tuple[Graph, list[Fusion], ArenaPlan]:
    """The fusions among ``options`` that lower the arena: all made first (two blocks may
    share the peak), then each one undone when the arena and the peak do not grow without it
    (planned in the same order, the pair run where the fused op ran). ``fuse_all(graph,
    chosen)`` makes a list of them; ``plan`` (the order search) plans the graph as fused at the
    end. Returns the graph as fused, the fusions kept and its plan."""
    if not options:
        return graph, [], plan(graph)
    chosen = list(options)
    fused = fuse_all(graph, chosen)
    best = plan(fused)
    for f in options:
        fewer = [c for c in chosen if c != f]
        trial_graph = fuse_all(graph, fewer)
        order = [i for index in best.order for i in ((f.conv, index) if index == f.index else (index,))]
        trial = plan_arena(trial_graph, order=order)
        if (trial.arena_bytes, trial.peak_bytes) <= (best.arena_bytes, best.peak_bytes):
            chosen, fused, best = fewer, trial_graph, trial
    searched = plan(fused)
    if (searched.arena_bytes, searched.peak_bytes) <= (best.arena_bytes, best.peak_bytes):
        return fused, chosen, searched
    kept = drop_needless_modes(fused, best)
    kept.order_method = f"{searched.order_method}, then fusions undone in that order"
    kept.stored_peak_bytes, kept.stored_arena_bytes = searched.stored_peak_bytes, searched.stored_arena_bytes
    return fused, chosen, kept
