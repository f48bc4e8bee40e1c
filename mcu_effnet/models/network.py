"""One network structure for the float and the quant model, built from an ``ArchSpec``.

A ``LayerFactory`` supplies the leaf modules (plain torch or Brevitas); the structure and so
the module names (``stem.conv``, ``blocks.3.1.dw.conv``, ``blocks.3.1.se.reduce``,
``head.conv``, ``classifier``) are the same for both. ``blocks.i`` is MBConv stage i+2 of the
paper (``blocks.0`` = stage 2), ``blocks.i.j`` its j-th layer.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from mcu_effnet.arch import ArchSpec, BlockSpec


class LayerFactory(Protocol):
    def input_quant(self) -> nn.Module: ...
    def conv(
        self, cin: int, cout: int, kernel: int, stride: int, in_res: int, *, groups: int, bias: bool, act: str
    ) -> nn.Module: ...
    def bn(self, channels: int) -> nn.Module: ...
    def act(self, kind: str) -> nn.Module: ...
    def gate(self) -> nn.Module: ...
    def mul(self) -> nn.Module: ...
    def add(self) -> nn.Module: ...
    def mean(self, keepdim: bool) -> nn.Module: ...
    def linear(self, cin: int, cout: int) -> nn.Module: ...
    def output(self, x) -> torch.Tensor: ...


class ConvBNAct(nn.Module):
    """conv → BatchNorm → activation (``act="none"`` for the projection)."""

    def __init__(
        self,
        f: LayerFactory,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        in_res: int,
        act: str,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.conv = f.conv(cin, cout, kernel, stride, in_res, groups=groups, bias=False, act=act)
        self.bn = f.bn(cout)
        self.act = f.act(act)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """mean over H,W → 1x1 conv (bias) → act → 1x1 conv (bias) → sigmoid → multiply."""

    def __init__(self, f: LayerFactory, channels: int, reduced: int, act: str) -> None:
        super().__init__()
        self.pool = f.mean(keepdim=True)
        self.reduce = f.conv(channels, reduced, 1, 1, 1, groups=1, bias=True, act=act)
        self.act = f.act(act)
        self.expand = f.conv(reduced, channels, 1, 1, 1, groups=1, bias=True, act="sigmoid")
        self.gate = f.gate()
        self.mul = f.mul()

    def forward(self, x):
        s = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return self.mul(x, s)


class MBConv(nn.Module):
    """Inverted bottleneck: [expand 1x1] → depthwise kxk → [SE] → project 1x1 → [+ input]."""

    def __init__(self, f: LayerFactory, b: BlockSpec, act: str) -> None:
        super().__init__()
        if b.has_expand:
            self.expand = ConvBNAct(f, b.in_channels, b.mid_channels, 1, 1, b.in_resolution, act)
        self.dw = ConvBNAct(
            f, b.mid_channels, b.mid_channels, b.kernel, b.stride, b.in_resolution, act, groups=b.mid_channels
        )
        if b.se_channels:
            self.se = SqueezeExcite(f, b.mid_channels, b.se_channels, act)
        self.project = ConvBNAct(f, b.mid_channels, b.out_channels, 1, 1, b.out_resolution, "none")
        if b.residual:
            self.add = f.add()

    def forward(self, x):
        h = self.expand(x) if hasattr(self, "expand") else x
        h = self.dw(h)
        if hasattr(self, "se"):
            h = self.se(h)
        h = self.project(h)
        return self.add(x, h) if hasattr(self, "add") else h


class EfficientNet(nn.Module):
    """Takes float NCHW x = pixel / 255 in [0, 1]; returns logits [N, classes]."""

    def __init__(self, spec: ArchSpec, f: LayerFactory) -> None:
        super().__init__()
        self.spec = spec
        self._factory = f
        act = spec.activation
        stem, head = spec.stem, spec.head
        self.input_quant = f.input_quant()
        self.stem = ConvBNAct(f, 3, stem.channels, stem.kernel, stem.stride, stem.resolution, act)
        self.blocks = nn.ModuleList(
            nn.ModuleList(MBConv(f, b, act) for b in stage_blocks) for stage_blocks in spec.blocks()
        )
        self.head = ConvBNAct(f, head.in_channels, head.channels, 1, 1, head.resolution, act)
        self.pool = f.mean(keepdim=False)
        self.classifier = f.linear(head.channels, spec.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.input_quant(x))
        for stage in self.blocks:
            for block in stage:
                x = block(x)
        x = self.classifier(self.pool(self.head(x)))
        return self._factory.output(x)
