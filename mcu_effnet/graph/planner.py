"""The static memory plan of the int8 engine: every activation tensor gets an arena offset.

Tensors are first gathered into *buffers* (one buffer = one block of bytes):

- a RESHAPE's output shares its input's buffer (no copy), unless that would make the
  model's input and output one buffer; so do SQUEEZE and EXPAND_DIMS (``ALIAS_OPS``);
- an element-wise op whose input dies there and has the output's size writes its output over
  that input (in-place execution: ``IN_PLACE_OPS``), and so does a stride-1 depthwise
  convolution, with a scratch buffer of a few output rows (``depthwise_in_place_rows``);
- a 1x1 stride-1 convolution with no more output than input channels writes its output over
  its dying input, a few pixels' inputs copied aside first (``pointwise_in_place_chunk``): the
  output is smaller, so its buffer shrinks there (a buffer's size is per tensor: ``segments``);
- the engine's convolution with its residual ADD fused (``CONV_ADD``, ``mcu_effnet.codegen.
  fuse_add``) writes the sum over the ADD's other operand, a few output pixels at a time
  through a scratch buffer, so the convolution's output never exists whole;
- the engine's 1x1 convolution feeding a depthwise one (``CONV_DEPTHWISE``, ``mcu_effnet.
  codegen.fuse_lines``) holds only the rows of the 1x1's output one depthwise window reads;
- the engine's tiled segment (``TILED``, ``mcu_effnet.graph.tiling``) runs the model's first
  layers band by band: only its last output exists whole, the layers inside hold the rows of one
  band in a scratch buffer;
- the model's input and output live in the arena too (``io_in_arena=True``, the default, as in
  TFLite Micro): the input's bytes are reused once it is dead, and the caller may write the
  input in place (``model_input_buffer()``). With ``io_in_arena=False`` the input is read where
  the caller keeps it and the output written straight to the caller's buffer instead.

Ops run in a given topological order (``plan_arena(order=...)``; by default as stored in the
.tflite; ``mcu_effnet.graph.op_order.plan_memory`` chooses an order that lowers the arena), and
in-place decisions follow it: an input dies at an op only if every other reader ran before.
A buffer is live from the step that writes it to the last step that reads it (both included).
Arena buffers are placed greedily, each at the lowest aligned offset that overlaps no buffer
live at the same time (first fit). Largest first is TFLite Micro's greedy planner's order; a
few other orders are tried as well and the smallest arena kept (``PLACEMENT_ORDERS``).

The 1x1 in-place mode costs a few instructions per chunk of pixels, so ``plan_memory`` keeps it
only at ops where dropping it would grow the arena (``plan_arena(plain=...)``).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.graph.tiling import TILED
from mcu_effnet.ops.common import elements, op_padding

ALIGNMENT = 4

# Ops whose kernels read each element before writing the element at the same index (the
# output may be the input buffer): element-wise maps, and ADD/MUL over the operand that has
# the output's shape. SOFTMAX reads a whole row before writing it. LOOKUP_TABLE is the engine's
# fused SiLU (``mcu_effnet.codegen.fuse``). DEPTHWISE_CONV_2D runs in
# place too when ``depthwise_in_place_rows`` allows it, with a few rows of scratch.
# Two-input element-wise ops: either operand shaped like the output may give it its bytes.
BINARY_IN_PLACE_OPS = frozenset({"ADD", "MUL", "SUB", "MAXIMUM", "MINIMUM", "PRELU"})
IN_PLACE_OPS = (
    frozenset({"RELU", "RELU6", "QUANTIZE", "LOGISTIC", "HARD_SWISH", "SOFTMAX", "LOOKUP_TABLE"})
    | BINARY_IN_PLACE_OPS
    | {"LEAKY_RELU", "TANH"}
)

# Ops that only change the shape: their output shares the input's bytes (no copy, no code).
ALIAS_OPS = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})

ARENA, INPUT, OUTPUT = "arena", "input", "output"

# The engine's CONV_2D with its residual ADD fused (inputs: the convolution's input, weights,
# bias or -1, the ADD's other operand; output: the ADD's), see mcu_effnet.codegen.fuse_add.
CONV_ADD = "CONV_2D_ADD"

# The engine's 1x1 CONV_2D feeding a DEPTHWISE_CONV_2D, run row by row so the 1x1's output
# (an MBConv's expanded map) never exists whole (inputs: the 1x1's input, its weights and bias,
# the depthwise's weights and bias; output: the depthwise's), see mcu_effnet.codegen.fuse_lines.
CONV_DEPTHWISE = "CONV_2D_DEPTHWISE"

# Scratch the chunked modes aim at: output pixels (fused ADD) or input pixels (1x1 in place)
# per kernel call (rounded to CHUNK_PIXEL_BLOCK pixels). Small, so it barely adds to the peak; large enough that the per-call cost
# stays far below the multiply-accumulates.
CHUNK_BYTES = 128

# Pixels per call are a multiple of this, and at least this many: the DSP 1x1 kernels block two
# (k x k kernel, widened weights) or four and three (int8-weight kernel: 6 = 3 + 3) pixels, and a pixel left over
# runs their one-pixel loop, up to 1.7x slower per MAC on deep rows; each call also pays its
# setup again (about 250 instructions a call on qemu-m4: VWW's 32 -> 32 and KWS's 64 -> 64 1x1 in place).
CHUNK_PIXEL_BLOCK = 6


def _chunk(pixels: int, pixel_bytes: int) -> int:
    n = CHUNK_BYTES // max(1, pixel_bytes)
    n = max(CHUNK_PIXEL_BLOCK, n - n % CHUNK_PIXEL_BLOCK)
    return max(1, min(pixels, n))


def pointwise_conv(graph: Graph, op) -> bool:
    """A 1x1 CONV_2D over one image with stride 1 (so no padding): pixel p's output reads pixel p alone."""
    if len(op.inputs) < 2 or len(op.outputs) != 1:
        return False
    x, w, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    a = op.attrs
    return (
        len(x.shape) == 4
        and len(y.shape) == 4
        and len(w.shape) == 4
        and x.shape[0] == 1
        and x.dtype == y.dtype == "int8"  # the chunked modes drive the int8 kernels
        and tuple(w.shape[1:3]) == (1, 1)
        and a.get("stride_h", 1) == 1
        and a.get("stride_w", 1) == 1
        and tuple(x.shape[1:3]) == tuple(y.shape[1:3])
    )


