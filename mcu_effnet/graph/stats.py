"""Per-op and whole-graph figures: parameters, MACs, output shapes and activation bytes.

Parameters are the elements of an op's constant operands that are model weights (filters,
biases, constant operands of ADD / MUL / CONCATENATION); shape, axis and padding vectors do
not count. MACs are each op's own count (``mcu_effnet.ops``: one per weight use of CONV_2D,
DEPTHWISE_CONV_2D and FULLY_CONNECTED, one per output element of MUL; other ops count 0). An op's
working set is the bytes of its activation inputs and outputs, all live while it runs, plus any
scratch buffer it needs (``planner.SCRATCH_OPS``): the largest one is a lower bound of the SRAM
arena any planner can reach.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.graph.planner import SCRATCH_OPS
from mcu_effnet.ops.common import elements
from mcu_effnet.ops.registry import op_macs

# Inputs that hold weights (index positions) for ops whose other constant inputs are metadata.
_WEIGHT_INPUTS = {
    "CONV_2D": (1, 2),
    "DEPTHWISE_CONV_2D": (1, 2),
    "FULLY_CONNECTED": (1, 2),
    "MEAN": (),
    "SUM": (),
    "REDUCE_MAX": (),
    "TRANSPOSE_CONV": (1, 3),
    "PAD": (),
    "RESHAPE": (),
    # index vectors (axes, permutations, begin/end/strides, split sizes) are not parameters
    **dict.fromkeys(("EXPAND_DIMS", "TRANSPOSE", "SLICE", "STRIDED_SLICE", "SPLIT", "SPLIT_V"), ()),
}


@dataclass(frozen=True)
class LayerStats:
    index: int
    kind: str
    output_shape: tuple[int, ...]
    input_scale: float | None
    input_zero_point: int | None
    output_scale: float | None
    output_zero_point: int | None
    params: int
    param_bytes: int
    macs: int
    output_bytes: int
    working_bytes: int


@dataclass(frozen=True)
class GraphStats:
    layers: list[LayerStats]
    params: int
    param_bytes: int
    macs: int
    peak_working_bytes: int
    peak_working_op: int
    input_bytes: int
    output_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


def _weight_tensors(graph: Graph, op: Op) -> list[int]:
    positions = _WEIGHT_INPUTS.get(op.kind)
    indices = [i for k, i in enumerate(op.inputs) if positions is None or k in positions]
    return [i for i in indices if i >= 0 and graph.tensors[i].is_constant]


def _first_quant(graph: Graph, indices: list[int]) -> tuple[float | None, int | None]:
    for i in indices:
        t = graph.tensors[i]
        if i >= 0 and not t.is_constant and t.scale.size:
            return float(t.scale[0]), int(t.zero_point[0])
    return None, None


def layer_stats(graph: Graph, op: Op) -> LayerStats:
    weights = _weight_tensors(graph, op)
    activations_in = [i for i in op.inputs if i >= 0 and not graph.tensors[i].is_constant]
    out = graph.tensors[op.outputs[0]]
    in_scale, in_zp = _first_quant(graph, activations_in)
    out_scale, out_zp = _first_quant(graph, op.outputs)
    output_bytes = sum(graph.tensors[i].nbytes for i in op.outputs)
    return LayerStats(
        index=op.index,
        kind=op.kind,
        output_shape=tuple(out.shape),
        input_scale=in_scale,
        input_zero_point=in_zp,
        output_scale=out_scale,
        output_zero_point=out_zp,
        params=sum(elements(graph.tensors[i].shape) for i in weights),
        param_bytes=sum(graph.tensors[i].nbytes for i in weights),
        macs=op_macs(graph, op),
        output_bytes=output_bytes,
        working_bytes=output_bytes
        + sum(graph.tensors[i].nbytes for i in set(activations_in))
        + (SCRATCH_OPS[op.kind](graph, op) if op.kind in SCRATCH_OPS else 0),
    )


def graph_stats(graph: Graph) -> GraphStats:
    layers = [layer_stats(graph, op) for op in graph.ops]
    # A constant shared by several ops (rare) is counted once in the totals.
    weight_ids = {i for op in graph.ops for i in _weight_tensors(graph, op)}
    peak = max(layers, key=lambda s: s.working_bytes) if layers else None
    return GraphStats(
        layers=layers,
        params=sum(elements(graph.tensors[i].shape) for i in weight_ids),
        param_bytes=sum(graph.tensors[i].nbytes for i in weight_ids),
        macs=sum(s.macs for s in layers),
        peak_working_bytes=peak.working_bytes if peak else 0,
        peak_working_op=peak.index if peak else -1,
        input_bytes=sum(graph.tensors[i].nbytes for i in graph.inputs),
        output_bytes=sum(graph.tensors[i].nbytes for i in graph.outputs),
    )
