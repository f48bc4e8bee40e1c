"""The training speed-ups change nothing but speed: each fast path is compared with the plain
computation it replaces, on the real network (φ -4 at 16 px keeps every block and stays quick)."""

from __future__ import annotations

import copy

import pytest
import torch

from mcu_effnet.arch import make_spec
from mcu_effnet.models import build_float
from mcu_effnet.quant.lr_schedule import make_optimizer


def _spec():
    return make_spec(-4.0, resolution=16, classes=5, variant="full", board=None)


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_fused_optimizer_takes_the_steps_of_the_unfused_one(kind):
    # The same gradients into both: a whole training run would not do, since Adam turns rounding
    # noise in near-zero gradients into full-size steps, and the runs drift apart chaotically.
    torch.manual_seed(1)
    reference = build_float(_spec())
    fused = copy.deepcopy(reference)
    start = copy.deepcopy(reference)
    slow = make_optimizer(reference, kind, 1e-2, 0.02, fused=False)
    fast = make_optimizer(fused, kind, 1e-2, 0.02)
    assert fast.defaults.get("fused") and not slow.defaults.get("fused")
    for _ in range(3):
        for a, b in zip(reference.parameters(), fused.parameters(), strict=True):
            a.grad = torch.randn_like(a) * 1e-2
            b.grad = a.grad.clone()
        slow.step()
        fast.step()
    for (name, a), b in zip(reference.named_parameters(), fused.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), name
    # ...and the steps moved the weights well beyond that tolerance.
    moved = max(
        float((a - b).abs().max()) for a, b in zip(reference.parameters(), start.parameters(), strict=True)
    )
    assert moved > 1e-3