def pointwise_in_place_chunk(graph: Graph, op) -> int | None:
    """Pixels per step of a 1x1 CONV_2D run over its own input, else None.

    Legal for one image, stride 1 and out_c <= in_c: the outputs of pixels [q, q + n) land at
    bytes [q * out_c, (q + n) * out_c), below input pixel q + n, so once those n pixels' inputs
    are copied aside (scratch of n * in_c bytes) nothing still to be read is overwritten. Worth
    it only when the scratch is smaller than the output it saves.
    """
    if op.kind != "CONV_2D" or not pointwise_conv(graph, op):
        return None
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.is_constant or y.shape[3] > x.shape[3]:
        return None
    pixels = int(x.shape[1]) * int(x.shape[2])
    chunk = _chunk(pixels, int(x.shape[3]))
    return chunk if chunk * int(x.shape[3]) < y.nbytes else None


def conv_add_chunk(graph: Graph, op) -> int:
    """Output pixels per step of a fused CONV_ADD: along the flattened map for a pointwise
    convolution, else within one output row."""
    y = graph.tensors[op.outputs[0]]
    _, h, w, c = (int(d) for d in y.shape)
    return _chunk(h * w if pointwise_conv(graph, op.attrs["conv"]) else w, c)


def transpose_conv_scratch_bytes(graph: Graph, op: Op) -> int:
    """TRANSPOSE_CONV scatters into one int32 accumulator per output value (TFLite Micro's
    scratch); a 16x8 one into int64 accumulators, with 4 bytes to spare so that the kernel can
    start them on an 8-byte boundary (buffers are placed at multiples of ``ALIGNMENT``)."""
    values = elements(graph.tensors[op.outputs[0]].shape)
    if graph.tensors[op.outputs[0]].dtype == "int16":
        return 8 * values + 8 - ALIGNMENT
    return 4 * values


