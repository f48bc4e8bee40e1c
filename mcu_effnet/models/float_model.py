"""The float model (plain torch) and BatchNorm folding."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from mcu_effnet.arch import ArchSpec
from mcu_effnet.models.layers import Add, Mean, Mul, SameConv2d, float_act
from mcu_effnet.models.network import EfficientNet

BN_EPS = 1e-3  # the reference implementation's batch_norm_epsilon


class FloatLayers:
    """Plain torch leaf modules for ``EfficientNet``."""

    def input_quant(self) -> nn.Module:
        return nn.Identity()

    def conv(self, cin, cout, kernel, stride, in_res, *, groups, bias, act) -> nn.Module:
        return SameConv2d(cin, cout, kernel, stride, in_res, groups=groups, bias=bias)

    def bn(self, channels: int) -> nn.Module:
        return nn.BatchNorm2d(channels, eps=BN_EPS)

    def act(self, kind: str) -> nn.Module:
        return float_act(kind)

    def gate(self) -> nn.Module:
        return nn.Sigmoid()

    def mul(self) -> nn.Module:
        return Mul()

    def add(self) -> nn.Module:
        return Add()

    def mean(self, keepdim: bool) -> nn.Module:
        return Mean(keepdim)

    def linear(self, cin: int, cout: int) -> nn.Module:
        return nn.Linear(cin, cout)

    def output(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _init_weights(model: nn.Module) -> None:
    """The reference's initialisation: fan-out normal convs, uniform classifier."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


def build_float(spec: ArchSpec) -> nn.Module:
    """Plain torch EfficientNet for ``spec``: conv (no bias) + BatchNorm blocks."""
    model = EfficientNet(spec, FloatLayers())
    _init_weights(model)
    return model


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every BatchNorm folded into the conv before it.

    w' = w · γ/σ, b' = (b − μ) · γ/σ + β with σ = sqrt(var + eps); the BatchNorm becomes
    ``nn.Identity`` under the same name, so the state dict keys of convs stay put (and gain a
    ``.bias``). Equal to the original in eval mode.
    """
    folded = copy.deepcopy(model).eval()
    for parent in folded.modules():
        bn = getattr(parent, "bn", None)
        conv = getattr(parent, "conv", None)
        if not isinstance(bn, nn.BatchNorm2d) or not isinstance(conv, nn.Conv2d):
            continue
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
        parent.bn = nn.Identity()
    return folded
