"""The simulator's reference of tiled execution (``mcu_effnet.graph.tiling``): a segment run band
by band, each layer holding only its band's rows, as the engine runs it.

Each band computes every op of the segment on the rows the band needs, with the ops' own
kernels: convolutions on the rows held (``conv_rows``: the untiled kernel with its padding
shifted), element-wise ops and ADD on the rows themselves. The output must equal the untiled
run's bit for bit (``tests/test_tiling.py``)."""

from __future__ import annotations

import numpy as np

from mcu_effnet.graph.ir import Graph
from mcu_effnet.graph.tiling import CONV_KINDS, Segment
from mcu_effnet.sim.kernels import KERNELS
from mcu_effnet.sim.kernels.conv import conv_rows


def run_segment(graph: Graph, seg: Segment, source: np.ndarray) -> np.ndarray:
    """The segment's last output (N, H, W, C) from its source (N, H, W, C), band by band."""
    by_index = {op.index: op for op in graph.ops}
    out_t = graph.tensors[seg.output]
    out = np.zeros((source.shape[0], *out_t.shape[1:]), dtype=np.dtype(out_t.dtype))
    for band in seg.bands:
        held: dict[int, tuple[int, np.ndarray]] = {seg.source: (0, source)}  # tensor -> (first row, rows)
        for k, index in enumerate(seg.ops):
            op = by_index[index]
            lo, hi = band[k + 1]
            if op.kind in CONV_KINDS:
                base, values = held[op.inputs[0]]
                y = conv_rows(graph, op, values, base, lo, hi)
            else:  # rows map to rows: the op's own kernel on the band's rows of each operand
                args = [_rows(held, t, lo, hi) if t in held else graph.tensors[t].data for t in op.inputs]
                (y,) = KERNELS[op.kind](graph, op, args)
            held[op.outputs[0]] = (lo, y)
        lo, hi = band[-1]
        out[:, lo:hi] = held[seg.output][1]
    return out


def _rows(held: dict[int, tuple[int, np.ndarray]], t: int, lo: int, hi: int) -> np.ndarray:
    base, values = held[t]
    return values[:, lo - base : hi - base]
