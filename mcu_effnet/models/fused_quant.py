"""Fused fake quantization for QAT training steps: Brevitas's numbers at a fraction of its cost.

Brevitas builds each quantizer as a tree of small script modules (scale from statistics or a
learned parameter, restrict, clamp, round, clamp, rescale), wraps every tensor in a
``QuantTensor`` and records a dozen autograd nodes per quantizer: at φ −4, 32 px that is most of
a QAT step. ``fused_fake_quant(model)`` swaps, for the length of a ``with`` block, the forward of
every Brevitas leaf of the quant model (``QuantIdentity``, ``QuantSigmoid``, the convolutions and
the classifier) for one that computes the same values with a few ``torch.autograd.Function``s
whose backward is Brevitas's straight-through gradient written out by hand:

- activations, learned scale s = max(|v|, min) / T: y = clamp(round(x / s), lo, hi) · s;
  dy/dx = 1 where the rounded value is inside [lo, hi], else 0; dy/ds = c − y/s·[inside]
  (c the clamped integer), the LSQ gradient Brevitas's autograd arrives at;
- fixed scales (the input, sigmoid outputs): the same without the scale's gradient;
- weights per output channel, s_w = max(absmax(w_c), min) / T: round and clamp both pass the
  gradient straight through, and the scale's gradient reaches the weight at the channel's
  absolute maximum (``torch.max``'s index, as Brevitas's ``AbsMax``);
- biases at s_b = s_in · s_w: int32 round and clamp (no straight-through clamp), gradients to
  the bias, the input scale and the weight scale.

The Brevitas modules keep owning every parameter and buffer, so the optimizer, checkpoints, the
EMA and export see nothing different; outside the block the model is plain Brevitas again. Only
what this module recognises is swapped (``fusable`` says why not otherwise), and only once the
activation scales are learned parameters (after calibration): statistics collection stays with
Brevitas. ``tests/test_fused_quant.py`` holds forward values, gradients and export to Brevitas's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from brevitas.core.function_wrapper import Identity as BrevitasIdentity
from brevitas.core.function_wrapper import TensorClamp, TensorClampSte
from brevitas.core.quant import IntQuant, PrescaledRestrictIntQuant, RescalingIntQuant
from brevitas.core.scaling import ConstScaling, ParameterFromRuntimeStatsScaling, StatsFromParameterScaling
from brevitas.core.stats import AbsMax
from brevitas.core.zero_point import ZeroZeroPoint
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantSigmoid
from brevitas.nn.mixin.base import QuantLayerMixin
from torch import nn

from mcu_effnet.models.forward_swap import swapped_forwards
from mcu_effnet.models.quant_model import Quantized, QuantReLU6, _value

# -- the autograd functions ------------------------------------------------------------------


class _ActQuant(torch.autograd.Function):
    """clamp(round(x / s), lo, hi) · s with Brevitas's gradients for x and a scalar s.

    ``relu6`` clamps x to [0, 6] first (``QuantReLU6``), with hardtanh's gradient (0 at the ends).
    """

    @staticmethod
    def forward(ctx, x, scale, lo: float, hi: float, relu6: bool):
        if relu6:
            x = F.relu6(x)
        y = x / scale
        q = torch.round(y)
        c = q.clamp(lo, hi)
        inside = c == q  # clamp's gradient: 1 where the rounded value lies in [lo, hi]
        # Both gradients are formed here, so the backward pass is one multiply each.
        passes = inside & (x > 0) & (x < 6) if relu6 else inside
        # d/ds [clamp(round(x/s)) · s] = c − (x/s)·[inside]: the LSQ gradient
        ctx.save_for_backward(passes, torch.where(inside, c - y, c))
        ctx.scale_shape = scale.shape
        return c.mul_(scale)

    @staticmethod
    def backward(ctx, grad):
        passes, d_scale = ctx.saved_tensors
        grad_x = torch.where(passes, grad, 0.0) if ctx.needs_input_grad[0] else None
        grad_scale = (grad * d_scale).sum().reshape(ctx.scale_shape) if ctx.needs_input_grad[1] else None
        return grad_x, grad_scale, None, None, None


class _SigmoidQuant(torch.autograd.Function):
    """clamp(round(sigmoid(x) / s), lo, hi) · s, s fixed (TFLite's LOGISTIC output)."""

    @staticmethod
    def forward(ctx, x, scale: torch.Tensor, lo: float, hi: float):
        sig = torch.sigmoid(x)
        q = torch.round(sig / scale)
        c = q.clamp(lo, hi)
        ctx.save_for_backward(torch.where(c == q, (1 - sig) * sig, 0.0))
        return c.mul_(scale)

    @staticmethod
    def backward(ctx, grad):
        (d_x,) = ctx.saved_tensors
        return grad * d_x, None, None, None


class _LearnedScale(torch.autograd.Function):
    """s = max(|v|, min) / T from a learned v, Brevitas's way: the clamp is straight-through."""

    @staticmethod
    def forward(ctx, value, low: float, threshold):
        ctx.save_for_backward(value, threshold)
        return value.abs().clamp_min(low) / threshold

    @staticmethod
    def backward(ctx, grad):
        value, threshold = ctx.saved_tensors
        return grad / threshold * value.sign(), None, None


class _ParamQuant(torch.autograd.Function):
    """Per-channel int8 weights and the int32 bias at s_in · s_w, as one node of the graph.

    Returns (quantized weight, quantized bias); gradients for the weight, the bias and s_in.
    """

    @staticmethod
    def forward(ctx, weight, bias, in_scale, spec: _ParamSpec):
        channels = weight.shape[0]
        absmax, index = weight.abs().reshape(channels, -1).max(dim=1)
        view = (channels,) + (1,) * (weight.dim() - 1)
        w_scale = absmax.clamp_min(spec.min_scale).reshape(view) / spec.w_threshold
        w_y = weight / w_scale
        w_int = torch.round(w_y).clamp_(spec.w_lo, spec.w_hi)
        # Brevitas multiplies the scales in the output's channel view, then flattens.
        b_scale = (w_scale.reshape(-1) * in_scale.reshape(-1)).reshape(-1)
        b_y = bias / b_scale
        b_q = torch.round(b_y)
        b_int = b_q.clamp(spec.b_lo, spec.b_hi)
        b_inside = b_int == b_q  # the bias clamp is not straight-through
        # Round and clamp of the weight are straight-through: d w_q / d s_w = w_int − w / s_w.
        # s_w = absmax / T: the channel's largest |w| takes the scale's gradient, signed.
        peak = weight.reshape(channels, -1).gather(1, index[:, None])
        ctx.save_for_backward(
            w_int - w_y,
            index[:, None],
            peak.sign() / spec.w_threshold,
            b_inside,
            torch.where(b_inside, b_int - b_y, b_int),
            w_scale.reshape(-1),
            in_scale,
        )
        return w_int * w_scale, b_int * b_scale

    @staticmethod
    def backward(ctx, grad_w, grad_b):
        d_w, index, peak_dir, b_inside, d_b_scale, w_scale, in_scale = ctx.saved_tensors
        grad_bias = torch.where(b_inside, grad_b, 0.0)
        grad_b_scale = grad_b * d_b_scale
        grad_in_scale = (grad_b_scale * w_scale).sum().reshape(in_scale.shape)
        reduce = tuple(range(1, grad_w.dim()))
        grad_w_scale = (grad_w * d_w).sum(dim=reduce) + grad_b_scale * in_scale.reshape(-1)
        grad_weight = grad_w.contiguous().clone()
        grad_weight.view(grad_weight.shape[0], -1).scatter_add_(1, index, grad_w_scale[:, None] * peak_dir)
        return grad_weight, grad_bias, grad_in_scale, None


@dataclass(frozen=True)
class _ParamSpec:
    """The constants of one layer's weight and bias quantizers, read from Brevitas once."""

    w_threshold: torch.Tensor
    w_lo: float
    w_hi: float
    min_scale: float
    b_lo: float
    b_hi: float


# -- reading Brevitas's quantizers ------------------------------------------------------------


class NotFusable(Exception):
    """A quantizer this module does not reproduce; the model keeps Brevitas's forward."""


def _int_bounds(int_quant, bit_width: torch.Tensor) -> tuple[float, float]:
    if not isinstance(int_quant, IntQuant):
        raise NotFusable(f"integer quantizer {type(int_quant).__name__}")
    return float(int_quant.min_int(bit_width)), float(int_quant.max_int(bit_width))


def _clamp_min(clamp_value) -> float:
    impl = getattr(clamp_value, "clamp_min_ste", None) or getattr(clamp_value, "clamp_ste", None)
    return float(getattr(impl, "min_val", 0.0)) if impl is not None else 0.0


@dataclass(frozen=True)
class _ActSpec:
    lo: float
    hi: float
    threshold: torch.Tensor
    sigmoid: bool
    const_scale: torch.Tensor | None  # fixed scales: the value Brevitas computes, once
    learned: torch.nn.Parameter | None
    min_scale: float

    def scale(self) -> torch.Tensor:
        if self.const_scale is not None:
            return self.const_scale
        return _LearnedScale.apply(self.learned, self.min_scale, self.threshold)


def _act_spec(proxy) -> _ActSpec:
    if not proxy.is_quant_enabled:
        raise NotFusable("quantization disabled")
    fused = proxy.fused_activation_quant_proxy
    tq = fused.tensor_quant
    if not isinstance(tq, RescalingIntQuant) or tq.observer_only:
        raise NotFusable(f"activation quantizer {type(tq).__name__}")
    if not isinstance(tq.zero_point_impl, ZeroZeroPoint) or not isinstance(
        tq.int_quant.tensor_clamp_impl, TensorClamp
    ):
        raise NotFusable("activation quantizer with a zero point or another clamp")
    activation = fused.activation_impl
    sigmoid = isinstance(activation, nn.Sigmoid)
    if not (sigmoid or isinstance(activation, nn.Identity | BrevitasIdentity)):
        raise NotFusable(f"activation {type(activation).__name__}")
    bit_width = tq.msb_clamp_bit_width_impl()
    lo, hi = _int_bounds(tq.int_quant, bit_width)
    threshold = tq.int_scaling_impl(bit_width).abs().to(torch.float32)
    scaling = tq.scaling_impl
    if isinstance(scaling, ConstScaling):
        with torch.no_grad():
            const = scaling(threshold, threshold).detach()
        return _ActSpec(lo, hi, threshold, sigmoid, const, None, 0.0)
    if isinstance(scaling, ParameterFromRuntimeStatsScaling):
        if scaling.counter <= scaling.collect_stats_steps:
            raise NotFusable("activation scale still collecting statistics (calibrate first)")
        if not isinstance(
            scaling.restrict_scale_threshold.restrict_value_impl, nn.Identity | BrevitasIdentity
        ):
            raise NotFusable("restricted scale")
        return _ActSpec(lo, hi, threshold, sigmoid, None, scaling.value, _clamp_min(scaling.clamp_scaling))
    raise NotFusable(f"activation scaling {type(scaling).__name__}")


def _param_spec(layer) -> _ParamSpec:
    wq = layer.weight_quant
    tq = wq.tensor_quant
    if not wq.is_quant_enabled or not isinstance(tq, RescalingIntQuant):
        raise NotFusable("weight quantizer")
    scaling = tq.scaling_impl
    if not isinstance(scaling, StatsFromParameterScaling) or not isinstance(
        tq.int_quant.tensor_clamp_impl, TensorClampSte
    ):
        raise NotFusable(f"weight scaling {type(scaling).__name__}")
    stats = scaling.parameter_list_stats
    if stats.extra_tracked_params_list is not None or not isinstance(stats.stats.stats_impl, AbsMax):
        raise NotFusable("weight statistics other than the absolute maximum of one weight")
    if not isinstance(scaling.stats_scaling_impl.affine_rescaling, nn.Identity | BrevitasIdentity):
        raise NotFusable("affine weight scaling")
    bit_width = tq.msb_clamp_bit_width_impl()
    w_lo, w_hi = _int_bounds(tq.int_quant, bit_width)
    w_threshold = tq.int_scaling_impl(bit_width).abs()
    min_scale = max(_clamp_min(scaling.stats_scaling_impl.clamp_scaling),
                    _clamp_min(scaling.stats_scaling_impl.restrict_clamp_scaling))  # fmt: skip
    bq = layer.bias_quant
    if layer.bias is None or not bq.is_quant_enabled or not bq.requires_input_scale:
        raise NotFusable("bias without an input-scaled quantizer")
    btq = bq.tensor_quant
    if not isinstance(btq, PrescaledRestrictIntQuant) or not isinstance(
        btq.int_quant.tensor_clamp_impl, TensorClamp
    ):
        raise NotFusable(f"bias quantizer {type(btq).__name__}")
    b_lo, b_hi = _int_bounds(btq.int_quant, btq.msb_clamp_bit_width_impl())
    return _ParamSpec(w_threshold, w_lo, w_hi, min_scale, b_lo, b_hi)


# -- the fused forwards -----------------------------------------------------------------------


def _quantize(spec: _ActSpec, x: torch.Tensor, relu6: bool = False) -> Quantized:
    scale = spec.scale()
    if spec.sigmoid:
        return Quantized(_SigmoidQuant.apply(x, scale, spec.lo, spec.hi), scale)
    if not x.requires_grad and spec.const_scale is not None and not relu6:  # the model input
        return Quantized(torch.round(x / scale).clamp_(spec.lo, spec.hi).mul_(scale), scale)
    return Quantized(_ActQuant.apply(x, scale, spec.lo, spec.hi, relu6), scale)


def _identity_forward(spec: _ActSpec, relu6: bool = False):
    def forward(x):
        return _quantize(spec, _value(x), relu6)

    return forward


def _layer_forward(layer, params: _ParamSpec, out: _ActSpec | None):
    conv = isinstance(layer, QuantConv2d)
    same_pad = getattr(layer, "same_pad", None)

    def forward(x):
        if not isinstance(x, Quantized):
            raise RuntimeError(f"{type(layer).__name__}: the fused path needs a quantized input")
        weight, bias = _ParamQuant.apply(layer.weight, layer.bias, x.scale, params)
        value = x.value
        if conv:
            if same_pad is not None:
                value = F.pad(value, same_pad)
            y = layer._conv_forward(value, weight, bias)
        else:
            y = F.linear(value, weight, bias)
        return _quantize(out, y) if out is not None else y

    return forward


def _swaps(model: nn.Module) -> Iterator[tuple[nn.Module, object]]:
    inside_relu6 = set()
    for module in model.modules():
        if isinstance(module, QuantReLU6):
            # relu6 and its quantizer as one function; the inner QuantIdentity is then unused
            inside_relu6.add(id(module.quant))
            yield module, _identity_forward(_act_spec(module.quant.act_quant), relu6=True)
        elif id(module) in inside_relu6:
            continue
        elif isinstance(module, QuantConv2d | QuantLinear):
            if module.input_quant.is_quant_enabled:
                raise NotFusable("a layer with its own input quantizer")
            out = _act_spec(module.output_quant) if module.output_quant.is_quant_enabled else None
            if out is None and module.return_quant_tensor:
                raise NotFusable("a layer returning a QuantTensor without an output quantizer")
            yield module, _layer_forward(module, _param_spec(module), out)
        elif isinstance(module, QuantIdentity | QuantSigmoid):
            if module.input_quant.is_quant_enabled:
                raise NotFusable("an activation with its own input quantizer")
            spec = _act_spec(module.act_quant)
            if isinstance(module, QuantSigmoid) != spec.sigmoid:
                raise NotFusable("a sigmoid without its fused activation")
            yield module, _identity_forward(spec)
        elif isinstance(module, QuantLayerMixin):
            raise NotFusable(f"Brevitas layer {type(module).__name__}")


def fusable(model: nn.Module) -> str | None:
    """None if ``fused_fake_quant`` can take ``model``, else why not."""
    try:
        list(_swaps(model))
    except NotFusable as reason:
        return str(reason)
    return None


@contextmanager
def fused_fake_quant(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, ``model``'s Brevitas leaves compute with the fused functions.

    Raises ``NotFusable`` (before changing anything) for a quantizer it does not reproduce.
    """
    swaps = list(_swaps(model))
    with swapped_forwards(swaps):
        yield model
