"""PyTorch-origin layouts for the native engine: TRANSPOSEs that cost nothing at run time.

A model exported from PyTorch keeps its NCHW habits at the edges: a TRANSPOSE (NCHW -> NHWC)
right after the input, and a TRANSPOSE back to NCHW before the RESHAPE that flattens the
features for the classifier. Both only reorder bytes the engine moves anyway:

- **input**: a TRANSPOSE that is the model input's only reader runs as the engine's copy of
  the caller's input into the arena (``model_invoke`` copies it in any case): the gather
  replaces the copy, the NCHW tensor never takes arena bytes. ``model_invoke`` still takes the
  model's declared (NCHW) input; ``model_input_buffer()`` is the transposed (NHWC) place, for a
  caller that writes the first op's layout itself;
- **classifier**: TRANSPOSE -> RESHAPE to one row -> FULLY_CONNECTED, each the only reader of
  the one before: the fully connected layer's weight columns are permuted at generation time so
  it reads the untransposed features, and the RESHAPE aliases them.

Any other TRANSPOSE stays and runs as the gather kernel. Only the engine sees the rewritten
graph (as with SiLU fusion): the simulator, TFLite Micro projects and the comparisons keep the
graph as loaded, and the engine's outputs are the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.common import elements
from mcu_effnet.ops.data_movement import GatherParams, prepare_transpose
from mcu_effnet.sim.kernels.data_movement import gather_indices


@dataclass(frozen=True)
class Absorbed:
    op: int  # the TRANSPOSE's index
    perm: tuple[int, ...]
    into: str  # "input" (the input copy) or "fully_connected"
    target: int = -1  # the FULLY_CONNECTED whose weights took the permutation

    def describe(self) -> str:
        perm = " ".join(map(str, self.perm))
        if self.into == "input":
            return f"op {self.op} TRANSPOSE (perm {perm}) absorbed into the input copy"
        return f"op {self.op} TRANSPOSE (perm {perm}) absorbed into op {self.target} FULLY_CONNECTED's weight order"

    def to_dict(self) -> dict[str, object]:
        return {
            "op": self.op,
            "perm": list(self.perm),
            "into": self.into,
            "target": self.target,
            "note": self.describe(),
        }


@dataclass
class Layout:
    graph: Graph  # the graph the engine runs (absorbed TRANSPOSEs gone)
    absorbed: list[Absorbed] = field(default_factory=list)
    input_gather: GatherParams | None = None  # the caller's input copied into the arena through it
    declared_input: int = -1  # the model's declared input tensor (when the input copy transposes)


def _readers(graph: Graph) -> dict[int, list[Op]]:
    readers: dict[int, list[Op]] = {}
    for op in graph.ops:
        for t in op.inputs:
            readers.setdefault(t, []).append(op)
    return readers


def _perm(graph: Graph, op: Op) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(graph.tensors[op.inputs[1]].data).reshape(-1))


def _input_transpose(graph: Graph, readers: dict[int, list[Op]]) -> Op | None:
    if len(graph.inputs) != 1:
        return None
    x = graph.inputs[0]
    ops = readers.get(x, [])
    if len(ops) != 1 or ops[0].kind != "TRANSPOSE" or ops[0].inputs[0] != x or x in graph.outputs:
        return None
    y = ops[0].outputs[0]
    same_bytes = graph.tensors[x].nbytes == graph.tensors[y].nbytes
    return ops[0] if same_bytes and y not in graph.outputs else None


def _classifier_transpose(graph: Graph, op: Op, readers: dict[int, list[Op]]) -> tuple[Op, Op] | None:
    """(RESHAPE, FULLY_CONNECTED) when ``op`` feeds one flattening RESHAPE feeding one FC."""
    outs = set(graph.outputs)
    t = op.outputs[0]
    reshapes = readers.get(t, [])
    if t in outs or len(reshapes) != 1 or reshapes[0].kind != "RESHAPE" or reshapes[0].inputs[0] != t:
        return None
    r = reshapes[0].outputs[0]
    fcs = readers.get(r, [])
    if r in outs or len(fcs) != 1 or fcs[0].kind != "FULLY_CONNECTED" or fcs[0].inputs[0] != r:
        return None
    fc = fcs[0]
    w = graph.tensors[fc.inputs[1]]
    depth = int(w.shape[-1])
    # one row: the permutation spans exactly the weights' columns; weights no other op reads
    if w.data is None or elements(graph.tensors[r].shape) != depth or len(readers[fc.inputs[1]]) != 1:
        return None
    return reshapes[0], fc


def absorb_transposes(graph: Graph) -> Layout:
    """The graph with its absorbable TRANSPOSEs folded away (a new Graph; ``graph`` is left as it
    is), what was absorbed, and the input copy's gather."""
    readers = _readers(graph)
    ops = {op.index: op for op in graph.ops}
    tensors = list(graph.tensors)
    absorbed: list[Absorbed] = []
    layout = Layout(graph)
    first = _input_transpose(graph, readers)
    if first is not None:
        layout.input_gather = prepare_transpose(graph, first)
        layout.declared_input = graph.inputs[0]
        absorbed.append(Absorbed(first.index, _perm(graph, first), "input"))
        del ops[first.index]
    for op in graph.ops:
        if op.kind != "TRANSPOSE" or op.index not in ops or op is first:
            continue
        found = _classifier_transpose(graph, op, readers)
        if found is None:
            continue
        reshape, fc = found
        w = tensors[fc.inputs[1]]
        order = gather_indices(prepare_transpose(graph, op))  # feature k of the FC is input element order[k]
        permuted = np.empty_like(w.data)
        permuted[:, order] = w.data.reshape(w.data.shape[0], -1)
        tensors[fc.inputs[1]] = replace(w, data=permuted.reshape(w.data.shape))
        ops[reshape.index] = replace(reshape, inputs=[op.inputs[0], *reshape.inputs[1:]])
        absorbed.append(Absorbed(op.index, _perm(graph, op), "fully_connected", fc.index))
        del ops[op.index]
    if not absorbed:
        return layout
    inputs = [first.outputs[0]] if first is not None else list(graph.inputs)
    layout.graph = replace(
        graph, tensors=tensors, ops=[ops[op.index] for op in graph.ops if op.index in ops], inputs=inputs
    )
    layout.absorbed = absorbed
    return layout