# Ops that need a scratch buffer of their own while they run, whatever the plan: bytes.
SCRATCH_OPS = {"TRANSPOSE_CONV": transpose_conv_scratch_bytes}


def depthwise_in_place_rows(graph: Graph, op) -> int | None:
    """Output rows a DEPTHWISE_CONV_2D must hold back to run over its own input, else None.

    Legal for stride 1, depth multiplier 1, one image, output shaped as the input: output row r
    reads input rows from r - pad_top on, so input row r - pad_top is free once row r is done
    and output row r - pad_top can go there. The kernel keeps pad_top + 1 output rows in a
    scratch buffer; worth it only when that is fewer rows than the map has.
    """
    if op.kind != "DEPTHWISE_CONV_2D" or len(op.inputs) < 2 or len(op.outputs) != 1:
        return None
    x, w, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    a = op.attrs
    if (
        len(x.shape) != 4
        or tuple(x.shape) != tuple(y.shape)
        or x.shape[0] != 1
        or len(w.shape) != 4
        or a.get("stride_h", 1) != 1
        or a.get("stride_w", 1) != 1
        or x.dtype != "int8"  # the in-place kernel is int8's; a 16x8 depthwise writes a new buffer
    ):
        return None
    rows = op_padding(graph, op)[0] + 1
    return rows if rows < int(x.shape[1]) else None


def depthwise_scratch_bytes(graph: Graph, op) -> int:
    rows = depthwise_in_place_rows(graph, op)
    y = graph.tensors[op.outputs[0]]
    return 0 if rows is None else rows * int(y.shape[2]) * int(y.shape[3])


def in_place_scratch_bytes(graph: Graph, op) -> int:
    """Scratch an op needs when it runs in place (in-place depthwise rows, 1x1 input pixels)."""
    if op.kind == "DEPTHWISE_CONV_2D":
        return depthwise_scratch_bytes(graph, op)
    chunk = pointwise_in_place_chunk(graph, op)
    return 0 if chunk is None else chunk * int(graph.tensors[op.inputs[0]].shape[3])


def line_rows(graph: Graph, op) -> int:
    """Rows of the 1x1's output a fused CONV_DEPTHWISE holds: one depthwise window's span."""
    dw = op.attrs["depthwise"]
    kh = int(graph.tensors[dw.inputs[1]].shape[1])
    return (kh - 1) * int(dw.attrs.get("dilation_h_factor", 1)) + 1


def fixed_scratch_bytes(graph: Graph, op) -> int:
    """Scratch an op needs in or out of place: a fused CONV_ADD's chunk of convolution output, a
    fused CONV_DEPTHWISE's rows of the 1x1's output, ``SCRATCH_OPS`` (TRANSPOSE_CONV's
    accumulators)."""
    if op.kind == TILED:
        return op.attrs["segment"].scratch_bytes
    if op.kind == CONV_DEPTHWISE:
        mid = graph.tensors[op.attrs["conv"].outputs[0]]
        return line_rows(graph, op) * int(mid.shape[2]) * int(mid.shape[3])
    if op.kind in SCRATCH_OPS:
        return SCRATCH_OPS[op.kind](graph, op)
    if op.kind != CONV_ADD:
        return 0
    return conv_add_chunk(graph, op) * int(graph.tensors[op.outputs[0]].shape[3])


