"""Patch-based execution of a model's first layers (MCUNetV2): the geometry and its cost.

The first layers of a CNN hold its largest activations. Run tile by tile, they never exist
whole: the segment's last output is cut into horizontal bands of rows (full width), and each
band is computed through every layer of the segment from the segment's input, each layer
holding only the rows that band needs (its receptive field, halo rows included, clipped at the
map's borders). Halo rows shared by neighbouring bands are computed twice: that is the
recomputation, counted here in multiply-accumulates and bounded by the caller.

A kernel computes an output row from the rows its window covers and treats rows outside the
input as padding. A band's layer holds rows ``lo .. hi - 1`` of its input where ``lo`` is the
first row any of its windows reads (clipped at 0) and ``hi`` one past the last (clipped at the
map's height); the kernel run on those rows with its padding shifted by ``lo`` therefore sees
padding exactly where the whole map has it and the map's own rows everywhere else: every value
is the untiled kernel's, bit for bit (``mcu_effnet.sim.tiled`` checks it in numpy).

A segment is a chain of ops from one 4-D int8 activation (``Segment.source``): CONV_2D,
DEPTHWISE_CONV_2D, same-shape ADD and element-wise ops (``TILE_KINDS``), each reading the
source or earlier ops of the segment, whose intermediate outputs nothing outside reads. Only
the segment's last output is written whole. ``TILED`` is the op standing for a segment in the
engine's graph (``fuse``): the planner gives it one scratch buffer holding every layer's band
rows (``Segment.scratch_bytes``), packed by their lifetimes within a band: a layer's rows share
bytes with those of layers run before its input was made (``Segment.slots``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.common import op_padding
from mcu_effnet.ops.lookup import LOOKUP
from mcu_effnet.ops.registry import op_macs

TILED = "TILED_SEGMENT"

CONV_KINDS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D"})
# Ops mapping each element to one element: a band of rows in, the same rows out.
ROW_KINDS = frozenset({"RELU", "RELU6", "QUANTIZE", "LOGISTIC", "HARD_SWISH", LOOKUP})
TILE_KINDS = CONV_KINDS | ROW_KINDS | {"ADD"}

DEFAULT_MAX_RECOMPUTE = 10.0  # per cent of the model's MACs


@dataclass(frozen=True)
class Segment:
    """A chain of ops run band by band. ``bands[b][t]``: rows (lo, hi) of tensor ``tensors[t]``
    band ``b`` computes (for the source: the rows it reads)."""

    ops: tuple[int, ...]  # op indices in execution order
    source: int  # the activation the first op reads, held whole
    tensors: tuple[int, ...]  # the source, then each op's output
    bands: tuple[tuple[tuple[int, int], ...], ...]
    row_bytes: tuple[int, ...]  # bytes per row of each tensor
    macs: int  # the segment's MACs computed once
    recomputed_macs: int  # MACs computed again over all bands (halo rows)
    # the output may be written over the source: no band writes output bytes over source rows a
    # later band still reads (the output is usually smaller, its rows fewer: stride 2 and more)
    overwrites_source: bool = False
    # per tensor, the position in ``ops`` of the last op of the segment reading it (-1: none)
    last_reader: tuple[int, ...] = ()

    @property
    def output(self) -> int:
        return self.tensors[-1]

    @property
    def intermediate(self) -> tuple[int, ...]:
        """Tensors that live in band buffers (neither the source nor the output)."""
        return self.tensors[1:-1]

    def slot_bytes(self, tensor: int) -> int:
        """The band buffer of an intermediate tensor: its most rows in any band."""
        t = self.tensors.index(tensor)
        return max(hi - lo for band in self.bands for lo, hi in (band[t],)) * self.row_bytes[t]

    def lifetime(self, tensor: int) -> tuple[int, int]:
        """(first, last) step of the segment's ops (positions in ``ops``) during which the
        tensor's band rows are live: from the op writing them to the last op reading them."""
        t = self.tensors.index(tensor)
        return t - 1, max(t - 1, self.last_reader[t])

    @cached_property
    def _packed(self) -> tuple[dict[int, int], int]:
        """Band buffers packed by lifetime within a band: two tensors live at the same step never
        share bytes (so no op writes over an input it still reads), the rest may. Largest first,
        each at the lowest offset clear of the ones already placed that it meets: the arena
        planner's ``first_fit``."""
        from mcu_effnet.graph.planner import Buffer, first_fit  # the planner imports this module

        buffers = [
            Buffer(index=i, tensors=[t], size=_align(self.slot_bytes(t)), first=first, last=last)
            for i, t in enumerate(self.intermediate)
            for first, last in (self.lifetime(t),)
        ]
        ordered = sorted(
            buffers, key=lambda b: (-self.slot_bytes(b.tensors[0]), self.tensors.index(b.tensors[0]))
        )
        offsets = first_fit(ordered, alignment=4)
        slots = {b.tensors[0]: offsets[b.index] for b in buffers}
        return slots, max((offsets[b.index] + b.size for b in buffers), default=0)

    def slots(self) -> dict[int, int]:
        """Intermediate tensor -> offset of its band buffer in the scratch."""
        return dict(self._packed[0])

    @property
    def scratch_bytes(self) -> int:
        return self._packed[1]

    def to_dict(self) -> dict[str, object]:
        return {
            "ops": list(self.ops),
            "tiles": len(self.bands),
            "scratch_bytes": self.scratch_bytes,
            "macs": self.macs,
            "recomputed_macs": self.recomputed_macs,
        }


