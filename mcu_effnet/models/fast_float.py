"""Cheaper float training steps: the same functions, computed the way CPU kernels like.

At φ −4, 32 px most of a float training step goes into oneDNN convolution backward passes on
layers whose maps are 1x1 or 2x2: a depthwise 5x5 on a 1x1 map costs as much as one on a
16x16 map, though with SAME padding only its centre tap ever meets a non-zero input. For the
length of a ``with fast_float_training(model)`` block:

- depthwise convolutions on maps of at most ``TINY_DW_PIXELS`` input pixels become the sum over
  the (output, input) pixel pairs their kernel actually connects: a gather of the taps into an
  [O, I, C] matrix and a broadcast multiply-sum. Padding taps (always zero inputs) drop out, so
  forward values and gradients equal the convolution's up to float summation order, and the
  gradient of a tap that only ever sees padding is exactly zero, as the convolution's is;
- 1x1 stride-1 convolutions (expansions, projections, squeeze-excite, the head) become a
  matrix multiply over the channel axis (``F.linear`` on the NHWC view);
- swish (``Swish``: sigmoid then multiply, two modules as the int8 graph has them) becomes one
  ``F.silu``, the same function with one saved tensor instead of two.

Modules keep their parameters and names; outside the block the model is the plain one again,
so evaluation, forward hooks, BatchNorm folding and export see the module tree they expect.
``tests/test_fast_float.py`` holds values and gradients to the plain modules'.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

from mcu_effnet.models.forward_swap import swapped_forwards
from mcu_effnet.models.layers import SameConv2d, Swish

# Up to 2x2 input maps the pair sum is far cheaper than oneDNN's depthwise backward; at 4x4
# (16 inputs x 4 outputs) the two are about even (forward + backward per layer, one thread).
TINY_DW_PIXELS = 4


@cache
def _tap_index(
    height: int, width: int, out_h: int, out_w: int, kernel: int, stride: int, top: int, left: int
) -> torch.Tensor:
    """index[o, i]: the kernel tap (row-major) that connects output pixel o to input pixel i,
    or ``kernel * kernel`` (a zero appended to the taps) where they do not meet."""
    return torch.tensor(
        [
            [
                _tap(oh * stride - top, ow * stride - left, ih, iw, kernel)
                for ih in range(height)
                for iw in range(width)
            ]
            for oh in range(out_h)
            for ow in range(out_w)
        ]
    )


def _tap(top: int, left: int, ih: int, iw: int, kernel: int) -> int:
    kh, kw = ih - top, iw - left
    return kh * kernel + kw if 0 <= kh < kernel and 0 <= kw < kernel else kernel * kernel


def _output_size(conv: SameConv2d, height: int, width: int) -> tuple[int, int, int, int]:
    """(out_h, out_w, pad_top, pad_left) of ``conv`` on a height x width input."""
    k, s = conv.kernel_size[0], conv.stride[0]
    if conv.same_pad is not None:
        left, right, top, bottom = conv.same_pad
    else:
        top = bottom = conv.padding[0]
        left = right = conv.padding[1]
    return (height + top + bottom - k) // s + 1, (width + left + right - k) // s + 1, top, left


def tiny_depthwise(conv: SameConv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a depthwise ``conv`` as a sum over connected (output, input) pixel pairs."""
    n, c, h, w = x.shape
    k, s = conv.kernel_size[0], conv.stride[0]
    out_h, out_w, top, left = _output_size(conv, h, w)
    index = _tap_index(h, w, out_h, out_w, k, s, top, left)
    taps = torch.cat([conv.weight.reshape(c, k * k), conv.weight.new_zeros(c, 1)], dim=1)
    weights = taps[:, index].permute(1, 2, 0)  # [O, I, C]
    pixels = x.permute(0, 2, 3, 1).reshape(n, 1, h * w, c)  # a view for channels-last x
    y = (pixels * weights).sum(dim=2) if h * w > 1 else pixels[:, :, 0] * weights[:, 0]
    if conv.bias is not None:
        y = y + conv.bias
    return y.reshape(n, out_h, out_w, c).permute(0, 3, 1, 2)


def pointwise(conv: SameConv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a 1x1 stride-1 ``conv`` as a matrix multiply on the NHWC view."""
    weight = conv.weight.reshape(conv.out_channels, conv.in_channels)
    return F.linear(x.permute(0, 2, 3, 1), weight, conv.bias).permute(0, 3, 1, 2)


def _is_depthwise(conv: SameConv2d) -> bool:
    return conv.groups == conv.in_channels == conv.out_channels and conv.groups > 1


def _is_pointwise(conv: SameConv2d) -> bool:
    return conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.groups == 1 and conv.same_pad is None


def _conv_forward(conv: SameConv2d) -> Callable[[torch.Tensor], torch.Tensor] | None:
    plain = type(conv).forward.__get__(conv)
    if _is_pointwise(conv):
        return lambda x: pointwise(conv, x)
    if _is_depthwise(conv) and conv.kernel_size[0] == conv.kernel_size[1] and conv.dilation == (1, 1):
        return lambda x: tiny_depthwise(conv, x) if x.shape[2] * x.shape[3] <= TINY_DW_PIXELS else plain(x)
    return None


def _swish_forward(module: Swish) -> Callable[[torch.Tensor], torch.Tensor]:
    return F.silu


def _swaps(model: nn.Module) -> Iterator[tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]]]:
    for module in model.modules():
        if isinstance(module, SameConv2d):
            forward = _conv_forward(module)
            if forward is not None:
                yield module, forward
        elif isinstance(module, Swish):
            yield module, _swish_forward(module)


@contextmanager
def fast_float_training(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, ``model``'s eligible float leaves compute the cheaper way (see above)."""
    swaps = list(_swaps(model))
    with swapped_forwards(swaps):
        yield model