@dataclass
class Buffer:
    """A block of bytes shared by one or more tensors (reshape aliases, in-place outputs)."""

    index: int
    tensors: list[int]
    size: int
    first: int  # the op that writes it first (-1: before the first op, the model's input)
    last: int  # the last op that reads it (len(ops): read after the last op, the model's output)
    location: str = ARENA  # ARENA, INPUT (the caller's input) or OUTPUT (the caller's output)
    offset: int = 0  # in the arena (0 elsewhere)
    # (first step, last step, bytes) of each tensor group sharing the buffer in turn, when they
    # differ in size (a 1x1 convolution in place shrinks it); None: ``size`` all along
    segments: list[tuple[int, int, int]] | None = None

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last

    def spans(self) -> list[tuple[int, int, int]]:
        return self.segments or [(self.first, self.last, self.size)]

    def size_at(self, step: int) -> int:
        return max((n for f, la, n in self.spans() if f <= step <= la), default=0)

    def size_max_with(self, other: Buffer) -> int:
        """The most bytes this buffer holds at a step ``other`` is live."""
        return max((n for f, la, n in self.spans() if f <= other.last and other.first <= la), default=0)

    def clashes(self, offset: int, other: Buffer, other_offset: int) -> bool:
        """Whether this buffer at ``offset`` and ``other`` at ``other_offset`` share a byte at a step."""
        for f1, l1, n1 in self.spans():
            for f2, l2, n2 in other.spans():
                if f1 <= l2 and f2 <= l1 and offset < other_offset + n2 and other_offset < offset + n1:
                    return True
        return False

    def to_dict(self, graph: Graph | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "buffer": self.index,
            "tensors": list(self.tensors),
            "location": self.location,
            "offset": self.offset,
            "size": self.size,
            "first_step": self.first,  # steps of the execution order (-1: before the first op)
            "last_step": self.last,
        }
        if self.segments:
            d["segments"] = [list(seg) for seg in self.segments]
        if graph is not None:
            d["tensor_names"] = [graph.tensors[t].name for t in self.tensors]
        return d


@dataclass
class ArenaPlan:
    buffers: list[Buffer]
    tensor_buffer: dict[int, int]  # tensor index -> buffer index
    arena_bytes: int
    peak_bytes: int  # the largest sum of arena bytes live at one op (<= arena_bytes)
    live_bytes: list[int]  # arena bytes live at each op
    aliased_ops: list[int] = field(default_factory=list)  # RESHAPEs that cost nothing
    in_place_ops: list[int] = field(default_factory=list)  # ops writing over their dying input
    alignment: int = ALIGNMENT
    io_in_arena: bool = True  # the model's input and output have arena offsets too
    scratch: dict[int, int] = field(
        default_factory=dict
    )  # op index -> scratch buffer (in-place depthwise, SCRATCH_OPS)
    order: list[int] = field(default_factory=list)  # op indices in execution order (steps 0, 1, ...)
    # The execution order's provenance (``mcu_effnet.graph.op_order.plan_memory`` fills these):
    # how it was chosen, and the stored order's peak and arena for comparison.
    order_method: str = "as stored"
    stored_peak_bytes: int | None = None
    stored_arena_bytes: int | None = None
    # op index -> how a chunked mode runs it (1x1 in place, convolution + ADD fused)
    modes: dict[int, str] = field(default_factory=dict)
    plain: set[int] = field(default_factory=set)  # ops kept off an optional in-place mode
    # the tiled segment and what it saves (the engine's choice, ``mcu_effnet.codegen.tile_plan``)
    tiling: dict[str, Any] = field(default_factory=dict)

    @property
    def reordered(self) -> bool:
        return self.order != sorted(self.order)

    def buffer_of(self, tensor: int) -> Buffer:
        return self.buffers[self.tensor_buffer[tensor]]

    def location(self, tensor: int) -> tuple[str, int]:
        """(ARENA, offset), (INPUT, 0) or (OUTPUT, 0) for an activation tensor."""
        b = self.buffer_of(tensor)
        return b.location, b.offset

    def to_dict(self, graph: Graph | None = None) -> dict[str, Any]:
        """The plan as JSON (report.json's ``memory_plan``); tensor names and op kinds with ``graph``."""
        kinds = {op.index: op.kind for op in graph.ops} if graph is not None else {}
        return {
            "arena_bytes": self.arena_bytes,
            "peak_bytes": self.peak_bytes,
            "alignment": self.alignment,
            "io_in_arena": self.io_in_arena,
            "live_bytes": list(self.live_bytes),
            "aliased_ops": list(self.aliased_ops),
            "in_place_ops": list(self.in_place_ops),
            "scratch": {str(k): v for k, v in self.scratch.items()},
            "order": list(self.order),
            "order_ops": [kinds[i] for i in self.order] if kinds else None,
            "reordered": self.reordered,
            "order_method": self.order_method,
            "stored_order_peak_bytes": self.stored_peak_bytes,
            "stored_order_arena_bytes": self.stored_arena_bytes,
            "in_place_op_kinds": [kinds[i] for i in self.in_place_ops] if kinds else None,
            "modes": {str(k): v for k, v in self.modes.items()},
            "tiling": dict(self.tiling) or None,
            "buffers": [b.to_dict(graph) for b in self.buffers],
        }

    def describe(self, graph: Graph | None = None) -> str:
        """The plan as text: totals, execution order, in-place ops and a table of the buffers
        (offset, size, lifetime in execution steps, tensors)."""
        lines = [
            f"arena {self.arena_bytes} bytes (peak of live tensors {self.peak_bytes}), "
            f"{len(self.aliased_ops)} reshape(s) aliased, {len(self.in_place_ops)} op(s) in place"
        ]
        lines += textwrap.wrap(
            f"execution order ({self.order_method}), op indices by step: {_ranges(self.order)}",
            width=96,
            subsequent_indent="  ",
            break_on_hyphens=False,
        )
        if self.stored_peak_bytes is not None and self.stored_arena_bytes is not None:
            lines.append(
                f"  in the stored order: peak {self.stored_peak_bytes}, arena {self.stored_arena_bytes} bytes"
            )
        if self.in_place_ops:
            kinds = {op.index: op.kind for op in graph.ops} if graph is not None else {}
            items = [f"op {i} {kinds.get(i, '')}".rstrip() for i in self.in_place_ops]
            lines += _wrap_items("in place:", items)
        for i, mode in self.modes.items():
            lines.append(f"  op {i}: {mode}")
        if self.tiling:
            t = self.tiling
            lines.append(
                f"  tiled: peak {t['peak_before']} -> {self.peak_bytes}, arena {t['arena_before']} -> "
                f"{self.arena_bytes} bytes, {t['recomputed_macs']} MACs recomputed "
                f"({t['recomputed_percent']:.1f} % of {t['model_macs']}, limit {t['max_recompute']:g} %)"
            )
        lines.append(f"{'buffer':>6} {'where':>6} {'offset':>8} {'size':>8} {'steps':>9}  tensors")
        for b in sorted(self.buffers, key=lambda b: (b.location != ARENA, b.offset, b.index)):
            names = [graph.tensors[t].name if graph is not None else str(t) for t in b.tensors]
            names += [f"scratch of op {op}" for op, index in self.scratch.items() if index == b.index]
            steps = f"{b.first}..{b.last}"
            lines.append(
                f"{b.index:>6} {b.location:>6} {b.offset:>8} {b.size:>8} {steps:>9}  {', '.join(names)}"
            )
        return "\n".join(lines)


