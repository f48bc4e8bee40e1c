"""The native int8 engine: C sources for one graph (see docs/ARCHITECTURE.md).

``generate_engine(graph)`` returns ``EngineSources``: ``model.h`` / ``model.c`` (straight-line
kernel calls over a static arena), ``model_data.h`` / ``model_data.c`` (const weights, int32
biases, per-channel multipliers and shifts computed here once, as TFLite Micro's Prepare would)
and the runtime kernels (``firmware_templates/runtime``, copied as they are), all flat in one
folder. The execution order and the arena layout come from
``mcu_effnet.graph.op_order.plan_memory``: model.c calls the kernels in the plan's order.
SiLU pairs (LOGISTIC -> MUL(x, sigmoid x)) run as one table lookup (``mcu_effnet.graph.fuse``).

The per-op parameters reuse the simulator's Prepare arithmetic (``mcu_effnet.sim``): the
same double-precision multiplier derivations TFLite Micro performs. The C kernels themselves
are independent and are tested against the TFLite Micro interpreter directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
import numpy as np

from mcu_effnet.codegen import dsp_layout, dsp_pointwise
from mcu_effnet.codegen.c_literals import (
    c_array_body,
    c_comment,
    c_comment_lines,
    c_identifier,
    c_int,
    c_int_list,
)
from mcu_effnet.errors import UserError
from mcu_effnet.graph.fuse import LOOKUP, Fusion, fuse_silu
from mcu_effnet.graph.ir import Graph, Op, Tensor
from mcu_effnet.graph.op_order import plan_memory
from mcu_effnet.graph.ops import SUPPORTED_OPS
from mcu_effnet.graph.planner import ARENA, ArenaPlan, ordered_ops
from mcu_effnet.graph.shapes import conv_output_size, same_padding

RUNTIME_FILES: tuple[str, ...] = (
    "ek_kernels.h",
    "ek_fixedpoint.h",
    "ek_fixedpoint.c",
    "ek_conv.c",
    "ek_fully_connected.c",
    "ek_elementwise.c",
    "ek_pool.c",
    "ek_activation.c",
    "ek_shape.c",
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
    "ek_conv_dsp.c",
)


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
    fusions: list[Fusion] = field(default_factory=list)


def _runtime_source(name: str) -> str:
    return resources.files("mcu_effnet").joinpath("firmware_templates", "runtime", name).read_text()


def runtime_sources(dsp: bool = False) -> dict[str, str]:
    """The kernel runtime (``firmware_templates/runtime``): file name -> content, copied as is.

    ``dsp``: also the DSP-extension kernels (``DSP_RUNTIME_FILES``).
    """
    names = RUNTIME_FILES + (DSP_RUNTIME_FILES if dsp else ())
    return {name: _runtime_source(name) for name in names}


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("mcu_effnet", "firmware_templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _q(t: Tensor) -> tuple[float, int]:
    """Per-tensor (scale as the float32 it is stored as, zero point)."""
    return float(np.float32(t.scale[0])), int(t.zero_point[0])


def _shape4(shape: tuple[int, ...], what: str) -> list[int]:
    if len(shape) > 4:
        raise UserError(f"{what}: tensors of rank {len(shape)} are not supported (at most 4)")
    return [1] * (4 - len(shape)) + [int(d) for d in shape]


def _elements(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


class _Builder:
    """Collects the arrays, parameter structs and calls of one graph."""

    def __init__(self, graph: Graph, plan: ArenaPlan, dsp: bool = False):
        self.dsp = dsp
        self.graph = graph
        self.plan = plan
        self.arrays: list[dict[str, Any]] = []
        self.structs: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.weights_bytes = 0
        self._names: set[str] = set()
        self._const_tensor_arrays: dict[int, str] = {}

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
                "body": c_array_body(values.astype(np.int64)),
                "comment": c_comment(comment),
                "public": public,
            }
        )
        self.weights_bytes += values.size * (1 if ctype == "int8_t" else 4)
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
                if t.dtype != "int8":
                    raise UserError(
                        f"constant operand '{t.name}' is {t.dtype}; only int8 constants can be operands"
                    )
                self._const_tensor_arrays[tensor] = self.array(
                    f"const_{t.name}",
                    "int8_t",
                    t.data,
                    f"constant operand {t.name} {list(t.shape)}",
                    public=True,
                )
            return {"kind": "name", "name": self._const_tensor_arrays[tensor]}
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


# ---- per-op parameter derivation -----------------------------------------------------------


def _act_range(op: Op, out: Tensor) -> tuple[int, int]:
    from mcu_effnet.sim.requantize import activation_range

    scale, zp = _q(out)
    try:
        return activation_range(op.attrs.get("fused_activation_function", "NONE"), scale, zp)
    except ValueError as exc:
        raise UserError(f"op {op.index} {op.kind}: {exc}") from None


def _bias(graph: Graph, op: Op) -> Tensor | None:
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        return graph.tensors[op.inputs[2]]
    return None


def _folded_bias(graph: Graph, op: Op, channels: int, weight_sums: np.ndarray, in_zp: int) -> np.ndarray:
    """bias + in_offset * (sum of each output channel's weights), in int32.

    The kernels then sum x * w alone inside the input and subtract in_offset * w for padding
    taps: the accumulator TFLite Micro computes, bit for bit (int32 arithmetic is exact here;
    a sum that would leave int32 is refused rather than wrapped).
    """
    bias_t = _bias(graph, op)
    bias = np.zeros(channels, np.int64) if bias_t is None else bias_t.data.astype(np.int64).reshape(-1)
    folded = bias + (-int(in_zp)) * weight_sums.astype(np.int64)
    if folded.min(initial=0) < -(2**31) or folded.max(initial=0) > 2**31 - 1:
        raise UserError(f"op {op.index} {op.kind}: bias plus input offset times the weights overflows int32")
    return folded


def _conv(b: _Builder, op: Op) -> None:
    from mcu_effnet.sim.requantize import conv_multipliers

    g = b.graph
    x, w, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    n, h, wd, c = x.shape
    _, oh, ow, oc = y.shape
    kh, kw = (w.shape[1], w.shape[2])
    a = op.attrs
    sh, sw = int(a.get("stride_h", 1)), int(a.get("stride_w", 1))
    dh, dw = int(a.get("dilation_h_factor", 1)), int(a.get("dilation_w_factor", 1))
    padding = a.get("padding", "SAME")
    if (conv_output_size(h, kh, sh, dh, padding), conv_output_size(wd, kw, sw, dw, padding)) != (oh, ow):
        raise UserError(
            f"op {op.index} {op.kind}: output shape {list(y.shape)} does not follow from the input"
        )
    pad_top = same_padding(h, kh, sh, dh, oh) if padding == "SAME" else 0
    pad_left = same_padding(wd, kw, sw, dw, ow) if padding == "SAME" else 0
    in_scale, in_zp = _q(x)
    out_scale, out_zp = _q(y)
    w_scales = np.broadcast_to(np.asarray(w.scale, np.float32), (oc,))
    multiplier, shift = conv_multipliers(in_scale, w_scales, out_scale)
    lo, hi = _act_range(op, y)
    tag = f"op{op.index}"
    bias = _bias(g, op)
    w_int = w.data.astype(np.int64)
    sums = w_int.sum(axis=(0, 1, 2)) if depthwise else w_int.reshape(oc, -1).sum(axis=1)
    folded = _folded_bias(g, op, oc, sums, in_zp)
    bias_note = f"{bias.name} {list(bias.shape)}" if bias else "no bias"
    layout = None
    if b.dsp and not depthwise and kh == 1 and kw == 1:  # any stride; a 1x1 window is never padded
        layout = dsp_pointwise.pointwise_layout(dsp_pointwise.CONV_KERNEL, w.data, folded, multiplier, shift)
    if b.dsp and (depthwise or kh * kw > 1):
        own_bias = np.zeros(oc, np.int64) if bias is None else bias.data.astype(np.int64).reshape(-1)
        if depthwise:
            layout = dsp_layout.depthwise_layout(w.data, own_bias, oc // c, shift, -in_zp)
        else:
            layout = dsp_layout.conv_layout(w.data, own_bias, shift, -in_zp)
    if layout is not None:
        weights = "(const int8_t *)" + b.array(
            f"{tag}_weights", "int32_t", layout.weights, f"{w.name} {list(w.shape)}: {layout.note}"
        )
        bias_array = b.array(
            f"{tag}_bias", "int32_t", layout.bias, f"{bias_note}, as {layout.kernel} takes it"
        )
    else:
        weights = b.array(f"{tag}_weights", "int8_t", w.data, f"{w.name} {list(w.shape)}")
        bias_array = b.array(f"{tag}_bias", "int32_t", folded, f"{bias_note} + input offset x weight sums")
    fields = dict(
        batches=n, in_h=h, in_w=wd, in_c=c, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw,
        stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw, pad_top=pad_top, pad_left=pad_left,
        depth_multiplier=oc // c if depthwise else 1, in_offset=-in_zp, out_offset=out_zp,
        act_min=lo, act_max=hi, weights=weights, bias=bias_array,
        multiplier=b.array(f"{tag}_multiplier", "int32_t", multiplier, "per-channel multipliers (Q0.31)")
        if layout is None or layout.shift is not None
        else "NULL",  # in the layout's records
        shift=b.array(f"{tag}_shift", "int32_t", shift, "per-channel shifts")
        if layout is None
        else b.array(f"{tag}_shift", "int32_t", layout.shift, f"per-channel shifts, as {layout.kernel} takes them")
        if layout.shift is not None
        else "NULL",
    )  # fmt: skip
    params = b.struct(op, "ek_conv_params", fields)
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
    kernel = layout.kernel if layout else ("ek_depthwise_conv2d" if depthwise else "ek_conv2d")
    b.call(op, kernel, params, [op.inputs[0]])


def _fully_connected(b: _Builder, op: Op) -> None:
    from mcu_effnet.sim.requantize import conv_multipliers, fc_multiplier_per_tensor

    g = b.graph
    x, w, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    units, depth = int(w.shape[0]), int(w.shape[1])
    in_scale, in_zp = _q(x)
    out_scale, out_zp = _q(y)
    if w.per_channel:
        multiplier, shift = conv_multipliers(in_scale, w.scale, out_scale)
    else:
        m, s = fc_multiplier_per_tensor(in_scale, float(w.scale[0]), out_scale)
        multiplier, shift = np.array([m]), np.array([s])
    lo, hi = _act_range(op, y)
    tag = f"op{op.index}"
    bias = _bias(g, op)
    folded = _folded_bias(g, op, units, w.data.astype(np.int64).sum(axis=1), in_zp)
    bias_note = f"{bias.name} {list(bias.shape)}" if bias else "no bias"
    kernel, weights, layout = "ek_fully_connected", None, None
    if b.dsp:
        layout = dsp_pointwise.pointwise_layout(dsp_pointwise.FC_KERNEL, w.data, folded, multiplier, shift)
        kernel = layout.kernel
        weights = "(const int8_t *)" + b.array(
            f"{tag}_weights", "int32_t", layout.weights, f"{w.name} {list(w.shape)}: {layout.note}"
        )
    fields = dict(
        rows=_elements(x.shape) // depth, depth=depth, units=units, in_offset=-in_zp, out_offset=out_zp,
        act_min=lo, act_max=hi, per_channel=1 if w.per_channel else 0,
        weights=weights or b.array(f"{tag}_weights", "int8_t", w.data, f"{w.name} {list(w.shape)}"),
        bias=b.array(f"{tag}_bias", "int32_t", folded, f"{bias_note} + input offset x weight sums")
        if layout is None
        else b.array(f"{tag}_records", "int32_t", layout.bias, f"{bias_note}: records for {kernel}"),
        multiplier=b.array(f"{tag}_multiplier", "int32_t", multiplier, "multipliers (Q0.31)") if layout is None else "NULL",
        shift=b.array(f"{tag}_shift", "int32_t", shift, "shifts") if layout is None else "NULL",
    )  # fmt: skip
    b.call(op, kernel, b.struct(op, "ek_fc_params", fields), [op.inputs[0]])


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
    from mcu_effnet.sim.requantize import add_params, quantize_multiplier

    g = b.graph
    t1, t2, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    what = f"op {op.index} {op.kind}"
    out4 = _shape4(y.shape, what)
    s1, z1 = _q(t1)
    s2, z2 = _q(t2)
    so, zo = _q(y)
    lo, hi = _act_range(op, y)
    fields: dict[str, Any] = dict(
        out_dims=out4,
        in1_strides=_broadcast_strides(t1.shape, out4, what),
        in2_strides=_broadcast_strides(t2.shape, out4, what),
    )
    if op.kind == "ADD":
        p = add_params(s1, z1, s2, z2, so, zo)
        fields.update(
            in1_offset=p.input1_offset, in2_offset=p.input2_offset, out_offset=p.output_offset,
            left_shift=p.left_shift, in1_multiplier=p.input1_multiplier, in1_shift=p.input1_shift,
            in2_multiplier=p.input2_multiplier, in2_shift=p.input2_shift,
            out_multiplier=p.output_multiplier, out_shift=p.output_shift,
        )  # fmt: skip
    else:
        m, s = quantize_multiplier(np.float64(s1) * np.float64(s2) / np.float64(so))
        fields.update(
            in1_offset=-z1, in2_offset=-z2, out_offset=zo, left_shift=0, in1_multiplier=0, in1_shift=0,
            in2_multiplier=0, in2_shift=0, out_multiplier=int(m), out_shift=int(s),
        )  # fmt: skip
    fields.update(act_min=lo, act_max=hi)
    params = b.struct(op, "ek_binary_params", fields)
    b.call(op, "ek_add" if op.kind == "ADD" else "ek_mul", params, [op.inputs[0], op.inputs[1]])


def _mean(b: _Builder, op: Op) -> None:
    from mcu_effnet.sim.kernels.mean import MeanParams, resolve_axes

    g = b.graph
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    axes_t = g.tensors[op.inputs[1]]
    if axes_t.data is None:
        raise UserError(f"op {op.index} MEAN: the axes input must be a constant tensor")
    shape = tuple(int(d) for d in x.shape)
    try:
        axes = sorted(resolve_axes(axes_t.data, len(shape)))
    except ValueError as exc:
        raise UserError(f"op {op.index} MEAN: {exc}") from None
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise UserError(
            f"op {op.index} MEAN: axes {axes} are not contiguous; the engine reduces one run of axes"
        )
    outer = _elements(shape[: axes[0]])
    reduce = _elements(shape[axes[0] : axes[-1] + 1])
    inner = _elements(shape[axes[-1] + 1 :])
    in_scale, in_zp = _q(x)
    out_scale, out_zp = _q(y)
    p = MeanParams.from_quantization(in_scale, in_zp, out_scale, out_zp, reduce)
    fields = dict(
        outer=outer, reduce=reduce, inner=inner, in_zero_point=p.input_zero_point,
        out_zero_point=p.output_zero_point, multiplier=p.multiplier, shift=p.shift,
    )  # fmt: skip
    b.call(op, "ek_mean", b.struct(op, "ek_mean_params", fields), [op.inputs[0]])


def _pool(b: _Builder, op: Op) -> None:
    g = b.graph
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    n, h, w, c = x.shape
    _, oh, ow, _ = y.shape
    a = op.attrs
    fh, fw = int(a["filter_height"]), int(a["filter_width"])
    sh, sw = int(a.get("stride_h", 1)), int(a.get("stride_w", 1))
    padding = a.get("padding", "VALID")
    lo, hi = _act_range(op, y)
    fields = dict(
        batches=n, in_h=h, in_w=w, channels=c, out_h=oh, out_w=ow, f_h=fh, f_w=fw, stride_h=sh, stride_w=sw,
        pad_top=same_padding(h, fh, sh, 1, oh) if padding == "SAME" else 0,
        pad_left=same_padding(w, fw, sw, 1, ow) if padding == "SAME" else 0,
        act_min=lo, act_max=hi,
    )  # fmt: skip
    kernel = "ek_average_pool2d" if op.kind == "AVERAGE_POOL_2D" else "ek_max_pool2d"
    b.call(op, kernel, b.struct(op, "ek_pool_params", fields), [op.inputs[0]])


def _requantize(b: _Builder, op: Op) -> None:
    from mcu_effnet.sim.requantize import quantize_multiplier

    g = b.graph
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    in_scale, in_zp = _q(x)
    out_scale, out_zp = _q(y)
    if op.kind == "RELU":
        # CalculateReluOpData divides the scales in float32, then widens to double.
        m, s = quantize_multiplier(np.float64(np.float32(in_scale) / np.float32(out_scale)))
        lo = max(-128, out_zp)
    else:  # QUANTIZE int8 -> int8: the ratio in double
        m, s = quantize_multiplier(np.float64(in_scale) / np.float64(out_scale))
        lo = -128
    fields = dict(
        size=_elements(x.shape), in_zero_point=in_zp, out_zero_point=out_zp, multiplier=int(m), shift=int(s),
        act_min=lo, act_max=127,
    )  # fmt: skip
    b.call(op, "ek_requantize", b.struct(op, "ek_requantize_params", fields), [op.inputs[0]])


def _relu6(b: _Builder, op: Op) -> None:
    from mcu_effnet.sim.requantize import quantize_scalar_f32

    x = b.graph.tensors[op.inputs[0]]
    scale, zp = _q(x)
    six = min(127, max(-128, quantize_scalar_f32(6.0, scale, zp)))
    fields = dict(size=_elements(x.shape), lower=zp, upper=six)
    b.call(op, "ek_relu6", b.struct(op, "ek_clamp_params", fields), [op.inputs[0]])


def _logistic(b: _Builder, op: Op) -> None:
    from mcu_effnet.sim.kernels.logistic import LogisticParams

    x, y = b.graph.tensors[op.inputs[0]], b.graph.tensors[op.outputs[0]]
    if _q(y)[1] != -128:
        raise UserError(
            f"op {op.index} LOGISTIC: output zero point must be -128 (TFLite Micro refuses {_q(y)[1]})"
        )
    scale, zp = _q(x)
    p = LogisticParams.from_scale(scale, zp)
    fields = dict(
        size=_elements(x.shape), in_zero_point=p.input_zero_point, in_multiplier=p.input_multiplier,
        in_left_shift=p.input_left_shift, in_range_radius=p.input_range_radius,
    )  # fmt: skip
    b.call(op, "ek_logistic", b.struct(op, "ek_logistic_params", fields), [op.inputs[0]])


def _hard_swish(b: _Builder, op: Op) -> None:
    from mcu_effnet.sim.kernels.hard_swish import HardSwishParams

    x, y = b.graph.tensors[op.inputs[0]], b.graph.tensors[op.outputs[0]]
    (si, zi), (so, zo) = _q(x), _q(y)
    try:
        p = HardSwishParams.from_quantization(si, zi, so, zo)
    except ValueError as exc:
        raise UserError(f"op {op.index} HARD_SWISH: {exc} (TFLite Micro refuses it)") from None
    fields = dict(
        size=_elements(x.shape), in_zero_point=p.input_zero_point, out_zero_point=p.output_zero_point,
        out_multiplier=p.output_multiplier, out_exponent=p.output_exponent,
        reluish_multiplier=p.reluish_multiplier, reluish_exponent=p.reluish_exponent,
    )  # fmt: skip
    b.call(op, "ek_hard_swish", b.struct(op, "ek_hard_swish_params", fields), [op.inputs[0]])


def _softmax(b: _Builder, op: Op) -> None:
    from mcu_effnet.sim.kernels.softmax import SoftmaxParams

    x, y = b.graph.tensors[op.inputs[0]], b.graph.tensors[op.outputs[0]]
    so, zo = _q(y)
    if zo != -128 or np.float32(so) != np.float32(1.0 / 256):
        raise UserError(f"op {op.index} SOFTMAX: int8 output must have scale 1/256 and zero point -128")
    try:
        p = SoftmaxParams.from_scale(float(op.attrs.get("beta", 1.0)), _q(x)[0])
    except ValueError as exc:
        raise UserError(f"op {op.index} SOFTMAX: {exc}") from None
    depth = int(x.shape[-1])
    fields = dict(
        rows=_elements(x.shape) // depth, depth=depth, in_multiplier=p.input_multiplier,
        in_left_shift=p.input_left_shift, diff_min=p.diff_min,
    )  # fmt: skip
    b.call(op, "ek_softmax", b.struct(op, "ek_softmax_params", fields), [op.inputs[0]])


def _lookup(b: _Builder, op: Op) -> None:
    x = b.graph.tensors[op.inputs[0]]
    first, second = op.attrs["fused_ops"]
    table = b.array(
        f"op{op.index}_table",
        "int8_t",
        op.attrs["table"],
        f"SiLU of ops {first}, {second}: output per input value",
    )
    b.call(
        op,
        "ek_lookup",
        b.struct(op, "ek_lookup_params", dict(size=_elements(x.shape), table=table)),
        [x.index],
    )


def _pad(b: _Builder, op: Op) -> None:
    g = b.graph
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    pads_t = g.tensors[op.inputs[1]]
    if pads_t.data is None:
        raise UserError(f"op {op.index} PAD: the paddings input must be a constant tensor")
    what = f"op {op.index} PAD"
    pads = np.asarray(pads_t.data, np.int64).reshape(-1, 2)
    extra = 4 - len(x.shape)
    before = [0] * extra + [int(p) for p in pads[:, 0]]
    after = [0] * extra + [int(p) for p in pads[:, 1]]
    fields = dict(in_dims=_shape4(x.shape, what), before=before, after=after, pad_value=_q(y)[1])
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
    outer = _elements(y.shape[:axis])
    sizes = [_elements(g.tensors[t].shape[axis:]) for t in op.inputs]
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
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "PAD": _pad,
    "RESHAPE": _reshape,
    "SOFTMAX": _softmax,
    "LOGISTIC": _logistic,
    "HARD_SWISH": _hard_swish,
    "RELU": _requantize,
    "RELU6": _relu6,
    "QUANTIZE": _requantize,
    "CONCATENATION": _concatenation,
    LOOKUP: _lookup,  # the engine's own: LOGISTIC -> MUL fused (mcu_effnet.graph.fuse)
}
assert set(_HANDLERS) == set(SUPPORTED_OPS) | {LOOKUP}


def _check(graph: Graph) -> None:
    label = graph.source or graph.name or "model"
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UserError(
            f"{label}: the native engine runs models with one input and one output "
            f"(this one has {len(graph.inputs)} and {len(graph.outputs)})"
        )
    for op in graph.ops:
        if op.kind not in _HANDLERS:
            raise UserError(
                f"{label}: op {op.index} {op.kind} is not supported (supported: {', '.join(SUPPORTED_OPS)})"
            )
        for t in (*op.inputs[:1], *op.outputs):
            tensor = graph.tensors[t]
            if tensor.dtype != "int8":
                raise UserError(
                    f"{label}: op {op.index} {op.kind}: tensor '{tensor.name}' is {tensor.dtype}, expected int8"
                )
    for t in (*graph.inputs, *graph.outputs):
        if graph.tensors[t].dtype != "int8":
            raise UserError(
                f"{label}: model input/output '{graph.tensors[t].name}' is {graph.tensors[t].dtype}, expected int8"
            )


def _layers(graph: Graph, plan: ArenaPlan) -> list[dict[str, Any]]:
    from mcu_effnet.graph.stats import op_macs

    return [
        {
            "step": pos,
            "index": op.index,
            "op": op.kind,
            "output_shape": [int(d) for d in graph.tensors[op.outputs[0]].shape],
            "macs": int(op_macs(graph, op)),
            "live_bytes": int(plan.live_bytes[pos]),
        }
        for pos, op in enumerate(ordered_ops(graph, plan.order or None))
    ]


def generate_engine(
    graph: Graph, plan: ArenaPlan | None = None, fuse: bool | None = None, dsp: bool = False
) -> EngineSources:
    """C sources of the native int8 engine for ``graph`` (one input, one output), its ops called
    in ``plan.order`` (default plan: ``plan_memory``, the order that lowers the arena).

    ``fuse`` (default: when no plan is given) first turns each SiLU pair LOGISTIC -> MUL into one
    table lookup (``mcu_effnet.graph.fuse``); a given plan must be for the graph as fused or not.
    ``dsp``: the target core has the DSP extension (Cortex-M4, M7, M33): ops the DSP kernels
    cover get them, with their weights laid out for them here; the rest keep the plain kernels.
    False gives the portable C99 engine (host builds, Cortex-M0+ / M3).
    """
    _check(graph)
    fusions: list[Fusion] = []
    if (plan is None) if fuse is None else fuse:
        graph, fusions = fuse_silu(graph)
    plan = plan if plan is not None else plan_memory(graph)
    b = _Builder(graph, plan, dsp)
    for op in ordered_ops(graph, plan.order or None):
        _HANDLERS[op.kind](b, op)

    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    in_scale, in_zp = _q(tin)
    out_scale, out_zp = _q(tout)
    used = {p["kind"] for c in b.calls for p in (*c["inputs"], c["output"])}
    if plan.io_in_arena:
        used |= {"input", "output"}  # copied in and out
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
            output_shape=list(tout.shape),
            input_scale=f"{in_scale:.9g}",
            output_scale=f"{out_scale:.9g}",
            input_zero_point=in_zp,
            output_zero_point=out_zp,
            input_size=tin.nbytes,
            output_size=tout.nbytes,
            io_in_arena=plan.io_in_arena,
            dsp=dsp,
        ),
        "model_data.h": env.get_template("engine/model_data.h.j2").render(
            **common, arrays=b.arrays, structs=b.structs
        ),
        "model_data.c": env.get_template("engine/model_data.c.j2").render(
            **common, arrays=b.arrays, structs=b.structs
        ),
        "model.c": env.get_template("engine/model.c.j2").render(
            **common,
            calls=b.calls,
            plan_table=c_comment_lines(plan.describe(graph)),
            uses_input="input" in used,
            uses_output="output" in used,
            io_in_arena=plan.io_in_arena,
            input_place=b.ptr(graph.inputs[0]),
            output_place=b.ptr(graph.outputs[0]),
            dsp_headers=[f for f in DSP_RUNTIME_FILES if f.endswith(".h")] if dsp else [],
        ),
    }
    files.update(runtime_sources(dsp))
    arena_in_use = any(buf.location == ARENA for buf in plan.buffers)
    assert arena_in_use or plan.arena_bytes == 0
    return EngineSources(
        files=files,
        plan=plan,
        arena_bytes=plan.arena_bytes,
        weights_bytes=b.weights_bytes,
        layers=_layers(graph, plan),
        input_bytes=tin.nbytes,
        output_bytes=tout.nbytes,
        model_ram_bytes=plan.arena_bytes + (0 if plan.io_in_arena else tin.nbytes + tout.nbytes),
        graph=graph,
        fusions=fusions,
    )
