"""The fused fake quantization computes what Brevitas computes: the same forward values, the same
gradients (to float tolerance) for every parameter, step after step, and leaves nothing behind
that export could see. Brevitas's own modules are the reference throughout."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from brevitas.nn import QuantIdentity
from hypothesis import given, settings
from hypothesis import strategies as st

from mcu_effnet.arch import make_spec
from mcu_effnet.models import build_float, build_quant, fold_batchnorm
from mcu_effnet.models.fused_quant import NotFusable, fusable, fused_fake_quant
from mcu_effnet.models.quant_model import _value
from mcu_effnet.models.quantizers import ActInt8, Relu6Uint8
from mcu_effnet.quant.calibrate import calibrate_activations
from mcu_effnet.quant.lr_schedule import make_optimizer

# Gradients are sums over the batch in another order: equal to float32 noise, which on a
# near-zero scale gradient (a sum of cancelling terms) is absolute, not relative.
RTOL, ATOL = 1e-3, 1e-6


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _quant(variant: str, seed: int = 0, calibrate: bool = True):
    """φ -4 at 16 px with random weights, BN folded and calibrated, as QAT starts."""
    torch.manual_seed(seed)
    spec = make_spec(-4.0, resolution=16, classes=5, variant=variant, board=None)
    float_model = build_float(spec)
    float_model.train()
    with torch.no_grad():  # BatchNorm statistics of real activations, so the folded net is sane
        float_model(torch.rand(16, 3, 16, 16))
    quant = build_quant(spec)
    quant.load_state_dict(fold_batchnorm(float_model).state_dict(), strict=False)
    if calibrate:
        calibrate_activations(quant, [torch.rand(16, 3, 16, 16)], torch.device("cpu"))
    return quant.train()


def _loss_and_grads(model, x, y, fused: bool):
    model.zero_grad(set_to_none=True)
    if fused:
        with fused_fake_quant(model):
            logits = model(x)
    else:
        logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return logits.detach(), float(loss), grads


@pytest.mark.parametrize("variant", ["full", "lite"])  # swish + SE, relu6
def test_fused_steps_have_brevitas_losses_and_gradients(variant):
    model = _quant(variant).to(memory_format=torch.channels_last)
    assert fusable(model) is None
    optimizer = make_optimizer(model, "adamw", 3e-3, 0.02)
    generator = torch.Generator().manual_seed(1)
    start = copy.deepcopy(model.state_dict())
    for _ in range(3):
        x = torch.rand(8, 3, 16, 16, generator=generator).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 5, (8,), generator=generator)
        ref_logits, ref_loss, ref_grads = _loss_and_grads(model, x, y, fused=False)
        logits, loss, grads = _loss_and_grads(model, x, y, fused=True)
        assert torch.equal(logits, ref_logits)  # the forward is Brevitas's, bit for bit
        assert loss == ref_loss
        assert grads.keys() == ref_grads.keys()
        # every weight, bias and learned activation scale gets a gradient
        assert len(grads) == len([p for p in model.parameters() if p.requires_grad])
        for name, grad in grads.items():
            torch.testing.assert_close(grad, ref_grads[name], rtol=RTOL, atol=ATOL, msg=name)
        optimizer.step()  # on the fused gradients: the next step compares on moved weights and scales
    moved = max(
        float((start[k] - v).abs().max()) for k, v in model.state_dict().items() if v.is_floating_point()
    )
    assert moved > 1e-3


def test_the_model_leaves_the_block_as_it_entered(tmp_path):
    model = _quant("full")
    x = torch.rand(4, 3, 16, 16)
    before = copy.deepcopy(model.state_dict())
    with fused_fake_quant(model):
        fused_out = model(x)
    assert not any("forward" in vars(m) for m in model.modules())
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(_value(model(x)), fused_out)  # Brevitas's forward again, same values


def test_export_after_fused_training_is_that_of_the_same_weights(tmp_path):
    from mcu_effnet.quant.onnx_export import export_qcdq

    model = _quant("lite")
    optimizer = make_optimizer(model, "adamw", 3e-3, 0.02)
    with fused_fake_quant(model):
        for _ in range(2):
            loss = F.cross_entropy(model(torch.rand(8, 3, 16, 16)), torch.randint(0, 5, (8,)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    fresh = build_quant(model.spec)
    fresh.load_state_dict(model.state_dict())
    export_qcdq(model.eval(), 16, tmp_path / "trained.onnx")
    export_qcdq(fresh.eval(), 16, tmp_path / "fresh.onnx")
    assert (tmp_path / "trained.onnx").read_bytes() == (tmp_path / "fresh.onnx").read_bytes()


def test_an_uncalibrated_model_is_refused_and_left_alone():
    model = _quant("lite", calibrate=False)
    assert "statistics" in fusable(model)
    with pytest.raises(NotFusable, match="statistics"):
        with fused_fake_quant(model):
            pass
    assert not any("forward" in vars(m) for m in model.modules())


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    scale=st.floats(1e-3, 1.0),
    spread=st.floats(0.1, 400.0),  # inputs from well inside to far outside the int8 range
    relu6=st.booleans(),
)
def test_activation_quantizer_matches_brevitas_at_any_range(seed, scale, spread, relu6):
    """One quantizer alone, including clamped inputs and exact rounding ties (x = (k + 1/2)·s)."""
    generator = np.random.default_rng(seed)
    quantizer = Relu6Uint8 if relu6 else ActInt8
    layer = QuantIdentity(act_quant=quantizer, return_quant_tensor=True)
    calibrate_activations(layer, [torch.ones(4)], torch.device("cpu"))
    threshold = 255.0 if relu6 else 128.0
    with torch.no_grad():
        layer.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value.fill_(scale * threshold)
    layer.train()
    values = generator.normal(0, spread * scale, 64)
    ties = (generator.integers(-130, 130, 16) + 0.5) * scale
    x = torch.tensor(np.concatenate([values, ties]), dtype=torch.float32)
    upstream = torch.tensor(generator.normal(0, 1, x.numel()), dtype=torch.float32)

    def run(fused):
        module = copy.deepcopy(layer)
        xi = x.clone().requires_grad_()
        clamp = F.relu6 if relu6 else (lambda t: t)
        if fused:
            with fused_fake_quant(module):
                out = _value(module(clamp(xi)))
        else:
            out = _value(module(clamp(xi)))
        (out * upstream).sum().backward()
        (param,) = module.parameters()
        return out.detach(), xi.grad, param.grad

    (ref, ref_dx, ref_ds), (out, dx, ds) = run(False), run(True)
    assert torch.equal(out, ref)
    torch.testing.assert_close(dx, ref_dx, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(ds, ref_ds, rtol=RTOL, atol=ATOL)
