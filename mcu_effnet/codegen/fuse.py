"""Element-wise fusion for the native engine: SiLU (x · sigmoid(x)) as one 256-entry table.

It lives beside the engine, its only user, rather than in ``mcu_effnet.ops``: the table is the
simulator's output on all 256 input values (through its public ``run``), and ``ops`` sits
below the simulator, which evaluates its Params. The fused op's Params are ``ops.lookup``'s.

Our EfficientNets write SiLU as LOGISTIC(x) followed by MUL(x, LOGISTIC(x)) on the same shape.
Each output element depends on the input element at the same index alone, so the pair is one
int8 → int8 map: ``table[v + 128]`` is the pair's output for input value v. The table is
computed here by the host simulator (bit-exact with TFLite Micro) on all 256 values, so the
fused op gives the very same bytes, while the sigmoid tensor (as large as x) never exists:
the pair's peak of x plus sigmoid(x) becomes x alone, the lookup running in place over x when
x dies there. TFLite Micro keeps both tensors.

The fused op has kind ``LOOKUP_TABLE``, the MUL's index, input x and the MUL's output; its
attributes hold the table and the indices of the ops it replaces. Only the engine knows it:
the simulator, the TFLite Micro projects and report comparisons keep the graph as loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mcu_effnet.graph.ir import Graph, Op, Tensor
from mcu_effnet.ops.lookup import LOOKUP
from mcu_effnet.sim import run


@dataclass
class Fusion:
    index: int  # the fused op's index (the MUL's)
    replaced: list[int]  # the LOGISTIC and the MUL
    removed_tensor: int  # the sigmoid tensor, gone

    def to_dict(self) -> dict[str, object]:
        return {"op": self.index, "replaces": list(self.replaced), "kind": "SiLU (LOGISTIC, MUL)"}


def _table(graph: Graph, logistic: Op, mul: Op) -> np.ndarray:
    """The pair's output for every int8 input value, by the simulator."""
    x, s, y = (graph.tensors[t] for t in (logistic.inputs[0], logistic.outputs[0], mul.outputs[0]))
    tensors = [replace(t, index=i, shape=(1, 256), data=None) for i, t in enumerate((x, s, y))]
    local = {x.index: 0, s.index: 1}
    ops = [
        Op(0, "LOGISTIC", [0], [1], dict(logistic.attrs)),
        Op(1, "MUL", [local[t] for t in mul.inputs], [2], dict(mul.attrs)),
    ]
    sub = Graph(tensors=tensors, ops=ops, inputs=[0], outputs=[2], name="silu")
    values = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    return np.asarray(run(sub, values), dtype=np.int8).reshape(256)


def _int8(t: Tensor) -> bool:
    return t.dtype == "int8" and t.scale.size == 1 and not t.is_constant


def fuse_silu(graph: Graph) -> tuple[Graph, list[Fusion]]:
    """``graph`` with every LOGISTIC → MUL(x, sigmoid(x)) pair as one ``LOOKUP_TABLE`` op (a new
    Graph sharing the tensors; the input graph is left as it is), and the fusions made."""
    readers: dict[int, list[Op]] = {}
    for op in graph.ops:
        for t in op.inputs:
            readers.setdefault(t, []).append(op)
    producer = {t: op for op in graph.ops for t in op.outputs}
    fused: dict[int, Op] = {}  # MUL index -> its LOOKUP_TABLE
    dropped: set[int] = set()  # LOGISTIC indices
    fusions: list[Fusion] = []
    # The table depends on the three tensors' quantization alone: pairs that share it share it.
    tables: dict[tuple, np.ndarray] = {}
    for mul in graph.ops:
        if mul.kind != "MUL" or len(mul.inputs) != 2 or len(mul.outputs) != 1:
            continue
        for k in (0, 1):
            s, x = mul.inputs[k], mul.inputs[1 - k]
            logistic = producer.get(s)
            if (
                logistic is None
                or logistic.kind != "LOGISTIC"
                or logistic.inputs[:1] != [x]
                or len(logistic.outputs) != 1
                or [op.index for op in readers.get(s, [])] != [mul.index]
                or s in graph.outputs
            ):
                continue
            y = mul.outputs[0]
            tx, ts, ty = graph.tensors[x], graph.tensors[s], graph.tensors[y]
            if not (_int8(tx) and _int8(ts) and _int8(ty)) or not (tx.shape == ts.shape == ty.shape):
                continue
            if int(ts.zero_point[0]) != -128 or np.float32(ts.scale[0]) != np.float32(1 / 256):
                continue  # a LOGISTIC TFLite Micro refuses: left for the engine to refuse too
            key = tuple((float(t.scale[0]), int(t.zero_point[0])) for t in (tx, ts, ty))
            key += (
                repr(sorted(logistic.attrs.items())),
                repr(sorted(mul.attrs.items())),
                mul.inputs.index(s),
            )
            if key not in tables:
                tables[key] = _table(graph, logistic, mul)
            table = tables[key]
            fused[mul.index] = Op(
                mul.index, LOOKUP, [x], [y], {"table": table, "fused_ops": [logistic.index, mul.index]}
            )
            dropped.add(logistic.index)
            fusions.append(Fusion(mul.index, [logistic.index, mul.index], s))
            break
    if not fusions:
        return graph, []
    ops = [fused.get(op.index, op) for op in graph.ops if op.index not in dropped]
    return replace(graph, ops=ops), fusions
