"""The fast float training path computes what the plain modules compute: the same forward values
and gradients (to float summation order) for each rewritten layer and for a whole network, step
after step, and leaves the plain module tree behind. The plain torch modules are the reference."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mcu_effnet.arch import make_spec
from mcu_effnet.models import build_float, fast_float
from mcu_effnet.models.fast_float import TINY_DW_PIXELS, fast_float_training, pointwise, tiny_depthwise
from mcu_effnet.models.layers import SameConv2d, Swish

RTOL, ATOL = 1e-4, 1e-5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _value_and_grads(forward, conv: SameConv2d, x: torch.Tensor) -> list[torch.Tensor]:
    conv.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    y = forward(x)
    # A random cotangent, so every output element's gradient path counts.
    (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
    grads = [x.grad] + [p.grad for p in conv.parameters()]
    return [y.detach().contiguous(), *grads]


def _check_same(conv: SameConv2d, x: torch.Tensor, fast) -> None:
    plain = _value_and_grads(conv, conv, x)
    ours = _value_and_grads(lambda t: fast(conv, t), conv, x)
    assert ours[0].shape == plain[0].shape
    for a, b in zip(ours, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL)


@settings(max_examples=40, deadline=None)
@given(
    channels=st.integers(1, 9),
    kernel=st.sampled_from([3, 5]),
    stride=st.sampled_from([1, 2]),
    res=st.integers(1, 2),
    bias=st.booleans(),
    channels_last=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_tiny_depthwise_matches_conv(channels, kernel, stride, res, bias, channels_last, seed):
    torch.manual_seed(seed)
    conv = SameConv2d(channels + 1, channels + 1, kernel, stride, res, groups=channels + 1, bias=bias)
    x = torch.randn(3, channels + 1, res, res)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert res * res <= TINY_DW_PIXELS
    _check_same(conv, x, tiny_depthwise)


def test_tiny_depthwise_padding_taps_get_no_gradient():
    # On a 1x1 map only the centre tap meets the input: the others' gradient is exactly zero,
    # as the convolution's is, so weight decay alone moves them, as before.
    conv = SameConv2d(4, 4, 5, 1, 1, groups=4)
    tiny_depthwise(conv, torch.randn(2, 4, 1, 1)).sum().backward()
    grad = conv.weight.grad.reshape(4, 25)
    assert torch.all(grad[:, 12] != 0)
    assert torch.count_nonzero(torch.cat([grad[:, :12], grad[:, 13:]], dim=1)) == 0


@settings(max_examples=25, deadline=None)
@given(
    cin=st.integers(1, 12),
    cout=st.integers(1, 12),
    res=st.integers(1, 5),
    bias=st.booleans(),
    channels_last=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_pointwise_matches_conv(cin, cout, res, bias, channels_last, seed):
    torch.manual_seed(seed)
    conv = SameConv2d(cin, cout, 1, 1, res, bias=bias)
    x = torch.randn(3, cin, res, res)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    _check_same(conv, x, pointwise)


def _model(variant: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    # 16 px: the late stages run on 1x1 maps, where depthwise convolutions take the pair sum.
    spec = make_spec(-4.0, resolution=16, classes=5, variant=variant, board=None)
    return build_float(spec).to(memory_format=torch.channels_last).train()


def _loss_and_grads(model: torch.nn.Module, x, y, fast: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    with fast_float_training(model) if fast else nullcontext():
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
    loss.backward()
    return loss.detach(), [p.grad for p in model.parameters()]


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.flatten() for t in tensors])


@pytest.mark.parametrize("variant", ["full", "lite"])
def test_network_loss_and_gradients_match_plain_steps(variant):
    """Three training steps of the plain model; at each, the fast path from the same weights and
    BatchNorm statistics gives the same loss and gradient (the full variant has swish and
    squeeze-excite, lite ReLU6 and none). The gradient is compared as one vector: a depthwise
    weight on a 1x1 map followed by BatchNorm is scale-invariant, its exact gradient 0, and its
    computed one float noise in either path."""
    plain, fast = _model(variant, 0), _model(variant, 0)
    rewritten = [m for m in fast.modules() if isinstance(m, (SameConv2d, Swish))]
    optimizer = torch.optim.SGD(plain.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        fast.load_state_dict(plain.state_dict())
        x = torch.rand(16, 3, 16, 16, generator=generator).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 5, (16,), generator=generator)
        loss_fast, grads_fast = _loss_and_grads(fast, x, y, fast=True)
        loss_plain, grads_plain = _loss_and_grads(plain, x, y, fast=False)
        torch.testing.assert_close(loss_fast, loss_plain, rtol=1e-5, atol=1e-6)
        difference = (_flat(grads_fast) - _flat(grads_plain)).norm() / _flat(grads_plain).norm()
        assert difference < 1e-3
        for name, buffer in fast.state_dict().items():  # BatchNorm running statistics
            torch.testing.assert_close(buffer, plain.state_dict()[name], rtol=1e-4, atol=1e-6)
        optimizer.step()
    # Outside the block the plain forwards are back: hooks and export see the module tree.
    assert rewritten and all("forward" not in m.__dict__ for m in rewritten)


def test_the_block_rewrites_tiny_depthwise_only_on_tiny_maps(monkeypatch):
    model = _model("full", 0)
    depthwise = [m for m in model.modules() if isinstance(m, SameConv2d) and m.groups > 1]
    x = torch.rand(2, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    pixels = {}
    for m in depthwise:
        m.register_forward_pre_hook(
            lambda m, args: pixels.__setitem__(m, args[0].shape[-2] * args[0].shape[-1])
        )
    calls = []
    monkeypatch.setattr(
        fast_float, "tiny_depthwise", lambda conv, t: calls.append(conv) or tiny_depthwise(conv, t)
    )
    with fast_float_training(model):
        model(x)
    assert set(calls) == {m for m, n in pixels.items() if n <= TINY_DW_PIXELS}
    assert 0 < len(calls) < len(depthwise)
    rewritten = len(calls)
    model(x)  # outside the block: the plain convolutions again
    assert len(calls) == rewritten
