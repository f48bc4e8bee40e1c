"""The engine's handlers for 16x8 ops (int16 activations): one Params into one C struct of
``ek_int16.h`` and the call of its int16 kernel.

``generate_engine`` sends an op here when it reads or writes an int16 activation
(``mcu_effnet.ops.int16.is_16x8``); everything else about the engine (plan, arena, model API)
is shared with the int8 ops. The int16 kernels are the plain C99 ones on every core: a DSP
engine keeps its SIMD kernels for its int8 ops only. Pointers into the arena are cast to the
kernel's element type (``ctype``), which ``model.c.j2`` writes out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from mcu_effnet.codegen.engine_math import quantized_arrays, transpose_conv_geometry
from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.graph.planner import ARENA
from mcu_effnet.ops import int16, logistic16, quantize_float
from mcu_effnet.ops.common import elements, optional_input
from mcu_effnet.ops.registry import prepare
from mcu_effnet.ops.transpose_conv import INPUT, WEIGHTS

if TYPE_CHECKING:
    from mcu_effnet.codegen.engine import _Builder

HEADER = "ek_int16.h"
CTYPES = {"int8": "int8_t", "int16": "int16_t"}


def _pointers(b: _Builder, tensors: list[int]) -> list[dict[str, Any]]:
    return [{**b.ptr(t), "ctype": CTYPES[b.graph.tensors[t].dtype]} for t in tensors]


def _call(b: _Builder, op: Op, kernel: str, params: str, inputs: list[int]) -> None:
    (output,) = _pointers(b, op.outputs)
    b.call(op, kernel, params, inputs, output_ptr=output)
    b.calls[-1]["inputs"] = _pointers(b, inputs)


def _mean(b: _Builder, op: Op) -> None:
    from mcu_effnet.codegen.engine import _mean as int8_mean

    int8_mean(b, op)  # the same struct and geometry; only the kernel and pointer types differ
    call = b.calls[-1]
    call["kernel"] = "ek_mean_s16"
    call["inputs"] = _pointers(b, op.inputs[:1])
    call["output"] = _pointers(b, op.outputs)[0]


def _softmax(b: _Builder, op: Op) -> None:
    depth = int(b.graph.tensors[op.inputs[0]].shape[-1])
    p = prepare(b.graph, op)
    tag = f"op{op.index}"
    fields = dict(
        rows=elements(b.graph.tensors[op.inputs[0]].shape) // depth,
        depth=depth,
        in_multiplier=p.in_multiplier,
        in_left_shift=p.in_left_shift,
        exp_lut=b.array(f"{tag}_exp_lut", "int16_t", p.exp_lut, "exp on [-10, 0] (Prepare's table)"),
        one_over_one_plus_x_lut=b.array(
            f"{tag}_reciprocal_lut",
            "int16_t",
            p.one_over_one_plus_x_lut,
            "1 / (1 + x) on [0, 1] (Prepare's table)",
        ),
    )
    _call(b, op, "ek_softmax_s16", b.struct(op, "ek_softmax16_params", fields), [op.inputs[0]])


def _sigmoid_table(b: _Builder, op: Op) -> None:
    p = prepare(b.graph, op)
    fields = dict(
        size=elements(b.graph.tensors[op.inputs[0]].shape),
        in_multiplier=p.in_multiplier,
        in_left_shift=p.in_left_shift,
        table=b.array(
            f"op{op.index}_sigmoid", "uint16_t", logistic16.sigmoid_table(), "sigmoid(i / 24), 0.16"
        ),
    )
    kernel = "ek_logistic_s16" if op.kind == "LOGISTIC" else "ek_tanh_s16"  # one table, one struct
    _call(b, op, kernel, b.struct(op, "ek_logistic16_params", fields), [op.inputs[0]])


def _bias64(op: Op, graph: Graph, channels: int) -> np.ndarray:
    bias = optional_input(graph, op, 2)
    return np.zeros(channels, np.int64) if bias is None else bias.data.astype(np.int64).reshape(-1)


def _conv(b: _Builder, op: Op) -> None:
    g = b.graph
    x, w, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    p = prepare(g, op)
    n, h, wd, c = x.shape
    _, oh, ow, oc = y.shape
    fields = dict(
        batches=n, in_h=h, in_w=wd, in_c=c, out_h=oh, out_w=ow, out_c=oc, k_h=w.shape[1], k_w=w.shape[2],
        stride_h=p.stride_h, stride_w=p.stride_w, dil_h=p.dil_h, dil_w=p.dil_w, pad_top=p.pad_top,
        pad_left=p.pad_left, depth_multiplier=p.depth_multiplier, act_min=p.act_min, act_max=p.act_max,
        wide_accumulator=int(int16.accumulates_in_int64(g, op)),
        **quantized_arrays(b, op, w, _bias64(op, g, oc), "int64_t", "bias (int64; zeros without one)", p),
    )  # fmt: skip
    kernel = "ek_depthwise_conv2d_s16" if depthwise else "ek_conv2d_s16"
    _call(b, op, kernel, b.struct(op, "ek_conv16_params", fields), [op.inputs[0]])


def _fully_connected(b: _Builder, op: Op) -> None:
    g = b.graph
    x, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    units, depth = int(w.shape[0]), int(w.shape[1])
    p = prepare(g, op)
    fields = dict(
        rows=elements(x.shape) // depth, depth=depth, units=units, act_min=p.act_min, act_max=p.act_max,
        per_channel=int(p.per_channel), wide_accumulator=int(int16.accumulates_in_int64(g, op)),
        **quantized_arrays(b, op, w, _bias64(op, g, units), "int64_t", "bias (int64; zeros without one)", p, per=""),
    )  # fmt: skip
    _call(b, op, "ek_fully_connected_s16", b.struct(op, "ek_fc16_params", fields), [op.inputs[0]])


_BINARY_KERNELS = {"ADD": "ek_add_s16", "SUB": "ek_sub_s16", "MUL": "ek_mul_s16"}


def _binary(b: _Builder, op: Op) -> None:
    from mcu_effnet.codegen.engine import _broadcast_strides, _shape4

    g = b.graph
    t1, t2, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    what = f"op {op.index} {op.kind}"
    out4 = _shape4(y.shape, what)
    fields: dict[str, Any] = dict(
        out_dims=out4,
        in1_strides=_broadcast_strides(t1.shape, out4, what),
        in2_strides=_broadcast_strides(t2.shape, out4, what),
        **asdict(prepare(g, op)),
    )
    _call(b, op, _BINARY_KERNELS[op.kind], b.struct(op, "ek_binary_params", fields), op.inputs[:2])


def _leaky_relu(b: _Builder, op: Op) -> None:
    fields = dict(size=elements(b.graph.tensors[op.inputs[0]].shape), **asdict(prepare(b.graph, op)))
    _call(b, op, "ek_leaky_relu_s16", b.struct(op, "ek_leaky_relu_params", fields), [op.inputs[0]])


def _transpose_conv(b: _Builder, op: Op) -> None:
    g = b.graph
    x, w, y = (g.tensors[t] for t in (op.inputs[INPUT], op.inputs[WEIGHTS], op.outputs[0]))
    p = prepare(g, op)
    fields = dict(
        **transpose_conv_geometry(x, w, y, p),
        act_min=p.act_min, act_max=p.act_max,
        **quantized_arrays(b, op, w, p.bias, "int64_t", "bias (int64; zeros without one)", p),
    )  # fmt: skip
    params = b.struct(op, "ek_transpose_conv16_params", fields)
    _call(b, op, "ek_transpose_conv_s16", params, [op.inputs[INPUT]])
    # the int64 accumulators: the planner's scratch buffer, between the input and the output
    scratch = b.plan.buffers[b.plan.scratch[op.index]]
    b.calls[-1]["inputs"].append({"kind": ARENA, "offset": scratch.offset})


def _quantize(b: _Builder, op: Op) -> None:
    g = b.graph
    src, dst = g.tensors[op.inputs[0]].dtype, g.tensors[op.outputs[0]].dtype
    fields = dict(size=elements(g.tensors[op.inputs[0]].shape), **asdict(prepare(g, op)))
    kernel = f"ek_requantize_s{src[3:]}_s{dst[3:]}"
    _call(b, op, kernel, b.struct(op, "ek_requantize_params", fields), [op.inputs[0]])


def _pad(b: _Builder, op: Op) -> None:
    from mcu_effnet.codegen.engine import _shape4

    x = b.graph.tensors[op.inputs[0]]
    p = prepare(b.graph, op)
    extra = [(0, 0)] * (4 - len(x.shape))
    fields = dict(
        in_dims=_shape4(x.shape, f"op {op.index} PAD"),
        before=[before for before, _ in extra + list(p.paddings)],
        after=[after for _, after in extra + list(p.paddings)],
        pad_value=p.pad_value,
    )
    _call(b, op, "ek_pad_s16", b.struct(op, "ek_pad_params", fields), [op.inputs[0]])


# Op kind -> handler for its 16x8 form. An op of int16.INT16_KINDS missing here is refused by
# the engine in one line (the simulator may still run it).
HANDLERS: dict[str, Callable[[_Builder, Op], None]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _conv,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _binary,
    "SUB": _binary,
    "MUL": _binary,
    "LEAKY_RELU": _leaky_relu,
    "TRANSPOSE_CONV": _transpose_conv,
    "QUANTIZE": _quantize,
    "PAD": _pad,
    "MEAN": _mean,
    "SOFTMAX": _softmax,
    "LOGISTIC": _sigmoid_table,
    "TANH": _sigmoid_table,
}


# Ops whose int8 handlers move elements of the tensors' own size (no arithmetic): they serve
# int16 tensors as they are.
BYTE_MOVING = frozenset(
    "RESHAPE CONCATENATION SQUEEZE EXPAND_DIMS TRANSPOSE SLICE STRIDED_SLICE PACK UNPACK SPLIT SPLIT_V".split()
)


def handler(graph: Graph, op: Op) -> Callable[[_Builder, Op], None] | None:
    """The 16x8 handler of ``op`` (None: an int8 op, or one that only moves elements,
    ``BYTE_MOVING``, which keeps the engine's own handler)."""
    if not int16.is_16x8(graph, op) or op.kind in BYTE_MOVING or quantize_float.is_float_quantize(graph, op):
        return None  # a float32 input's QUANTIZE: the engine's own handler, for int8 and int16
    found = HANDLERS.get(op.kind)
    if found is None:
        raise UserError(f"op {op.index} {op.kind}: the native engine has no int16 kernel for it")
    return found