def _align(n: int, alignment: int = 4) -> int:
    return (n + alignment - 1) // alignment * alignment


def _shape(graph: Graph, t: int) -> tuple[int, ...]:
    return tuple(int(d) for d in graph.tensors[t].shape)


def _supported(graph: Graph, op: Op) -> bool:
    if op.kind not in TILE_KINDS or len(op.outputs) != 1:
        return False
    y = graph.tensors[op.outputs[0]]
    if len(y.shape) != 4 or y.shape[0] != 1 or y.dtype != "int8":
        return False
    data = [t for t in op.inputs[: 2 if op.kind == "ADD" else 1]]
    if any(t < 0 or graph.tensors[t].is_constant for t in data):
        return False
    if any(_shape(graph, t)[0] != 1 or graph.tensors[t].dtype != "int8" for t in data):
        return False
    if op.kind in CONV_KINDS:
        return True
    return all(_shape(graph, t) == _shape(graph, op.outputs[0]) for t in data)  # rows map to rows


def _input_rows(graph: Graph, op: Op, lo: int, hi: int) -> tuple[int, int]:
    """Rows of ``op``'s first input that its output rows ``lo .. hi - 1`` read (clipped)."""
    if op.kind not in CONV_KINDS:
        return lo, hi
    h, kh, stride, dil, top = _window(graph, op)
    first = lo * stride - top
    last = (hi - 1) * stride - top + (kh - 1) * dil
    return max(0, first), min(h, last + 1)


def _window(graph: Graph, op: Op) -> tuple[int, int, int, int, int]:
    """(input height, kernel height, stride, dilation, top padding) of a convolution, kept on the
    graph (the planner asks for many segments of one graph, which is immutable once loaded)."""
    windows = graph.__dict__.setdefault("_tiling_windows", {})
    cached = windows.get(op.index)
    if cached is None:
        cached = (
            _shape(graph, op.inputs[0])[1],
            _shape(graph, op.inputs[1])[1],
            int(op.attrs.get("stride_h", 1)),
            int(op.attrs.get("dilation_h_factor", 1)),
            op_padding(graph, op)[0],
        )
        windows[op.index] = cached
    return cached


def chains(graph: Graph, order: list[int] | None = None) -> list[list[Op]]:
    """The longest segment starting at each op that reads a model input, as ops (its prefixes
    are the candidates): ops taken in execution order while each one's activations come from
    the segment and nothing outside reads the segment's intermediate outputs."""
    by_index = {op.index: op for op in graph.ops}
    ops = [by_index[i] for i in order] if order else list(graph.ops)
    found = []
    for start, first in enumerate(ops):
        if not _supported(graph, first) or first.inputs[0] not in graph.inputs:
            continue
        if len(_shape(graph, first.inputs[0])) != 4:
            continue
        chain = [first]
        made = {first.inputs[0], first.outputs[0]}
        for op in ops[start + 1 :]:
            data = op.inputs[: 2 if op.kind == "ADD" else 1]
            if not _supported(graph, op) or not all(t in made for t in data):
                break
            chain.append(op)
            made.add(op.outputs[0])
        while chain and not closed(graph, chain):  # cut where an intermediate output is read outside
            chain.pop()
        if len(chain) >= 2:
            found.append(chain)
    return found


def closed(graph: Graph, chain: list[Op]) -> bool:
    """Whether nothing outside ``chain`` reads its intermediate outputs (a segment's condition:
    they never exist whole). Not every prefix of a chain is closed (a residual's shortcut)."""
    inside = {op.index for op in chain}
    mids = {op.outputs[0] for op in chain[:-1]}
    return not mids & set(graph.outputs) and all(
        op.index in inside for op in graph.ops if mids & set(op.inputs)
    )


