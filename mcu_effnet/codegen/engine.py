"""The native int8 engine: C sources for one graph (see docs/ARCHITECTURE.md).

``generate_engine(graph)`` returns ``EngineSources``: ``model.h`` / ``model.c`` (straight-line
kernel calls over a static arena), ``model_data.h`` / ``model_data.c`` (const weights, int32
biases, per-channel multipliers and shifts computed here once, as TFLite Micro's Prepare would)
and the runtime kernels (``firmware_templates/runtime``, copied as they are), all flat in one
folder. The execution order and the arena layout come from
``mcu_effnet.graph.op_order.plan_memory``: model.c calls the kernels in the plan's order.
SiLU pairs (LOGISTIC -> MUL(x, sigmoid x)) run as one table lookup (``mcu_effnet.codegen.fuse``).

Each op's parameters come from its Prepare in ``mcu_effnet.ops`` (the Params the simulator
evaluates too); a handler here writes one Params into one C struct, laying out weights for
the DSP kernels where they apply. The C kernels themselves are independent and are tested
against the TFLite Micro interpreter directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

import jinja2
import numpy as np

from mcu_effnet.codegen import (
    data_movement,
    dsp_depthwise_paths,
    dsp_layout,
    dsp_pointwise,
    engine_int16,
    engine_math,
    engine_tiled,
    fuse_add,
    fuse_lines,
    io_ports,
    tile_plan,
)
from mcu_effnet.codegen.c_literals import (
    c_array_body,
    c_comment,
    c_comment_lines,
    c_identifier,
    c_int,
    c_int64_array_body,
    c_int_list,
)
from mcu_effnet.codegen.fuse import Fusion, fuse_silu
from mcu_effnet.codegen.fuse_add import AddFusion
from mcu_effnet.codegen.fuse_lines import LineFusion
from mcu_effnet.codegen.layout import Absorbed, Layout, absorb_transposes
from mcu_effnet.codegen.templates import environment
from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph, Op, Tensor
from mcu_effnet.graph.op_order import plan_memory
from mcu_effnet.graph.ops import SUPPORTED_OPS
from mcu_effnet.graph.planner import (
    ARENA,
    CONV_ADD,
    CONV_DEPTHWISE,
    ArenaPlan,
    conv_add_chunk,
    line_rows,
    ordered_ops,
    pointwise_in_place_chunk,
)
from mcu_effnet.graph.tiling import DEFAULT_MAX_RECOMPUTE, TILED
from mcu_effnet.ops import quantize_float
from mcu_effnet.ops.common import elements, optional_input, qparams
from mcu_effnet.ops.fully_connected import FullyConnectedParams
from mcu_effnet.ops.lookup import LOOKUP
from mcu_effnet.ops.registry import op_macs, prepare

RUNTIME_FILES: tuple[str, ...] = (
    "ek_kernels.h",
    "ek_fixedpoint.h",
    "ek_fixedpoint.c",
    "ek_binary_ops.h",
    "ek_conv.c",
    "ek_fully_connected.c",
    "ek_elementwise.c",
    "ek_pool.c",
    "ek_activation.c",
    "ek_unary_table.h",
    "ek_shape.c",
    *engine_math.RUNTIME_FILES,
    "ek_data_movement.c",
    "ek_resize.c",
    "ek_dequantize.c",
    "ek_int16.h",
    "ek_int16.c",
    "ek_chunks.h",
    "ek_conv_view.h",
    "ek_chunks.c",
)

# Kernels for cores with the DSP extension (Cortex-M4, M7, M33: SMLAD and friends through
# arm_acle.h), added to an engine only when it is generated with dsp=True, which the board's
# core decides (``Board.has_dsp``). Host, Cortex-M0+ and M3 builds keep the plain C99 kernels
# above, unchanged. Their headers are included by model.c only in DSP engines.
DSP_RUNTIME_FILES: tuple[str, ...] = (
    "ek_dsp.h",
    "ek_pointwise_dsp.h",
    "ek_pointwise_dsp.c",
    "ek_conv_dsp.h",
    "ek_requant_dsp.h",
    "ek_depthwise_dsp.c",
    "ek_depthwise_rows_dsp.c",
    "ek_depthwise_plane_dsp.c",
    "ek_conv_dsp.c",
    "ek_conv_narrow_dsp.c",
    "ek_chunks_dsp.h",
    "ek_chunks_dsp.c",
    "ek_conv_first_dsp.h",
    "ek_conv_first_dsp.c",
    "ek_transpose_conv_dsp.h",
    "ek_transpose_conv_dsp.c",
)
DSP_PARAM_HEADERS = ("ek_conv_dsp.h", "ek_pointwise_dsp.h")  # their kernels' parameter structs
_CTYPE_BYTES = {"int8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "int64_t": 8}


@dataclass
class EngineSources:
    files: dict[str, str]  # relative path -> content, all in one folder
    plan: ArenaPlan
    arena_bytes: int
    weights_bytes: int  # const arrays (weights, biases, multipliers, shifts, constant operands)
    layers: list[dict[str, Any]]  # per op in execution order: step, index, op, output_shape, macs, live_bytes
    input_bytes: int = 0
    output_bytes: int = 0
    # RAM the model needs: the arena (with the input and output in it, the default plan), else
    # the arena plus the caller's input and output buffers
    model_ram_bytes: int = 0
    graph: Graph | None = None  # the graph the engine runs (SiLU pairs fused), for the plan's names
    fusions: list[Fusion | AddFusion | LineFusion] = field(default_factory=list)
    absorbed: list[Absorbed] = field(default_factory=list)  # TRANSPOSEs folded away (codegen.layout)


def _runtime_source(name: str) -> str:
    return resources.files("mcu_effnet").joinpath("firmware_templates", "runtime", name).read_text()


def runtime_sources(dsp: bool = False) -> dict[str, str]:
    """The kernel runtime (``firmware_templates/runtime``): file name -> content, copied as is.

    ``dsp``: also the DSP-extension kernels (``DSP_RUNTIME_FILES``).
    """
    names = RUNTIME_FILES + (DSP_RUNTIME_FILES if dsp else ())
    return {name: _runtime_source(name) for name in names}


def _environment() -> jinja2.Environment:
    return environment()


def _shape4(shape: tuple[int, ...], what: str) -> list[int]:
    if len(shape) > 4:
        raise UserError(f"{what}: tensors of rank {len(shape)} are not supported (at most 4)")
    return [1] * (4 - len(shape)) + [int(d) for d in shape]


class _Builder:
    """Collects the arrays, parameter structs and calls of one graph."""

    def __init__(self, graph: Graph, plan: ArenaPlan, dsp: bool = False, widen: set[int] | None = None):
        self.dsp = dsp
        self.widen = widen  # ops whose 1x1 / FC weights may be widened (None: every one that can)
        self.graph = graph
        self.plan = plan
        self.arrays: list[dict[str, Any]] = []
        self.structs: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.weights_bytes = 0
        self._names: set[str] = set()
        self._const_tensor_arrays: dict[int, str] = {}

    def may_widen(self, op: Op) -> bool:
        return self.widen is None or op.index in self.widen

    # ---- names and data ------------------------------------------------------------------

    def name(self, base: str) -> str:
        candidate = c_identifier(base)
        n = 1
        unique = candidate
        while unique in self._names:
            n += 1
            unique = f"{candidate}_{n}"
        self._names.add(unique)
        return unique

    def array(self, base: str, ctype: str, values: np.ndarray, comment: str, public: bool = False) -> str:
        values = np.asarray(values).reshape(-1)
        name = self.name(base)
        self.arrays.append(
            {
                "name": name,
                "ctype": ctype,
                "length": max(values.size, 1),
                "values": values,  # formatted as C only when rendered (sizing skips it)
                "comment": c_comment(comment),
                "public": public,
            }
        )
        self.weights_bytes += values.size * _CTYPE_BYTES[ctype]
        return name

    def struct(self, op: Op, ctype: str, fields: dict[str, Any], comment: str = "") -> str:
        name = self.name(f"op{op.index}_{op.kind.lower()}")

        def fmt(v: Any) -> str:
            if isinstance(v, str):
                return v  # an array name, or NULL
            if isinstance(v, list | tuple):
                return c_int_list(v)
            return c_int(int(v))

        self.structs.append(
            {
                "name": name,
                "ctype": ctype,
                "op_index": op.index,
                "kind": op.kind,
                "comment": c_comment(comment or self.describe(op)),
                "fields": [(k, fmt(v)) for k, v in fields.items()],
            }
        )
        return name

    def describe(self, op: Op) -> str:
        outs = [self.graph.tensors[t] for t in op.outputs]
        return ", ".join(f"{t.name} {list(t.shape)}" for t in outs)

    def ptr(self, tensor: int) -> dict[str, Any]:
        t = self.graph.tensors[tensor]
        if t.is_constant:
            if tensor not in self._const_tensor_arrays:
                if t.dtype not in ("int8", "int16"):
                    raise UserError(
                        f"constant operand '{t.name}' is {t.dtype}; only int8 (or int16) constants can be operands"
                    )
                self._const_tensor_arrays[tensor] = self.array(
                    f"const_{t.name}",
                    f"{t.dtype}_t",
                    t.data,
                    f"constant operand {t.name} {list(t.shape)}",
                    public=True,
                )
            return {"kind": "name", "name": self._const_tensor_arrays[tensor], "own_ctype": f"{t.dtype}_t"}
        where, offset = self.plan.location(tensor)
        return {"kind": where, "offset": offset}

    def call(self, op: Op, kernel: str, params: str, inputs: list[int], **extra: Any) -> None:
        output = extra.pop("output_ptr", None) or self.ptr(op.outputs[0])
        self.calls.append(
            {
                "op_index": op.index,
                "kind": op.kind,
                "comment": c_comment(self.describe(op)),
                "call": extra.pop("call", "kernel"),
                "kernel": kernel,
                "params": params,
                "inputs": [self.ptr(t) for t in inputs],
                "output": output,
                **extra,
            }
        )


# ---- per-op handlers: one Params (mcu_effnet.ops) into one C struct -----------------------


def _int32_bias(op: Op, folded: np.ndarray) -> np.ndarray:
    """The folded bias, refused rather than wrapped when it leaves int32 (the C field's type)."""
    if folded.min(initial=0) < -(2**31) or folded.max(initial=0) > 2**31 - 1:
        raise UserError(f"op {op.index} {op.kind}: bias plus input offset times the weights overflows int32")
    return folded


def _conv(b: _Builder, op: Op) -> None:
    in_place_1x1 = op.kind == "CONV_2D" and op.index in b.plan.scratch
    kernel, params, layout = _conv_params(b, op, chunked=in_place_1x1)
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    if depthwise and op.index in b.plan.scratch:
        scratch = b.plan.buffers[b.plan.scratch[op.index]]
        assert b.plan.location(op.inputs[0]) == b.plan.location(op.outputs[0])
        b.call(
            op,
            layout.in_place_kernel if layout else "ek_depthwise_conv2d_in_place",
            params,
            [op.inputs[0]],
            output_ptr={"kind": ARENA, "offset": scratch.offset},
        )
        return
    if op.index in b.plan.scratch:  # a 1x1 convolution over its own input (planner: pointwise_in_place_chunk)
        scratch = b.plan.buffers[b.plan.scratch[op.index]]
        assert b.plan.location(op.inputs[0]) == b.plan.location(op.outputs[0])
        b.call(
            op,
            f"{kernel}_in_place",
            params,
            [],
            call="conv_in_place",
            chunk=pointwise_in_place_chunk(b.graph, op),
            data=b.ptr(op.inputs[0]),
            scratch={"kind": ARENA, "offset": scratch.offset},
        )
        return
    b.call(op, kernel, params, [op.inputs[0]])


def _conv_add(b: _Builder, op: Op) -> None:
    """A CONV_2D with its residual ADD fused (``mcu_effnet.codegen.fuse_add``): the kernel's
    chunked form adds each chunk of the convolution's output to the other operand."""
    conv, add = op.attrs["conv"], op.attrs["add"]
    kernel, params, _ = _conv_params(b, conv, chunked=True)
    add_params = _binary_params(b, add)
    scratch = b.plan.buffers[b.plan.scratch[op.index]]
    b.call(
        op,
        f"{kernel}_add",
        params,
        [conv.inputs[0], op.inputs[3]],
        call="conv_add",
        add_params=add_params,
        conv_first=int(op.attrs["conv_first"]),
        chunk=conv_add_chunk(b.graph, op),
        scratch={"kind": ARENA, "offset": scratch.offset},
    )


def _conv_depthwise(b: _Builder, op: Op) -> None:
    """A 1x1 CONV_2D and the DEPTHWISE_CONV_2D it feeds, row by row (``mcu_effnet.codegen.fuse_lines``)."""
    conv, dw = op.attrs["conv"], op.attrs["depthwise"]
    conv_kernel, conv_params, _ = _conv_params(b, conv, chunked=True)
    dw_kernel, dw_params, _ = _conv_params(b, dw)
    mid, y = b.graph.tensors[conv.outputs[0]], b.graph.tensors[dw.outputs[0]]
    p = prepare(b.graph, dw)
    shape = b.struct(
        op,
        "ek_line_shape",
        dict(
            in_h=mid.shape[1],
            in_w=mid.shape[2],
            mid_c=mid.shape[3],
            span=line_rows(b.graph, op),
            stride_h=p.stride_h,
            pad_top=p.pad_top,
            out_h=y.shape[1],
            out_row=int(y.shape[2]) * int(y.shape[3]),
        ),  # fmt: skip
    )
    scratch = b.plan.buffers[b.plan.scratch[op.index]]
    b.call(
        op,
        "ek_expand_depthwise",
        shape,
        [conv.inputs[0]],
        call="expand_depthwise",
        part=f"{conv_kernel}_part",
        part_params=conv_params,
        row=f"{dw_kernel}_row",
        row_params=dw_params,
        scratch={"kind": ARENA, "offset": scratch.offset},
    )


def _conv_params(b: _Builder, op: Op, chunked: bool = False) -> tuple[str, str, Any]:
    """The convolution's kernel, its parameter struct's name and its DSP layout (None: plain).
    ``chunked``: for a chunked mode (``ek_chunks*.h``), whose forms exist for the k x k and
    pointwise kernels only (``dsp_layout.conv_layout``)."""
    g = b.graph
    x, w, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    n, h, wd, c = x.shape
    _, oh, ow, oc = y.shape
    kh, kw = (w.shape[1], w.shape[2])
    p = prepare(g, op)
    multiplier, shift = p.multiplier, p.shift
    tag = f"op{op.index}"
    bias = optional_input(g, op, 2)
    folded = _int32_bias(op, p.folded_bias)
    bias_note = f"{bias.name} {list(bias.shape)}" if bias else "no bias"
    layout = None
    if b.dsp:
        if depthwise:
            layout = dsp_layout.depthwise_layout(w.data, p.bias, p.depth_multiplier, shift, p.in_offset)
        elif kh * kw > 1 or (dsp_layout.widen_1x1(c, oc) and b.may_widen(op)):
            layout = dsp_layout.conv_layout(
                w.data, p.bias, shift, p.in_offset, multiplier, chunked, p.out_offset, p.act_min, p.dil_w
            )
        if layout is None and not depthwise and kh == 1 and kw == 1:  # any stride: never padded
            layout = dsp_pointwise.pointwise_layout(
                dsp_pointwise.CONV_KERNEL, w.data, folded, multiplier, shift
            )
    geometry = dict(
        batches=n, in_h=h, in_w=wd, in_c=c, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw,
        stride_h=p.stride_h, stride_w=p.stride_w, dil_h=p.dil_h, dil_w=p.dil_w, pad_top=p.pad_top, pad_left=p.pad_left,
    )  # fmt: skip
    if isinstance(layout, dsp_layout.DspConvLayout):  # its own struct (ek_conv_dsp.h)
        weights = b.array(
            f"{tag}_weights", "int32_t", layout.weights, f"{w.name} {list(w.shape)}: {layout.note}"
        )
        # the first-layer kernel's records are in its weights' runs (dsp_layout.first_runs)
        arrays = dict(records=weights) if layout.kernel == dsp_layout.FIRST_KERNEL else dict(
            bias=b.array(f"{tag}_bias", "int32_t", layout.bias, f"{bias_note}, as {layout.kernel} takes it"),
            multiplier=b.array(f"{tag}_multiplier", "int32_t", multiplier, "per-channel multipliers (Q0.31)"),
            right_shift=b.array(f"{tag}_shift", "int32_t", layout.shift, "per-channel -shift - 1"),
        ) if layout.records is None else dict(records=b.array(
            f"{tag}_records", "int32_t", layout.records, f"{bias_note} (doubled), multipliers, -shift - 1 per 4 channels"
        ))  # fmt: skip
        params = b.struct(op, layout.struct, dict(
            **geometry, in_offset=p.in_offset, out_offset=p.out_offset, act_min=p.act_min, act_max=p.act_max, weights=weights, **arrays
        ))  # fmt: skip
    elif layout is not None:  # the 1x1 kernel: its own struct (ek_pointwise_dsp.h)
        params = b.struct(op, layout.struct, dict(
            batches=n, in_h=h, in_w=wd, in_c=c, out_h=oh, out_w=ow, out_c=oc, stride_h=p.stride_h, stride_w=p.stride_w,
            out_offset=p.out_offset, act_min=p.act_min, act_max=p.act_max,
            weights=b.array(f"{tag}_weights", "int32_t", layout.weights, f"{w.name} {list(w.shape)}: {layout.note}"),
            records=b.array(f"{tag}_records", "int32_t", layout.records, f"{bias_note}: records for {layout.kernel}"),
        ))  # fmt: skip
    else:
        fields = dict(
            **geometry, depth_multiplier=p.depth_multiplier, in_offset=p.in_offset, out_offset=p.out_offset,
            act_min=p.act_min, act_max=p.act_max, weights=b.array(f"{tag}_weights", "int8_t", w.data, f"{w.name} {list(w.shape)}"),
            bias=b.array(f"{tag}_bias", "int32_t", folded, f"{bias_note} + input offset x weight sums"),
            multiplier=b.array(f"{tag}_multiplier", "int32_t", multiplier, "per-channel multipliers (Q0.31)"),
            shift=b.array(f"{tag}_shift", "int32_t", shift, "per-channel shifts"),
        )  # fmt: skip
        params = b.struct(op, "ek_conv_params", fields)
    kernel = layout.kernel if layout else ("ek_depthwise_conv2d" if depthwise else "ek_conv2d")
    return kernel, params, layout


def _fc_kernel(b: _Builder, op: Op, p: FullyConnectedParams, rows: int, bias_note: str) -> bool:
    """The FULLY_CONNECTED through ``dsp_layout.FC_KERNEL``, or False (nothing emitted) where its
    requantization would not be exact or its input is not an arena buffer (the kernel loads the
    rows with LDM, which needs the word alignment arena offsets have). ``p``: the op's
    ``prepare`` parameters, which ``_fully_connected`` already has."""
    g = b.graph
    if b.ptr(op.inputs[0])["kind"] != ARENA:
        return False
    w = g.tensors[op.inputs[1]]
    units = int(w.shape[0])
    layout = dsp_layout.fc_layout(
        w.data,
        p.bias,
        np.broadcast_to(p.multiplier, (units,)),
        np.broadcast_to(p.shift, (units,)),
        p.in_offset,
        p.out_offset,
        p.act_min,
        p.act_max,
    )
    if layout is None:
        return False
    params = b.struct(op, dsp_layout.FC_STRUCT, dict(
        rows=rows, depth=int(w.shape[1]), units=units, sat4=layout.sat4, shift4=layout.shift4,
        weights=b.array(f"op{op.index}_weights", "int32_t", layout.weights, f"{w.name} {list(w.shape)}, {bias_note} (+ input offset x weight sums, doubled): {layout.note}"),
    ))  # fmt: skip
    b.call(op, dsp_layout.fc_kernel(int(w.shape[1]), units), params, [op.inputs[0]])
    return True


def _fully_connected(b: _Builder, op: Op) -> None:
    g = b.graph
    x, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    units, depth = int(w.shape[0]), int(w.shape[1])
    p = prepare(g, op)
    multiplier, shift = p.multiplier, p.shift
    tag = f"op{op.index}"
    bias = optional_input(g, op, 2)
    folded = _int32_bias(op, p.folded_bias)
    bias_note = f"{bias.name} {list(bias.shape)}" if bias else "no bias"
    rows = elements(x.shape) // depth
    if (
        b.dsp
        and dsp_layout.takes_fc_kernel(depth, units)
        and b.may_widen(op)
        and _fc_kernel(b, op, p, rows, bias_note)
    ):
        return
    wide = None
    if b.dsp and dsp_layout.widen_1x1(depth, units) and b.may_widen(op):  # a 1x1 conv over `rows` pixels
        wide = dsp_layout.conv_layout(
            w.data.reshape(units, 1, 1, depth),
            p.bias,
            np.broadcast_to(shift, (units,)),
            p.in_offset,
            np.broadcast_to(multiplier, (units,)),
            out_offset=p.out_offset,
            act_min=p.act_min,
        )
    if wide is not None:
        geometry = dict(
            batches=1, in_h=rows, in_w=1, in_c=depth, out_h=rows, out_w=1, out_c=units, k_h=1, k_w=1,
            stride_h=1, stride_w=1, dil_h=1, dil_w=1, pad_top=0, pad_left=0,
            in_offset=p.in_offset, out_offset=p.out_offset, act_min=p.act_min, act_max=p.act_max,
        )  # fmt: skip
        params = b.struct(op, wide.struct, dict(
            **geometry,
            weights=b.array(f"{tag}_weights", "int32_t", wide.weights, f"{w.name} {list(w.shape)}: {wide.note}"),
            records=b.array(f"{tag}_records", "int32_t", wide.records, f"{bias_note} (doubled), multipliers, -shift - 1 per 4 units"),
        ))  # fmt: skip
        b.call(op, wide.kernel, params, [op.inputs[0]])
        return
    if b.dsp:  # its own struct (ek_pointwise_dsp.h)
        layout = dsp_pointwise.pointwise_layout(dsp_pointwise.FC_KERNEL, w.data, folded, multiplier, shift)
        params = b.struct(op, layout.struct, dict(
            rows=rows, depth=depth, units=units, out_offset=p.out_offset, act_min=p.act_min, act_max=p.act_max,
            weights=b.array(f"{tag}_weights", "int32_t", layout.weights, f"{w.name} {list(w.shape)}: {layout.note}"),
            records=b.array(f"{tag}_records", "int32_t", layout.records, f"{bias_note}: records for {layout.kernel}"),
        ))  # fmt: skip
        b.call(op, layout.kernel, params, [op.inputs[0]])
        return
    fields = dict(
        rows=rows, depth=depth, units=units, in_offset=p.in_offset, out_offset=p.out_offset,
        act_min=p.act_min, act_max=p.act_max, per_channel=int(p.per_channel),
        weights=b.array(f"{tag}_weights", "int8_t", w.data, f"{w.name} {list(w.shape)}"),
        bias=b.array(f"{tag}_bias", "int32_t", folded, f"{bias_note} + input offset x weight sums"),
        multiplier=b.array(f"{tag}_multiplier", "int32_t", multiplier, "multipliers (Q0.31)"),
        shift=b.array(f"{tag}_shift", "int32_t", shift, "shifts"),
    )  # fmt: skip
    b.call(op, "ek_fully_connected", b.struct(op, "ek_fc_params", fields), [op.inputs[0]])


def _broadcast_strides(shape: tuple[int, ...], out4: list[int], what: str) -> list[int]:
    dims = _shape4(shape, what)
    strides = [0, 0, 0, 0]
    step = 1
    for k in (3, 2, 1, 0):
        if dims[k] == out4[k]:
            strides[k] = step if dims[k] > 1 else 0
        elif dims[k] == 1:
            strides[k] = 0
        else:
            raise UserError(f"{what}: shape {list(shape)} does not broadcast to {out4}")
        step *= dims[k]
    return strides


def _binary(b: _Builder, op: Op) -> None:
    params = _binary_params(b, op)
    b.call(op, "ek_add" if op.kind == "ADD" else "ek_mul", params, [op.inputs[0], op.inputs[1]])


def _binary_params(b: _Builder, op: Op) -> str:
    g = b.graph
    t1, t2, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    what = f"op {op.index} {op.kind}"
    out4 = _shape4(y.shape, what)
    p = prepare(g, op)
    fields: dict[str, Any] = dict(
        out_dims=out4,
        in1_strides=_broadcast_strides(t1.shape, out4, what),
        in2_strides=_broadcast_strides(t2.shape, out4, what),
        **asdict(p),
    )
    return b.struct(op, "ek_binary_params", fields)


def _mean(b: _Builder, op: Op) -> None:
    shape = tuple(int(d) for d in b.graph.tensors[op.inputs[0]].shape)
    p = prepare(b.graph, op)
    axes = sorted(p.axes)
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise UserError(
            f"op {op.index} {op.kind}: axes {axes} are not contiguous; the engine reduces one run of axes"
        )
    fields = dict(
        outer=elements(shape[: axes[0]]), reduce=p.count, inner=elements(shape[axes[-1] + 1 :]),
        in_zero_point=p.in_zero_point, out_zero_point=p.out_zero_point, multiplier=p.multiplier,
        shift=p.shift,
    )  # fmt: skip
    b.call(op, "ek_mean", b.struct(op, "ek_mean_params", fields), [op.inputs[0]])


def _pool(b: _Builder, op: Op) -> None:
    g = b.graph
    n, h, w, c = g.tensors[op.inputs[0]].shape
    _, oh, ow, _ = g.tensors[op.outputs[0]].shape
    fields = dict(batches=n, in_h=h, in_w=w, channels=c, out_h=oh, out_w=ow, **asdict(prepare(g, op)))
    kernel = "ek_average_pool2d" if op.kind == "AVERAGE_POOL_2D" else "ek_max_pool2d"
    b.call(op, kernel, b.struct(op, "ek_pool_params", fields), [op.inputs[0]])


def _size(b: _Builder, op: Op) -> int:
    return elements(b.graph.tensors[op.inputs[0]].shape)


# Element-wise ops whose C struct is their element count and their Params: (kernel, struct).
UNARY_KERNELS = {
    "LOGISTIC": ("ek_logistic", "ek_logistic_params"),
    "HARD_SWISH": ("ek_hard_swish", "ek_hard_swish_params"),
    "RELU": ("ek_requantize", "ek_requantize_params"),  # a requantization clamped at zero
    "RELU6": ("ek_relu6", "ek_clamp_params"),
}


def _unary(kernel: str, struct: str) -> Callable[[_Builder, Op], None]:
    """The handler of an elementwise op whose C struct is its element count and its Params."""

    def handle(b: _Builder, op: Op) -> None:
        fields = dict(size=_size(b, op), **asdict(prepare(b.graph, op)))
        b.call(op, kernel, b.struct(op, struct, fields), [op.inputs[0]])

    return handle


def _dequantize(b: _Builder, op: Op) -> None:
    p = prepare(b.graph, op)
    # A C99 hexadecimal literal: the float32 scale exactly, whatever the compiler's decimal parsing.
    fields = dict(size=_size(b, op), scale=f"{float(np.float32(p.scale)).hex()}f", zero_point=p.zero_point)
    output = {**b.ptr(op.outputs[0]), "ctype": "float"}
    b.call(
        op, "ek_dequantize", b.struct(op, "ek_dequantize_params", fields), [op.inputs[0]], output_ptr=output
    )


def _quantize(b: _Builder, op: Op) -> None:
    """QUANTIZE: from a float32 model input (ek_quantize_f32), else an int8 requantization."""
    if not quantize_float.is_float_quantize(b.graph, op):
        _unary("ek_requantize", "ek_requantize_params")(b, op)
        return
    p = prepare(b.graph, op)
    fields = dict(
        size=_size(b, op),
        scale=f"{float(np.float32(p.scale)).hex()}f",  # exact, as DEQUANTIZE's
        zero_point=p.zero_point,
        out_min=p.out_min,
        out_max=p.out_max,
    )
    wide = b.graph.tensors[op.outputs[0]].dtype == "int16"
    b.call(
        op,
        "ek_quantize_f32_s16" if wide else "ek_quantize_f32",
        b.struct(op, "ek_quantize_f32_params", fields),
        [],
        output_ptr={**b.ptr(op.outputs[0]), "ctype": "int16_t" if wide else "int8_t"},
    )
    b.calls[-1]["inputs"] = [{**b.ptr(op.inputs[0]), "ctype": "float"}]


def _argmax(b: _Builder, op: Op) -> None:
    p = prepare(b.graph, op)
    fields = dict(outer=p.outer, axis_size=p.axis_size, inner=p.inner)
    wide = b.graph.tensors[op.outputs[0]].dtype == "int64"  # TFLite's default output_type
    output = {**b.ptr(op.outputs[0]), "ctype": "int64_t" if wide else "int32_t"}
    kernel = "ek_argmax64" if wide else "ek_argmax"
    b.call(op, kernel, b.struct(op, "ek_argmax_params", fields), [op.inputs[0]], output_ptr=output)


def _softmax(b: _Builder, op: Op) -> None:
    depth = int(b.graph.tensors[op.inputs[0]].shape[-1])
    fields = dict(rows=_size(b, op) // depth, depth=depth, **asdict(prepare(b.graph, op)))
    b.call(op, "ek_softmax", b.struct(op, "ek_softmax_params", fields), [op.inputs[0]])


def _lookup(b: _Builder, op: Op) -> None:
    p = prepare(b.graph, op)
    first, second = p.fused_ops
    table = b.array(
        f"op{op.index}_table", "int8_t", p.table, f"SiLU of ops {first}, {second}: output per input value"
    )
    fields = dict(size=_size(b, op), table=table)
    b.call(op, "ek_lookup", b.struct(op, "ek_lookup_params", fields), [op.inputs[0]])


def _pad(b: _Builder, op: Op) -> None:
    x = b.graph.tensors[op.inputs[0]]
    p = prepare(b.graph, op)
    extra = [(0, 0)] * (4 - len(x.shape))
    fields = dict(
        in_dims=_shape4(x.shape, f"op {op.index} PAD"),
        before=[before for before, _ in extra + list(p.paddings)],
        after=[after for _, after in extra + list(p.paddings)],
        pad_value=p.pad_value,
    )
    b.call(op, "ek_pad", b.struct(op, "ek_pad_params", fields), [op.inputs[0]])


def _reshape(b: _Builder, op: Op) -> None:
    if op.index in b.plan.aliased_ops:
        b.call(op, "", "", [], call="none")
    else:
        size = b.graph.tensors[op.outputs[0]].nbytes
        b.call(op, "ek_copy", "", [op.inputs[0]], call="copy", size=size)


def _concatenation(b: _Builder, op: Op) -> None:
    g = b.graph
    y = g.tensors[op.outputs[0]]
    rank = len(y.shape)
    axis = int(op.attrs.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    outer = elements(y.shape[:axis])
    sizes = [elements(g.tensors[t].shape[axis:]) * np.dtype(y.dtype).itemsize for t in op.inputs]
    name = b.array(
        f"op{op.index}_sizes", "int32_t", np.array(sizes), "bytes per block of each input", public=True
    )
    b.call(op, "", "", list(op.inputs), call="concat", outer=outer, sizes=name)


_HANDLERS = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _conv,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _binary,
    "MUL": _binary,
    "MEAN": _mean,
    "SUM": _mean,  # MEAN's kernel with the multiplier not folded with 1 / count
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "PAD": _pad,
    "RESHAPE": _reshape,
    "SOFTMAX": _softmax,
    **{kind: _unary(kernel, struct) for kind, (kernel, struct) in UNARY_KERNELS.items()},
    "CONCATENATION": _concatenation,
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,  # the one op with a float32 output (a model output)
    "ARG_MAX": _argmax,  # int32 or int64 indices (a model output)
    LOOKUP: _lookup,  # the engine's own: LOGISTIC -> MUL fused (mcu_effnet.codegen.fuse)
    **engine_math.HANDLERS,
    CONV_ADD: _conv_add,  # the engine's own: CONV_2D -> residual ADD fused (mcu_effnet.codegen.fuse_add)
    CONV_DEPTHWISE: _conv_depthwise,  # the engine's own: 1x1 -> depthwise by rows (codegen.fuse_lines)
    TILED: engine_tiled.handle,  # the engine's own: the first layers band by band (graph.tiling)
}
_HANDLERS.update(data_movement.handlers(_reshape))
assert set(_HANDLERS) == set(SUPPORTED_OPS) | {LOOKUP, CONV_ADD, CONV_DEPTHWISE, TILED}


def _fuse_chunked(graph: Graph, chosen: list[AddFusion | LineFusion]) -> Graph:
    adds = [f for f in chosen if isinstance(f, AddFusion)]
    lines = [f for f in chosen if isinstance(f, LineFusion)]
    return fuse_lines.fuse(fuse_add.fuse(graph, adds), lines)


def _plan_chunked(graph: Graph) -> tuple[Graph, list[AddFusion | LineFusion], ArenaPlan]:
    """``graph`` with the chunked modes that lower its arena, and its plan."""
    options = [*fuse_add.candidates(graph), *fuse_lines.candidates(graph)]
    return fuse_add.choose(graph, options, _fuse_chunked, plan_memory)


def _check(graph: Graph) -> None:
    label = graph.source or graph.name or "model"
    io_ports.check_ports(graph, f"{label}: the native engine")
    for op in graph.ops:
        if op.kind not in _HANDLERS:
            raise UserError(
                f"{label}: op {op.index} {op.kind} is not supported (supported: {', '.join(SUPPORTED_OPS)})"
            )
        data = op.inputs[2:3] if op.kind == "TRANSPOSE_CONV" else op.inputs[:1]  # after shape, weights
        for t in (*data, *op.outputs):
            tensor = graph.tensors[t]
            if op.kind in ("DEQUANTIZE", "ARG_MAX") and t in op.outputs:
                continue  # float32 or int32 (their checks say so)
            if quantize_float.is_float_quantize(graph, op) and t in op.inputs:
                continue  # a float32 model input
            if tensor.dtype not in engine_int16.CTYPES and not tensor.is_constant:
                raise UserError(
                    f"{label}: op {op.index} {op.kind}: tensor '{tensor.name}' is {tensor.dtype}, expected int8 or int16"
                )


def _macs(graph: Graph, op: Op) -> int:
    """An op's multiply-accumulates; a fused op's are those of the ops it stands for."""
    if op.kind == CONV_ADD:
        return int(op_macs(graph, op.attrs["conv"]))
    if op.kind == CONV_DEPTHWISE:
        return int(op_macs(graph, op.attrs["conv"]) + op_macs(graph, op.attrs["depthwise"]))
    if op.kind == TILED:
        return op.attrs["segment"].macs  # once each; the plan's tiling counts the recomputed ones
    return int(op_macs(graph, op))


def _layers(graph: Graph, plan: ArenaPlan) -> list[dict[str, Any]]:
    return [
        {
            "step": pos,
            "index": op.index,
            "op": op.kind,
            "output_shape": [int(d) for d in graph.tensors[op.outputs[0]].shape],
            "macs": _macs(graph, op),
            "live_bytes": int(plan.live_bytes[pos]),
        }
        for pos, op in enumerate(ordered_ops(graph, plan.order or None))
    ]


def _widen_within(graph: Graph, budget: int) -> set[int]:
    """The 1x1 CONV_2D / FULLY_CONNECTED ops whose weights the DSP engine widens to int16 (twice
    their flash) within ``budget`` extra bytes: most MACs per extra byte first."""
    candidates = []
    for op in graph.ops:
        if engine_int16.handler(graph, op) is not None:
            continue  # 16x8 ops keep their plain int16 kernels
        w = graph.tensors[op.inputs[1]] if op.kind in ("CONV_2D", "FULLY_CONNECTED") else None
        if w is None or (op.kind == "CONV_2D" and w.shape[1:3] != (1, 1)):
            continue
        units, depth = int(w.shape[0]), int(w.shape[-1])
        fc = op.kind == "FULLY_CONNECTED" and dsp_layout.takes_fc_kernel(depth, units)
        if fc or dsp_layout.widen_1x1(depth, units):
            extra = dsp_layout.widening_extra_bytes(depth, units, fc)
            candidates.append((op_macs(graph, op) / extra, extra, op.index))
    chosen: set[int] = set()
    for _, extra, index in sorted(candidates, key=lambda c: (-c[0], c[2])):
        if extra <= budget:
            chosen.add(index)
            budget -= extra
    return chosen


def _ports(graph: Graph, b: _Builder, declared: Tensor, outputs: bool) -> list[dict[str, Any]]:
    """Each model input (or output) as model.h / model.c describe it: its place, element type,
    size and byte offset in the packed form (back to back, as model_invoke() takes them)."""
    ids = graph.outputs if outputs else graph.inputs
    tensors = [graph.tensors[t] for t in ids]
    if not outputs:
        tensors[0] = declared  # an absorbed input TRANSPOSE: the caller's layout
    out = []
    for port, t, tensor in zip(io_ports.ports(tensors), ids, tensors, strict=True):
        scale, zp = qparams(tensor) if tensor.scale.size else (1.0, 0)  # float, indices: real values
        out.append(
            {
                "k": port.k,
                "name": c_comment(tensor.name),
                "shape": list(port.shape),
                "ctype": port.ctype,
                "itemsize": port.itemsize,
                "scale": f"{scale:.9g}",
                "zero_point": zp,
                "size": port.size,
                "offset": port.offset,
                "place": b.ptr(t),
            }
        )
    return out


@dataclass
class _Built:
    """``_build``'s result: the builder with every op's arrays, structs and calls, and what the
    rendering needs besides."""

    b: _Builder
    graph: Graph  # as the engine runs it (TRANSPOSEs absorbed, SiLU pairs and chunked modes fused)
    plan: ArenaPlan
    fusions: list[Fusion | AddFusion | LineFusion]
    layout: Layout  # the absorbed TRANSPOSEs
    declared: Tensor  # the model input as the caller passes it
    input_gather: str | None  # the input copy's gather parameters (an absorbed input TRANSPOSE)


@dataclass
class EnginePlan:
    """The graph as the engine runs it and its arena plan, before any array is laid out:
    sizing an engine and generating it share one (the chunked modes' choice re-plans the
    arena once per candidate mode, the costliest step of both)."""

    graph: Graph  # TRANSPOSEs absorbed, SiLU pairs and chunked modes fused
    plan: ArenaPlan
    fusions: list[Fusion | AddFusion | LineFusion]
    layout: Layout  # the absorbed TRANSPOSEs
    declared: Tensor  # the model input as the caller passes it


def plan_engine(
    graph: Graph,
    plan: ArenaPlan | None = None,
    fuse: bool | None = None,
    absorb: bool | None = None,
    max_recompute: float | None = DEFAULT_MAX_RECOMPUTE,
) -> EnginePlan:
    """What ``generate_engine(graph, plan, fuse, absorb)`` runs: see there."""
    _check(graph)
    fusions: list[Fusion | AddFusion | LineFusion] = []
    declared = graph.tensors[graph.inputs[0]]
    layout = Layout(graph)
    if (plan is None) if absorb is None else absorb:
        layout = absorb_transposes(graph)
        graph = layout.graph
    if (plan is None) if fuse is None else fuse:
        graph, fusions = fuse_silu(graph)
        if plan is None:  # residual ADDs, 1x1 -> depthwise pairs, tiling: where that lowers the arena
            untiled = _plan_chunked(graph)
            graph, chosen, plan, _ = tile_plan.choose(graph, untiled, _plan_chunked, max_recompute)
            fusions = [*fusions, *chosen]
    plan = plan if plan is not None else plan_memory(graph)
    if layout.input_gather is not None and not plan.io_in_arena:
        raise UserError(
            "an input TRANSPOSE is absorbed into the input copy, which needs the input in the arena"
        )
    return EnginePlan(graph, plan, fusions, layout, declared)


def _build(planned: EnginePlan, dsp: bool, widen_budget: int | None) -> _Built:
    """Every op's arrays, structs and call, in the plan's order (nothing rendered yet)."""
    graph, plan, layout, declared = planned.graph, planned.plan, planned.layout, planned.declared
    b = _Builder(graph, plan, dsp, None if widen_budget is None else _widen_within(graph, widen_budget))
    input_gather = None
    if layout.input_gather is not None:
        first = Op(layout.absorbed[0].op, "TRANSPOSE", [], [graph.inputs[0]])
        fields = data_movement.gather_fields(
            layout.input_gather, declared.nbytes // elements(declared.shape), "input"
        )
        input_gather = b.struct(
            first, "ek_gather_params", fields, "the input copy: declared layout -> the first op's"
        )
    for op in ordered_ops(graph, plan.order or None):
        (engine_int16.handler(graph, op) or _HANDLERS[op.kind])(b, op)
    return _Built(b, graph, plan, list(planned.fusions), layout, declared, input_gather)


@dataclass(frozen=True)
class EngineSize:
    """What ``generate_engine`` would lay out, without writing its C (fitting sizes many graphs)."""

    arena_bytes: int
    weights_bytes: int
    model_ram_bytes: int
    calls: dict[str, int]  # kernel calls per op kind (a fused SiLU pair is one LOOKUP_TABLE)
    io_bytes: int  # the model's input and output


def engine_size(
    graph: Graph,
    dsp: bool = False,
    widen_budget: int | None = None,
    plan: ArenaPlan | None = None,
    max_recompute: float | None = DEFAULT_MAX_RECOMPUTE,
    planned: EnginePlan | None = None,
) -> EngineSize:
    """The arena, const arrays and calls of the engine ``generate_engine(graph, dsp=..,
    widen_budget=..)`` writes: the same plan, fusion and layout, minus the rendering.
    ``plan``: one already made for ``graph`` as given (it is then not fused again);
    ``planned``: ``plan_engine(graph)`` already made (``graph``, ``plan`` and ``max_recompute``
    are then ignored)."""
    built = _build(planned or plan_engine(graph, plan, max_recompute=max_recompute), dsp, widen_budget)
    b, fused, plan = built.b, built.graph, built.plan
    calls: dict[str, int] = {}
    for c in b.calls:
        for kind in c.get("inner_kinds") or [c["kind"]]:  # a tiled segment: the kernels of its ops
            calls[kind] = calls.get(kind, 0) + 1
    io = sum(fused.tensors[t].nbytes for t in (*fused.inputs, *fused.outputs))
    io += built.declared.nbytes - fused.tensors[fused.inputs[0]].nbytes
    return EngineSize(
        arena_bytes=plan.arena_bytes,
        weights_bytes=b.weights_bytes,
        model_ram_bytes=plan.arena_bytes + (0 if plan.io_in_arena else io),
        calls=calls,
        io_bytes=io,
    )


def generate_engine(
    graph: Graph,
    plan: ArenaPlan | None = None,
    fuse: bool | None = None,
    dsp: bool = False,
    widen_budget: int | None = None,
    absorb: bool | None = None,
    max_recompute: float | None = DEFAULT_MAX_RECOMPUTE,
    planned: EnginePlan | None = None,
) -> EngineSources:
    """C sources of the native int8 engine for ``graph`` (any inputs and outputs a firmware can
    pass: ``io_ports.check_ports``), its ops called
    in ``plan.order`` (default plan: ``plan_memory``, the order that lowers the arena).

    ``fuse`` (default: when no plan is given) first turns each SiLU pair LOGISTIC -> MUL into one
    table lookup (``mcu_effnet.codegen.fuse``); a given plan must be for the graph as fused or not.
    ``absorb`` (default: when no plan is given) folds PyTorch-style TRANSPOSEs into the input
    copy or a classifier's weights (``mcu_effnet.codegen.layout``); a given plan must match.
    Without a plan, residual ADDs are also fused into the convolution producing one operand
    where that lowers the arena (``mcu_effnet.codegen.fuse_add``), and the first layers run
    band by band (``mcu_effnet.codegen.tile_plan``) where that lowers it further, recomputing
    at most ``max_recompute`` % of the model's MACs.
    ``dsp``: the target core has the DSP extension (Cortex-M4, M7, M33): ops the DSP kernels
    cover get them, with their weights laid out for them here; the rest keep the plain kernels.
    False gives the portable C99 engine (host builds, Cortex-M0+ / M3).
    ``widen_budget``: flash bytes the DSP engine may add by widening 1x1 / fully connected
    weights to int16 for its faster kernel (default: no limit); a board short of flash passes
    what it has left, and the layers that gain most per byte get it.
    ``planned``: ``plan_engine(graph, plan, fuse, absorb)`` already made, e.g. for
    ``engine_size`` first (``graph``, ``plan``, ``fuse`` and ``absorb`` are then ignored).
    """
    built = _build(planned or plan_engine(graph, plan, fuse, absorb, max_recompute), dsp, widen_budget)
    b, graph, plan, fusions = built.b, built.graph, built.plan, built.fusions
    layout, declared, input_gather = built.layout, built.declared, built.input_gather
    for a in b.arrays:
        values = a["values"]
        a["body"] = (
            c_int64_array_body(values) if a["ctype"] == "int64_t" else c_array_body(values.astype(np.int64))
        )

    tin = declared
    inputs = _ports(graph, b, declared, outputs=False)
    outputs = _ports(graph, b, declared, outputs=True)
    several = len(inputs) > 1 or len(outputs) > 1
    if several and not plan.io_in_arena:
        raise UserError("a model with several inputs or outputs needs them in the arena (io_in_arena)")
    in_scale, in_zp = qparams(tin) if tin.scale.size else (1.0, 0)  # a float32 input: real values
    out_zp = outputs[0]["zero_point"]
    used = {p["kind"] for c in b.calls for p in (*c["inputs"], c["output"], *c.get("outputs", ()))}
    if plan.io_in_arena:
        used |= {"input", "output"}  # copied in and out
    in_bytes, out_bytes = sum(i["size"] for i in inputs), sum(o["size"] for o in outputs)
    common = {
        "name": c_comment(graph.name or "model"),
        "source": c_comment(graph.source or "a .tflite model"),
        "arena_size": plan.arena_bytes,
        "weights_bytes": b.weights_bytes,
    }
    env = _environment()
    files = {
        "model.h": env.get_template("engine/model.h.j2").render(
            **common,
            input_shape=list(tin.shape),
            input_scale=f"{in_scale:.9g}",
            input_zero_point=in_zp,
            output_zero_point=out_zp,
            input_size=in_bytes,
            output_size=out_bytes,
            inputs=inputs,
            outputs=outputs,
            several=several,
            input_ctype=io_ports.shared_ctype([i["ctype"] for i in inputs]),
            output_ctype=io_ports.shared_ctype([o["ctype"] for o in outputs]),
            io_in_arena=plan.io_in_arena,
            dsp=dsp,
            input_layout=None
            if input_gather is None
            else c_comment(
                f"The input TRANSPOSE is absorbed: model_invoke() takes the declared {list(tin.shape)} "
                f"layout and transposes it as it copies it in; model_input_buffer{'_n(0)' if several else '()'} holds "
                f"{list(graph.tensors[graph.inputs[0]].shape)}, the first op's layout."
            ),
        ),
        "model_data.h": env.get_template("engine/model_data.h.j2").render(
            **common,
            arrays=b.arrays,
            structs=b.structs,
            param_headers=(*(DSP_PARAM_HEADERS if dsp else ()), engine_int16.HEADER),
        ),
        "model_data.c": env.get_template("engine/model_data.c.j2").render(
            **common, arrays=b.arrays, structs=b.structs
        ),
        "model.c": env.get_template("engine/model.c.j2").render(
            **common,
            calls=b.calls,
            plan_table=c_comment_lines(
                "\n".join([plan.describe(graph), *(a.describe() for a in layout.absorbed)])
            ),
            input_gather=input_gather,
            uses_input="input" in used,
            uses_output="output" in used,
            io_in_arena=plan.io_in_arena,
            input_place=b.ptr(graph.inputs[0]),
            inputs=inputs,
            outputs=outputs,
            several=several,
            output_place=b.ptr(graph.outputs[0]),
            input_ctype=io_ports.shared_ctype([i["ctype"] for i in inputs]),
            output_ctype=io_ports.shared_ctype([o["ctype"] for o in outputs]),
            dsp_headers=[f for f in DSP_RUNTIME_FILES if f.endswith(".h")] if dsp else [],
        ),
    }
    files.update(runtime_sources(dsp))
    if dsp:
        used = dsp_depthwise_paths.paths_used(b.structs, files["model.c"] + files["model_data.c"])
        files[dsp_depthwise_paths.HEADER] = dsp_depthwise_paths.paths_header(used)
    arena_in_use = any(buf.location == ARENA for buf in plan.buffers)
    assert arena_in_use or plan.arena_bytes == 0
    return EngineSources(
        files=files,
        plan=plan,
        arena_bytes=plan.arena_bytes,
        weights_bytes=b.weights_bytes,
        layers=_layers(graph, plan),
        input_bytes=in_bytes,
        output_bytes=out_bytes,
        model_ram_bytes=plan.arena_bytes + (0 if plan.io_in_arena else in_bytes + out_bytes),
        graph=graph,
        fusions=fusions,
        absorbed=layout.absorbed,
    )