def _wrap_items(head: str, items: list[str], width: int = 96) -> list[str]:
    """``head item, item, ...`` over lines of at most ``width`` characters, never inside an item."""
    lines, line = [], head
    for k, item in enumerate(items):
        text = item + ("," if k + 1 < len(items) else "")
        if len(line) + 1 + len(text) > width and line.strip():
            lines.append(line)
            line = " "
        line += " " + text
    return [*lines, line]


def _ranges(order: list[int]) -> str:
    """0 1 2 3 5 4 6 7 -> "0-3 5 4 6-7": runs in the stored order shortened (op indices ascend in
    the stored order, with gaps where ops were fused away: 0 1 3 4 -> "0-4")."""
    rank = {op: k for k, op in enumerate(sorted(order))}
    parts: list[str] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and rank[order[j + 1]] == rank[order[j]] + 1:
            j += 1
        parts.append(str(order[i]) if i == j else f"{order[i]}-{order[j]}")
        i = j + 1
    return " ".join(parts)


# Orders in which buffers are placed (each a sort key). Largest first is TFLite Micro's choice;
# the others win on some graphs (long-lived buffers first, or execution order).
PLACEMENT_ORDERS = (
    lambda b: (-b.size, b.first, b.index),
    lambda b: (-(b.last - b.first), -b.size, b.index),
    lambda b: (-b.size * (b.last - b.first + 1), b.index),
    lambda b: (b.first, -b.size, b.index),
)