def bands(height: int, tiles: int) -> list[tuple[int, int]]:
    """``tiles`` bands of (nearly) equal rows covering ``height`` rows, top first."""
    edges = [height * k // tiles for k in range(tiles + 1)]
    return [(edges[k], edges[k + 1]) for k in range(tiles) if edges[k + 1] > edges[k]]


def segment(graph: Graph, chain: list[Op], tiles: int) -> Segment:
    """The geometry of running ``chain`` in ``tiles`` bands of its last output's rows."""
    tensors = [chain[0].inputs[0], *(op.outputs[0] for op in chain)]
    position = {t: k for k, t in enumerate(tensors)}
    out_h = _shape(graph, tensors[-1])[1]
    all_bands = []
    for lo, hi in bands(out_h, tiles):
        need: list[tuple[int, int] | None] = [None] * len(tensors)
        need[-1] = (lo, hi)
        for k in range(len(chain) - 1, -1, -1):  # from the output back to the source
            op = chain[k]
            rows = need[k + 1]
            assert rows is not None, "every op of a chain feeds its last output"
            for t in op.inputs[: 2 if op.kind == "ADD" else 1]:
                a, b = _input_rows(graph, op, *rows)
                j = position[t]
                need[j] = (a, b) if need[j] is None else (min(need[j][0], a), max(need[j][1], b))
        all_bands.append(tuple(r if r is not None else (0, 0) for r in need))
    op_mac = [int(op_macs(graph, op)) for op in chain]
    macs = sum(op_mac)
    computed = 0
    for band in all_bands:
        for k, op in enumerate(chain):
            lo, hi = band[k + 1]
            computed += op_mac[k] * (hi - lo) // _shape(graph, op.outputs[0])[1]
    row_bytes = tuple(_shape(graph, t)[2] * _shape(graph, t)[3] for t in tensors)
    return Segment(
        overwrites_source=_may_overwrite(graph, chain, all_bands, row_bytes),
        ops=tuple(op.index for op in chain),
        source=tensors[0],
        tensors=tuple(tensors),
        bands=tuple(all_bands),
        row_bytes=row_bytes,
        macs=macs,
        recomputed_macs=computed - macs,
        last_reader=tuple(
            max(
                (k for k, op in enumerate(chain) if t in op.inputs[: 2 if op.kind == "ADD" else 1]),
                default=-1,
            )
            for t in tensors
        ),
    )


def _may_overwrite(
    graph: Graph, chain: list[Op], all_bands: list[tuple[tuple[int, int], ...]], row_bytes: tuple[int, ...]
) -> bool:
    """Whether band b's output rows, written after every read of the source in band b (only the
    first op reads it), end at or before the first source byte any later band reads."""
    source = chain[0].inputs[0]
    if any(source in op.inputs for op in chain[1:]) or source in graph.outputs:
        return False
    if graph.tensors[source].dtype != graph.tensors[chain[-1].outputs[0]].dtype:
        return False
    for b, band in enumerate(all_bands[:-1]):
        written = band[-1][1] * row_bytes[-1]
        still_read = min(later[0][0] for later in all_bands[b + 1 :]) * row_bytes[0]
        if written > still_read:
            return False
    return True


def model_macs(graph: Graph) -> int:
    return sum(int(op_macs(graph, op)) for op in graph.ops)


def fuse(graph: Graph, seg: Segment) -> Graph:
    """``graph`` with the segment's ops as one ``TILED`` op at its last op's place (a new Graph
    sharing the tensors). Its inputs: the source; its output: the segment's last output."""
    by_index = {op.index: op for op in graph.ops}
    last = seg.ops[-1]
    attrs = {
        "segment": seg,
        "ops": [by_index[i] for i in seg.ops],
        "fused_ops": list(seg.ops),
        "description": describe(seg, model_macs(graph)),
    }
    tiled = Op(last, TILED, [seg.source], [seg.output], attrs)
    drop = set(seg.ops[:-1])
    return replace(graph, ops=[tiled if op.index == last else op for op in graph.ops if op.index not in drop])


def describe(seg: Segment, total_macs: int) -> str:
    share = 100.0 * seg.recomputed_macs / max(total_macs, 1)
    return (
        f"ops {seg.ops[0]}-{seg.ops[-1]} tiled in {len(seg.bands)} bands of rows, "
        f"{seg.scratch_bytes} bytes of band buffers, {seg.recomputed_macs} MACs recomputed ({share:.1f} %)"
    )
