"""The Brevitas quant model: the float structure with TFLite-int8 quantizers on every tensor.

Module names equal the folded float model's, so
``quant.load_state_dict(fold_batchnorm(f).state_dict(), strict=False)`` loads every conv and
linear weight and bias. Every activation the int8 graph holds passes a quantizer:

- conv outputs: ``ActInt8`` inside the conv (``output_quant``), except before a ReLU6, which
  TFLite fuses into the conv: there the ReLU6's quantizer is the conv's output;
- swish: ``SigmoidUint8Fixed`` on the sigmoid, ``ActInt8`` on the product;
- SE gate: ``SigmoidUint8Fixed``; SE product, residual sums and means: ``ActInt8``;
- logits: ``ActInt8`` inside the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantSigmoid
from brevitas.quant_tensor import QuantTensor
from torch import nn
from torch.nn import functional as F

from mcu_effnet.arch import ArchSpec
from mcu_effnet.models.layers import same_pad_args
from mcu_effnet.models.network import EfficientNet
from mcu_effnet.models.quantizers import (
    ActInt8,
    BiasInt32,
    InputUint8Fixed,
    Relu6Uint8,
    SigmoidUint8Fixed,
    WeightPerChannelInt8,
)


@dataclass
class Quantized:
    """A fake-quantized activation and its scale: what ``models.fused_quant`` passes between
    layers instead of a ``QuantTensor``."""

    value: torch.Tensor
    scale: torch.Tensor


def _value(x):
    return x.value if isinstance(x, QuantTensor | Quantized) else x


class QuantSameConv2d(QuantConv2d):
    """QuantConv2d with TensorFlow SAME padding (explicit zero pad of the quantized input)."""

    def __init__(self, cin, cout, kernel, stride, in_res, *, groups, bias, output_quant):
        padding, self.same_pad = same_pad_args(in_res, kernel, stride)
        super().__init__(
            cin,
            cout,
            kernel,
            stride=stride,
            padding=padding,
            groups=groups,
            bias=True,  # after BN folding every conv has a bias
            weight_quant=WeightPerChannelInt8,
            bias_quant=BiasInt32,
            output_quant=output_quant,
            return_quant_tensor=output_quant is not None,
        )

    def forward(self, x):
        if self.same_pad is not None:
            x = F.pad(x, self.same_pad)  # zero is exact: every activation has zero point 0
        return super().forward(x)


class QuantBinary(nn.Module):
    """Elementwise op of two quantized tensors, re-quantized to int8 (TFLite MUL / ADD)."""

    def __init__(self, op) -> None:
        super().__init__()
        self.op = op
        self.quant = QuantIdentity(act_quant=ActInt8, return_quant_tensor=True)

    def forward(self, a, b):
        return self.quant(self.op(_value(a), _value(b)))


class QuantMean(nn.Module):
    """Mean over H, W re-quantized to int8 (TFLite MEAN has a free output scale)."""

    def __init__(self, keepdim: bool) -> None:
        super().__init__()
        self.keepdim = keepdim
        self.quant = QuantIdentity(act_quant=ActInt8, return_quant_tensor=True)

    def forward(self, x):
        return self.quant(_value(x).mean(dim=(2, 3), keepdim=self.keepdim))


class QuantReLU6(nn.Module):
    """min(max(x, 0), 6) then ``Relu6Uint8``: TFLite's conv-fused RELU6.

    The clamp is explicit (Brevitas's QuantHardTanh clamps only through its quantizer's
    range, and not at all while calibration disables quantization).
    """

    def __init__(self) -> None:
        super().__init__()
        self.quant = QuantIdentity(act_quant=Relu6Uint8, return_quant_tensor=True)

    def forward(self, x):
        return self.quant(F.relu6(_value(x)))


class QuantSwish(nn.Module):
    """x · sigmoid(x): sigmoid at fixed 1/256, product at int8. Same names as ``Swish``."""

    def __init__(self) -> None:
        super().__init__()
        self.sigmoid = QuantSigmoid(act_quant=SigmoidUint8Fixed, return_quant_tensor=True)
        self.mul = QuantBinary(torch.mul)

    def forward(self, x):
        return self.mul(x, self.sigmoid(x))


class QuantLayers:
    """Brevitas leaf modules for ``EfficientNet``."""

    def input_quant(self) -> nn.Module:
        return QuantIdentity(act_quant=InputUint8Fixed, return_quant_tensor=True)

    def conv(self, cin, cout, kernel, stride, in_res, *, groups, bias, act) -> nn.Module:
        output_quant = None if act == "relu6" else ActInt8  # ReLU6 is fused: its quantizer is the output
        return QuantSameConv2d(
            cin, cout, kernel, stride, in_res, groups=groups, bias=bias, output_quant=output_quant
        )

    def bn(self, channels: int) -> nn.Module:
        return nn.Identity()  # the quant model takes folded weights

    def act(self, kind: str) -> nn.Module:
        if kind == "swish":
            return QuantSwish()
        if kind == "relu6":
            return QuantReLU6()
        if kind == "none":
            return nn.Identity()
        raise ValueError(f"unknown activation {kind!r}")

    def gate(self) -> nn.Module:
        return QuantSigmoid(act_quant=SigmoidUint8Fixed, return_quant_tensor=True)

    def mul(self) -> nn.Module:
        return QuantBinary(torch.mul)

    def add(self) -> nn.Module:
        return QuantBinary(torch.add)

    def mean(self, keepdim: bool) -> nn.Module:
        return QuantMean(keepdim)

    def linear(self, cin: int, cout: int) -> nn.Module:
        return QuantLinear(
            cin,
            cout,
            bias=True,
            weight_quant=WeightPerChannelInt8,
            bias_quant=BiasInt32,
            output_quant=ActInt8,
            return_quant_tensor=True,
        )

    def output(self, x) -> torch.Tensor:
        return _value(x)


def build_quant(spec: ArchSpec) -> nn.Module:
    """Brevitas EfficientNet for ``spec`` with the folded float model's module names."""
    return EfficientNet(spec, QuantLayers())
