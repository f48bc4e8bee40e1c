"""A 1x1 convolution feeding a depthwise convolution, run row by row (native engine).

An MBConv block widens its input with a 1x1 convolution and filters the wide map with a
depthwise convolution: TFLite Micro holds the block's input, the wide map and the depthwise's
output at once, and on the first stages of a model that is the memory peak. Fused, the engine
computes the wide map one row at a time into a buffer of the rows one depthwise output row
reads (its window's height), computes that output row, and slides the window: the wide map
never exists whole and no row is computed twice (``ek_expand_depthwise``, ``ek_chunks.h``).
The values are the same bytes: each row is the 1x1's own kernel on a view of the op, each
output row the depthwise's own kernel on a view of the rows held.

Candidates: a 1x1 stride-1 CONV_2D over one image whose output only a DEPTHWISE_CONV_2D reads
and is not a model output. The engine fuses them where that lowers the arena
(``fuse_add.choose``); only the engine sees the fused graph.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.graph.planner import CONV_DEPTHWISE, pointwise_conv


@dataclass(frozen=True)
class LineFusion:
    conv: int  # the 1x1 CONV_2D's index
    depthwise: int  # the DEPTHWISE_CONV_2D's index: the fused op takes it

    @property
    def index(self) -> int:
        return self.depthwise

    def to_dict(self) -> dict[str, object]:
        return {
            "op": self.depthwise,
            "replaces": [self.conv, self.depthwise],
            "kind": "CONV_2D 1x1 -> DEPTHWISE by rows",
        }


def candidates(graph: Graph) -> list[LineFusion]:
    readers: dict[int, list[Op]] = {}
    for op in graph.ops:
        for t in op.inputs:
            readers.setdefault(t, []).append(op)
    found = []
    for conv in graph.ops:
        if conv.kind != "CONV_2D" or not pointwise_conv(graph, conv):
            continue
        mid = conv.outputs[0]
        users = readers.get(mid, [])
        if len(users) != 1 or mid in graph.outputs:
            continue
        dw = users[0]
        if dw.kind == "DEPTHWISE_CONV_2D" and dw.inputs[0] == mid and len(dw.outputs) == 1:
            found.append(LineFusion(conv.index, dw.index))
    return found


def fuse(graph: Graph, fusions: list[LineFusion]) -> Graph:
    """``graph`` with each fusion's 1x1 and depthwise as one ``CONV_DEPTHWISE`` op at the
    depthwise's place (a new Graph sharing the tensors)."""
    if not fusions:
        return graph
    by_index = {op.index: op for op in graph.ops}
    fused: dict[int, Op] = {}
    for f in fusions:
        conv, dw = by_index[f.conv], by_index[f.depthwise]
        bias = conv.inputs[2] if len(conv.inputs) > 2 else -1
        dw_bias = dw.inputs[2] if len(dw.inputs) > 2 else -1
        fused[f.depthwise] = Op(
            f.depthwise,
            CONV_DEPTHWISE,
            [conv.inputs[0], conv.inputs[1], bias, dw.inputs[1], dw_bias],
            list(dw.outputs),
            {"conv": conv, "depthwise": dw, "fused_ops": [f.conv, f.depthwise]},
        )
    dropped = {f.conv for f in fusions}
    return replace(graph, ops=[fused.get(op.index, op) for op in graph.ops if op.index not in dropped])