def first_fit(ordered: list[Buffer], alignment: int) -> list[int]:
    """Places each buffer at the lowest aligned offset clear of the placed buffers live with it;
    returns the offsets in the buffers' original index order (ordered by ``Buffer.index``)."""
    placed: list[tuple[Buffer, int]] = []
    for b in ordered:
        if b.segments is None:
            busy = sorted((o, o + p.size_max_with(b)) for p, o in placed if p.overlaps_in_time(b))
            offset = 0
            for lo, hi in busy:
                if offset + b.size <= lo:
                    break
                offset = max(offset, _align(hi, alignment))
        else:  # its size changes over time: move past each clash until none is left
            others = [(p, o) for p, o in placed if p.overlaps_in_time(b)]
            offset = 0
            moved = True
            while moved:
                moved = False
                for p, o in others:
                    if b.clashes(offset, p, o):
                        offset = _align(o + p.size, alignment)
                        moved = True
        placed.append((b, offset))
    by_index = {b.index: o for b, o in placed}
    return [by_index[b.index] for b in sorted(ordered, key=lambda b: b.index)]


def _align(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def activation_tensors(graph: Graph) -> list[int]:
    """Non-constant tensors the ops read or write, and the model's inputs and outputs."""
    seen: list[int] = []
    for t in [*graph.inputs, *(i for op in graph.ops for i in (*op.inputs, *op.outputs)), *graph.outputs]:
        if t >= 0 and not graph.tensors[t].is_constant and t not in seen:
            seen.append(t)
    return seen


def ordered_ops(graph: Graph, order: list[int] | None) -> list[Op]:
    """``graph.ops`` in ``order`` (op indices; None: as stored), checked to be topological."""
    if order is None:
        return list(graph.ops)
    by_index = {op.index: op for op in graph.ops}
    if sorted(order) != sorted(by_index):
        raise ValueError(f"order {order} is not a permutation of the graph's ops")
    ops = [by_index[i] for i in order]
    producer = {t: op.index for op in graph.ops for t in op.outputs}
    done: set[int] = set()
    for op in ops:
        for t in op.inputs:
            if t in producer and producer[t] not in done:
                raise ValueError(f"order runs op {op.index} before op {producer[t]}, which writes its input")
        done.add(op.index)
    return ops


def alias_roots(graph: Graph, io_in_arena: bool = True) -> tuple[dict[int, int], list[int]]:
    """Reshape aliasing: activation tensor -> the root tensor whose bytes it shares, and the
    RESHAPE ops (indices) that cost nothing. The same for any execution order (the ops are
    visited as stored)."""
    tensors = activation_tensors(graph)
    parent = {t: t for t in tensors}

    def find(t: int) -> int:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    ins, outs = set(graph.inputs), set(graph.outputs)

    def has(root: int, which: set[int]) -> bool:
        return any(find(t) == root for t in which)

    aliased: list[int] = []
    for op in graph.ops:
        if op.kind not in ALIAS_OPS or not op.inputs or op.inputs[0] not in parent:
            continue
        a, b = find(op.inputs[0]), find(op.outputs[0])
        if not io_in_arena and ((has(a, ins) and has(b, outs)) or (has(a, outs) and has(b, ins))):
            continue  # the caller's input and output stay apart: this RESHAPE copies
        parent[b] = a
        aliased.append(op.index)
    return {t: find(t) for t in tensors}, aliased


def in_place_inputs(graph: Graph, op: Op) -> list[int]:
    """The inputs ``op`` may write its output over when they die there: of the same shape and
    bytes (element-wise ops, in-place depthwise, a fused CONV_ADD's other operand), or a 1x1
    convolution's larger input (``pointwise_in_place_chunk``)."""
    if len(op.outputs) != 1:
        return []
    y = graph.tensors[op.outputs[0]]
    if pointwise_in_place_chunk(graph, op) is not None:
        return [op.inputs[0]]
    if op.kind == TILED:  # band by band over its source (Segment.overwrites_source)
        return [op.inputs[0]] if op.attrs["segment"].overwrites_source else []
    if op.kind == CONV_ADD:
        candidates = op.inputs[3:4]
    elif op.kind in IN_PLACE_OPS or depthwise_in_place_rows(graph, op) is not None:
        candidates = op.inputs[:2] if op.kind in BINARY_IN_PLACE_OPS else op.inputs[:1]
    else:
        return []
    return [
        t
        for t in candidates
        if t >= 0
        and not graph.tensors[t].is_constant
        and graph.tensors[t].nbytes == y.nbytes
        and tuple(graph.tensors[t].shape) == tuple(y.shape)
    ]


def optional_in_place(graph: Graph, op: Op) -> bool:
    """In-place modes that cost instructions, used only where they lower the arena (1x1)."""
    return pointwise_in_place_chunk(graph, op) is not None


def describe_mode(graph: Graph, op: Op, in_place: bool) -> str | None:
    """How the plan runs ``op`` when it is one of the chunked modes (for the printed plan)."""
    if op.kind == TILED:
        return op.attrs["description"]
    if op.kind == CONV_DEPTHWISE:
        conv, dw = op.attrs["fused_ops"]
        return f"conv {conv} -> depthwise {dw} by rows, {line_rows(graph, op)} rows held, 0 MACs recomputed"
    if op.kind == CONV_ADD:
        where = "over its other operand" if in_place else "into its own buffer"
        conv, add = op.attrs["fused_ops"]
        return f"conv {conv} + ADD {add} fused, {conv_add_chunk(graph, op)} px per step, {where}"
    chunk = pointwise_in_place_chunk(graph, op)
    if in_place and chunk is not None:
        return f"1x1 in place, {chunk} px per step"
    return None


def plan_arena(
    graph: Graph,
    alignment: int = ALIGNMENT,
    in_place: bool = True,
    io_in_arena: bool = True,
    order: list[int] | None = None,
    plain: frozenset[int] = frozenset(),
) -> ArenaPlan:
    """Arena offsets for every activation tensor of ``graph``, its ops run in ``order`` (op
    indices, a topological order; None: as stored). Lifetimes count ops by execution step.
    ``plain``: ops that keep their ordinary kernel though an optional in-place mode applies."""
    tensors = activation_tensors(graph)
    ops = ordered_ops(graph, order)
    n_ops = len(ops)
    roots, aliased = alias_roots(graph, io_in_arena)
    parent = dict(roots)

    def find(t: int) -> int:
        return parent[t]

    ins, outs = set(graph.inputs), set(graph.outputs)

    def has(root: int, which: set[int]) -> bool:
        return any(find(t) == root for t in which)

    # Lifetimes per group of aliased tensors.
    groups: dict[int, list[int]] = {}
    for t in tensors:
        groups.setdefault(find(t), []).append(t)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for root in groups:
        first[root] = n_ops
        last[root] = -1
    for t in graph.inputs:
        first[find(t)] = -1
    for pos, op in enumerate(ops):
        for t in op.outputs:
            if t in parent:
                r = find(t)
                first[r] = min(first[r], pos)
                last[r] = max(last[r], pos)
        for t in op.inputs:
            if t in parent:
                r = find(t)
                last[r] = max(last[r], pos)
    for t in graph.outputs:
        last[find(t)] = n_ops
    for root in groups:
        first[root] = min(first[root], last[root]) if last[root] >= 0 else first[root]
        last[root] = max(last[root], first[root])

    def location(root: int) -> str:
        if io_in_arena:
            return ARENA
        if has(root, outs):
            return OUTPUT
        if has(root, ins):
            return INPUT
        return ARENA

    def size(root: int) -> int:
        return max(graph.tensors[t].nbytes for t in groups[root])

    # each group's own lifetime and size, before in-place merging joins groups into one buffer
    spans = {root: [(first[root], last[root], size(root))] for root in groups}

    # In-place execution: merge the output's group into a dying input's group.
    in_place_ops: list[int] = []
    merged: dict[int, int] = {}  # output root -> input root it now lives in

    def home(root: int) -> int:
        while root in merged:
            root = merged[root]
        return root

    scratch_ops: list[tuple[int, int]] = []  # (op position, scratch bytes)
    modes: dict[int, str] = {}
    for pos, op in enumerate(ops):
        chosen = False
        candidates = in_place_inputs(graph, op) if in_place else []
        if op.index in plain and optional_in_place(graph, op):
            candidates = []
        if candidates and op.outputs[0] in parent:
            out_root = find(op.outputs[0])
            own_input = home(find(op.inputs[0])) if op.inputs and op.inputs[0] in parent else None
            if location(out_root) == ARENA and first[out_root] == pos:
                for t in candidates:
                    in_root = home(find(t))
                    if op.kind == CONV_ADD and in_root == own_input:
                        continue  # the convolution still reads it
                    if location(in_root) == ARENA and last[in_root] == pos and in_root != out_root:
                        merged[out_root] = in_root
                        groups[in_root] = groups[in_root] + groups[out_root]
                        spans[in_root] = spans[in_root] + spans[out_root]
                        last[in_root] = last[out_root]
                        in_place_ops.append(op.index)
                        scratch = in_place_scratch_bytes(graph, op)
                        if scratch:
                            scratch_ops.append((pos, scratch))
                        chosen = True
                        break
        scratch = fixed_scratch_bytes(graph, op)
        if scratch:
            scratch_ops.append((pos, scratch))
        mode = describe_mode(graph, op, chosen)
        if mode is not None:
            modes[op.index] = mode

    buffers: list[Buffer] = []
    tensor_buffer: dict[int, int] = {}
    for root in groups:
        if root in merged:
            continue
        b = Buffer(len(buffers), sorted(groups[root]), size(root), first[root], last[root], location(root))
        if len({n for _, _, n in spans[root]}) > 1:
            b.segments = sorted(spans[root])
            b.size = max(n for _, _, n in b.segments)
        buffers.append(b)
        for t in b.tensors:
            tensor_buffer[t] = b.index
    scratch: dict[int, int] = {}  # op index -> its scratch buffer
    for pos, nbytes in scratch_ops:
        b = Buffer(len(buffers), [], nbytes, pos, pos, ARENA)
        buffers.append(b)
        scratch[ops[pos].index] = b.index

    # Greedy first fit, largest first; a few other orders are tried too and the smallest arena kept.
    arena_buffers = [b for b in buffers if b.location == ARENA]
    best: tuple[int, list[int]] | None = None
    for key in PLACEMENT_ORDERS:
        offsets = first_fit(sorted(arena_buffers, key=key), alignment)
        size_ = _align(
            max((o + b.size for b, o in zip(arena_buffers, offsets, strict=True)), default=0), alignment
        )
        if best is None or size_ < best[0]:
            best = (size_, offsets)
    arena, offsets = best if best is not None else (0, [])
    for b, offset in zip(arena_buffers, offsets, strict=True):
        b.offset = offset
    placed = arena_buffers
    live = _live_bytes(placed, n_ops)
    return ArenaPlan(
        buffers=buffers,
        tensor_buffer=tensor_buffer,
        arena_bytes=arena,
        peak_bytes=max(live, default=0),
        live_bytes=live,
        aliased_ops=aliased,
        in_place_ops=in_place_ops,
        alignment=alignment,
        io_in_arena=io_in_arena,
        scratch=scratch,
        order=[op.index for op in ops],
        modes=modes,
        plain=set(plain),
    )


def _live_bytes(buffers: list[Buffer], n_ops: int) -> list[int]:
    """Bytes of ``buffers`` live at each step (a buffer's size at that step)."""
    delta = [0] * (n_ops + 1)
    live = [0] * n_ops
    for b in buffers:
        lo, hi = max(b.first, 0), min(b.last, n_ops - 1)
        if b.segments is None:
            if lo <= hi:
                delta[lo] += b.size
                delta[hi + 1] -= b.size
            continue
        for pos in range(lo, hi + 1):  # segments meet at a step: the larger counts there
            live[pos] += b.size_at(pos)
    running = 0
    for pos in range(n_ops):
        running += delta[pos]
        live[pos] += running
    return live


def check_plan(plan: ArenaPlan) -> None:
    """Raises AssertionError if two arena buffers live at the same time share a byte."""
    arena = [b for b in plan.buffers if b.location == ARENA]
    for i, a in enumerate(arena):
        assert a.offset % plan.alignment == 0 and a.offset + a.size <= plan.arena_bytes, a
        for b in arena[i + 1 :]:
            if a.overlaps_in_time(b):
                assert not a.clashes(a.offset, b, b.offset), (a, b)
