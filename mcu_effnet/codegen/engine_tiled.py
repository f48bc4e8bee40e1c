"""The engine's handler of a tiled segment (``mcu_effnet.graph.tiling``, op kind ``TILED``).

model.c loops over the bands with a table of the rows each tensor holds in each band; for each
op of the segment it calls the op's own kernel on a view (``ek_chunks.h``): a convolution's
band view (``<kernel>_band``: rows held in, rows of its output out, its padding shifted), an
element-wise op or ADD one row at a time with its parameters narrowed to one row. The layers
inside the segment write into band buffers in the op's scratch (``Segment.slots``); the last
one writes its rows straight into the segment's output, which exists whole."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from mcu_effnet.graph.ir import Op
from mcu_effnet.graph.planner import ARENA
from mcu_effnet.graph.tiling import CONV_KINDS, Segment
from mcu_effnet.ops.lookup import LOOKUP
from mcu_effnet.ops.registry import prepare


def handle(b: Any, op: Op) -> None:
    """``b``: the engine's ``_Builder``."""
    from mcu_effnet.codegen import engine  # the conv and element-wise handlers' helpers

    seg: Segment = op.attrs["segment"]
    g = b.graph
    scratch = b.plan.buffers[b.plan.scratch[op.index]].offset
    slots = seg.slots()
    position = {t: j for j, t in enumerate(seg.tensors)}

    def place(t: int) -> dict[str, Any]:
        if t in slots:
            return {"kind": ARENA, "offset": scratch + slots[t]}
        return b.ptr(t)

    def slot(t: int) -> int | None:  # the tensor's column in the row table; None: held whole
        return position[t] if t in slots else None

    steps = []
    for inner in op.attrs["ops"]:
        y = inner.outputs[0]
        out = {
            "output": place(y),
            "out_j": position[y],
            "out_whole": y not in slots,
            "out_rb": seg.row_bytes[position[y]],
        }
        if inner.kind in CONV_KINDS:
            kernel, params, _ = engine._conv_params(b, inner)
            x = inner.inputs[0]
            steps.append(
                {
                    "call": "band",
                    "kernel": f"{kernel}_band",
                    "params": params,
                    "input": place(x),
                    "in_j": slot(x),
                    "in_h": int(g.tensors[x].shape[1]),
                    **out,
                }
            )
            continue
        row = seg.row_bytes[position[y]]
        if inner.kind == "ADD":
            kernel = "ek_add"
            fields = dict(out_dims=[1, 1, 1, row], in1_strides=[0, 0, 0, 1], in2_strides=[0, 0, 0, 1])
            params = b.struct(inner, "ek_binary_params", {**fields, **asdict(prepare(g, inner))})
            data = inner.inputs[:2]
        elif inner.kind == LOOKUP:
            kernel = "ek_lookup"
            table = b.array(
                f"op{inner.index}_table", "int8_t", prepare(g, inner).table, "SiLU: output per input value"
            )
            params = b.struct(inner, "ek_lookup_params", dict(size=row, table=table))
            data = inner.inputs[:1]
        else:
            kernel, struct = engine.UNARY_KERNELS[inner.kind]
            params = b.struct(inner, struct, dict(size=row, **asdict(prepare(g, inner))))
            data = inner.inputs[:1]
        inputs = [{"place": place(t), "j": slot(t), "rb": seg.row_bytes[position[t]]} for t in data]
        steps.append({"call": "rows", "kernel": kernel, "params": params, "inputs": inputs, **out})
    rows = [[v for lo, hi in band for v in (lo, hi - lo)] for band in seg.bands]
    b.call(
        op,
        "",
        "",
        [seg.source],
        call="tiled",
        tiles=len(rows),
        columns=len(rows[0]),
        rows=rows,
        steps=steps,
        has_rows=any(s["call"] == "rows" for s in steps),
        inner_kinds=[inner.kind for inner in op.attrs["ops"]],
    )
