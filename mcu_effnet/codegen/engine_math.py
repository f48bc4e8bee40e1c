"""Engine handlers of the arithmetic ops (SUB, MAXIMUM, MINIMUM, PRELU, LEAKY_RELU, TANH).

Each writes the op's Params (``mcu_effnet.ops.arithmetic`` / ``unary_math``) into its C struct
(``ek_kernels.h``) and emits the call; ``codegen.engine`` merges ``HANDLERS`` into its table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Op
from mcu_effnet.graph.planner import ARENA
from mcu_effnet.ops.common import elements
from mcu_effnet.ops.registry import prepare
from mcu_effnet.ops.transpose_conv import INPUT, WEIGHTS

if TYPE_CHECKING:
    from mcu_effnet.codegen.engine import _Builder


def _broadcast(b: _Builder, op: Op) -> dict[str, Any]:
    """The output's four dimensions and each input's strides over them (0 where it broadcasts)."""
    from mcu_effnet.codegen.engine import _broadcast_strides, _shape4  # engine imports this module

    g = b.graph
    what = f"op {op.index} {op.kind}"
    out4 = _shape4(g.tensors[op.outputs[0]].shape, what)
    first, second = (_broadcast_strides(g.tensors[t].shape, out4, what) for t in op.inputs[:2])
    return {"out_dims": out4, "first": first, "second": second}


def _sub(b: _Builder, op: Op) -> None:
    shape = _broadcast(b, op)
    fields = dict(
        out_dims=shape["out_dims"],
        in1_strides=shape["first"],
        in2_strides=shape["second"],
        **asdict(prepare(b.graph, op)),
    )
    b.call(op, "ek_sub", b.struct(op, "ek_binary_params", fields), list(op.inputs[:2]))


def _min_max(b: _Builder, op: Op) -> None:
    shape = _broadcast(b, op)
    fields = dict(out_dims=shape["out_dims"], in1_strides=shape["first"], in2_strides=shape["second"])
    kernel = "ek_maximum" if op.kind == "MAXIMUM" else "ek_minimum"
    b.call(op, kernel, b.struct(op, "ek_broadcast_params", fields), list(op.inputs[:2]))


def _prelu(b: _Builder, op: Op) -> None:
    shape = _broadcast(b, op)
    fields = dict(
        out_dims=shape["out_dims"],
        in_strides=shape["first"],
        alpha_strides=shape["second"],
        **asdict(prepare(b.graph, op)),
    )
    b.call(op, "ek_prelu", b.struct(op, "ek_prelu_params", fields), list(op.inputs[:2]))


def _elementwise(kernel: str, struct: str) -> Callable[[_Builder, Op], None]:
    def handle(b: _Builder, op: Op) -> None:
        size = elements(b.graph.tensors[op.inputs[0]].shape)
        fields = dict(size=size, **asdict(prepare(b.graph, op)))
        b.call(op, kernel, b.struct(op, struct, fields), [op.inputs[0]])

    return handle


def _reduce_max(b: _Builder, op: Op) -> None:
    shape = tuple(int(d) for d in b.graph.tensors[op.inputs[0]].shape)
    axes = sorted(prepare(b.graph, op).axes)
    if axes and axes != list(range(axes[0], axes[-1] + 1)):
        raise UserError(
            f"op {op.index} REDUCE_MAX: axes {axes} are not contiguous; the engine reduces one run of axes"
        )
    first, last = (axes[0], axes[-1]) if axes else (len(shape), len(shape) - 1)
    fields = dict(
        outer=elements(shape[:first]),
        reduce=elements(shape[first : last + 1]),
        inner=elements(shape[last + 1 :]),
    )
    b.call(op, "ek_reduce_max", b.struct(op, "ek_reduce_params", fields), [op.inputs[0]])


def transpose_conv_geometry(x: Any, w: Any, y: Any, p: Any) -> dict[str, int]:
    """The shape, stride and padding fields of both TRANSPOSE_CONV structs (int8 and 16x8)."""
    return dict(
        batches=x.shape[0], in_h=x.shape[1], in_w=x.shape[2], in_c=x.shape[3],
        out_h=y.shape[1], out_w=y.shape[2], out_c=y.shape[3], k_h=w.shape[1], k_w=w.shape[2],
        stride_h=p.stride_h, stride_w=p.stride_w, pad_top=p.pad_top, pad_left=p.pad_left,
    )  # fmt: skip


def quantized_arrays(
    b: _Builder, op: Op, w: Any, bias: Any, bias_ctype: str, bias_note: str, p: Any, per: str = "per-channel "
) -> dict[str, str]:
    """The weights, bias, multiplier and shift arrays of a plain (not DSP-laid-out) weighted
    kernel, as its params struct names them: int8 weights as stored, requantization per
    ``per`` ("per-channel " or "" for a fully connected layer's one-or-many)."""
    tag = f"op{op.index}"
    return dict(
        weights=b.array(f"{tag}_weights", "int8_t", w.data, f"{w.name} {list(w.shape)}"),
        bias=b.array(f"{tag}_bias", bias_ctype, bias, bias_note),
        multiplier=b.array(f"{tag}_multiplier", "int32_t", p.multiplier, f"{per}multipliers (Q0.31)"),
        shift=b.array(f"{tag}_shift", "int32_t", p.shift, f"{per}shifts"),
    )


def _transpose_conv(b: _Builder, op: Op) -> None:
    g = b.graph
    x, w, y = (g.tensors[t] for t in (op.inputs[INPUT], op.inputs[WEIGHTS], op.outputs[0]))
    p = prepare(g, op)
    fields = dict(
        **transpose_conv_geometry(x, w, y, p),
        in_offset=p.in_offset, out_offset=p.out_offset, act_min=p.act_min, act_max=p.act_max,
        **quantized_arrays(b, op, w, p.bias, "int32_t", "bias (zeros without one)", p),
    )  # fmt: skip
    # DSP cores gather each output pixel's taps with SMLAD (ek_transpose_conv_dsp.c): same struct
    kernel = "ek_transpose_conv_dsp" if b.dsp else "ek_transpose_conv"
    b.call(op, kernel, b.struct(op, "ek_transpose_conv_params", fields), [op.inputs[INPUT]])
    # the int32 accumulators: the planner's scratch buffer, passed between the input and the output
    scratch = b.plan.buffers[b.plan.scratch[op.index]]
    b.calls[-1]["inputs"].append({"kind": ARENA, "offset": scratch.offset})


HANDLERS: dict[str, Callable[[_Builder, Op], None]] = {
    "SUB": _sub,
    "MAXIMUM": _min_max,
    "MINIMUM": _min_max,
    "PRELU": _prelu,
    "LEAKY_RELU": _elementwise("ek_leaky_relu", "ek_leaky_relu_params"),
    "TANH": _elementwise("ek_tanh", "ek_logistic_params"),
    "REDUCE_MAX": _reduce_max,
    "TRANSPOSE_CONV": _transpose_conv,
}
RUNTIME_FILES: tuple[str, ...] = ("ek_arithmetic.c", "ek_unary_math.c", "ek_reduce.c", "ek_transpose_conv.c")
