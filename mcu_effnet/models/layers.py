"""Float building blocks. Every op of the int8 graph is one leaf module here (conv with its
SAME padding inside, sigmoid, multiply, add, mean), so the module tree mirrors the graph the
exporter writes and forward hooks see the same tensors the int8 planner will allocate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mcu_effnet.arch.rounding import same_padding


def same_pad_args(in_res: int, kernel: int, stride: int) -> tuple[int, tuple[int, int, int, int] | None]:
    """(symmetric padding for the conv, explicit (left, right, top, bottom) pad or None).

    TensorFlow SAME puts the odd pixel after; PyTorch's conv padding is symmetric, so an
    asymmetric SAME (stride 2 on an even input) becomes an explicit zero pad and padding 0.
    """
    before, after = same_padding(in_res, kernel, stride)
    if before == after:
        return before, None
    return 0, (before, after, before, after)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow SAME padding for a known square input size."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, in_res: int, groups: int = 1, bias: bool = False
    ):
        padding, self.same_pad = same_pad_args(in_res, kernel, stride)
        super().__init__(cin, cout, kernel, stride, padding=padding, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same_pad is not None:
            x = F.pad(x, self.same_pad)
        return super().forward(x)


class Mul(nn.Module):
    """Elementwise product (TFLite MUL, broadcasting [N,C,1,1] gates)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class Add(nn.Module):
    """Residual sum (TFLite ADD)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Mean(nn.Module):
    """Mean over H and W (TFLite MEAN over axes 1, 2)."""

    def __init__(self, keepdim: bool) -> None:
        super().__init__()
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=self.keepdim)


class Swish(nn.Module):
    """x · sigmoid(x) as two ops, LOGISTIC and MUL, as the int8 graph computes it."""

    def __init__(self) -> None:
        super().__init__()
        self.sigmoid = nn.Sigmoid()
        self.mul = Mul()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mul(x, self.sigmoid(x))


def float_act(kind: str) -> nn.Module:
    if kind == "swish":
        return Swish()
    if kind == "relu6":
        # In place: in the int8 graph ReLU6 is fused into the conv and writes no new tensor.
        return nn.ReLU6(inplace=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {kind!r}")
