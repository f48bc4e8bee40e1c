"""mcu_effnet.models: float and quant models from one spec, BN folding, weight loading, the
quantizer conventions, and a QCDQ ONNX export checked with onnxruntime."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from mcu_effnet.arch import make_spec
from mcu_effnet.models import build_float, build_quant, fold_batchnorm

warnings.filterwarnings("ignore", message=".*fast_hadamard_transform.*")


def _float_with_bn_stats(spec, seed: int = 0, batch: int = 32) -> nn.Module:
    """A float model whose BatchNorms hold the statistics of a random batch (so activations
    stay O(1) through the random network and quantization has something to resolve)."""
    torch.manual_seed(seed)
    model = build_float(spec)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average: one pass stores the batch statistics
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.1)
    with torch.no_grad():
        model.train()(torch.rand(batch, 3, spec.resolution, spec.resolution))
    return model.eval()


def _calibrated_quant(spec, folded: nn.Module, x: torch.Tensor) -> nn.Module:
    from brevitas.graph.calibrate import calibration_mode

    quant = build_quant(spec)
    result = quant.load_state_dict(folded.state_dict(), strict=False)
    assert result.unexpected_keys == []
    with torch.no_grad(), calibration_mode(quant):
        quant(x)
    return quant.eval()


@pytest.mark.parametrize("phi", range(-8, 2))
def test_float_forward_every_phi(phi):
    spec = make_spec(phi, classes=10, board=None)
    model = build_float(spec).eval()
    with torch.no_grad():
        y = model(torch.rand(1, 3, spec.resolution, spec.resolution))
    assert y.shape == (1, 10) and torch.isfinite(y).all()


@pytest.mark.parametrize("phi", [-8, -5, -2, 1])
def test_lite_float_forward(phi):
    spec = make_spec(phi, variant="lite", classes=7, board=None)
    with torch.no_grad():
        y = build_float(spec).eval()(torch.rand(2, 3, spec.resolution, spec.resolution))
    assert y.shape == (2, 7)


@pytest.mark.parametrize("phi,variant,board", [(-8, "full", None), (-6, "full", "stm32"), (-4, "lite", None)])
def test_quant_forward(phi, variant, board):
    spec = make_spec(phi, variant=variant, classes=10, board=board)
    model = build_quant(spec).eval()
    with torch.no_grad():
        y = model(torch.rand(1, 3, spec.resolution, spec.resolution))
    assert isinstance(y, torch.Tensor) and y.shape == (1, 10)


@pytest.mark.parametrize("variant", ["full", "lite"])
def test_fold_batchnorm_equal(variant):
    spec = make_spec(-3, variant=variant, classes=10, board="stm32")
    model = _float_with_bn_stats(spec, batch=8)
    for m in model.modules():  # BN parameters that differ visibly from identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.rand(4, 3, spec.resolution, spec.resolution)
    with torch.no_grad():
        ref, out = model(x), folded(x)
    # float32 sums in another order: 1e-5 of the logits' magnitude
    assert (out - ref).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item())
    names = {n for n, _ in model.named_modules()}
    assert names == {n for n, _ in folded.named_modules()}


@pytest.mark.parametrize("variant", ["full", "lite"])
def test_quant_loads_folded_weights(variant):
    spec = make_spec(-1, variant=variant, classes=10, board="stm32")
    folded = fold_batchnorm(_float_with_bn_stats(spec, batch=8))
    quant = build_quant(spec)
    state = folded.state_dict()
    assert "stem.conv.weight" in state and "blocks.3.1.dw.conv.bias" in state and "classifier.weight" in state
    if variant == "full":
        assert "blocks.3.1.se.reduce.weight" in state
    result = quant.load_state_dict(state, strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys and all("quant" in k for k in result.missing_keys)
    qstate = quant.state_dict()
    for key, value in state.items():
        assert torch.equal(qstate[key], value), key
    # With quantization switched off (Brevitas calibration mode) the quant model computes the
    # folded float model: same structure, same weights.
    from brevitas.graph.calibrate import calibration_mode

    x = torch.rand(3, 3, spec.resolution, spec.resolution)
    with torch.no_grad(), calibration_mode(quant):
        out = quant(x)
    with torch.no_grad():
        ref = folded(x)
    assert (out - ref).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item())


def test_quantizer_conventions():
    spec = make_spec(-4, classes=10, resolution=32, board=None)
    folded = fold_batchnorm(_float_with_bn_stats(spec))
    x = torch.rand(8, 3, 32, 32)
    quant = _calibrated_quant(spec, folded, x)
    seen: dict[str, object] = {}

    def keep(name):
        def hook(mod, inputs, output):
            seen[name] = (inputs[0], output)

        return hook

    for name, mod in quant.named_modules():
        if name in ("input_quant", "stem.conv", "stem.act.sigmoid", "blocks.0.0.se.gate", "classifier"):
            mod.register_forward_hook(keep(name))
    with torch.no_grad():
        quant(x)
    q_in = seen["input_quant"][1]
    assert q_in.scale.item() == np.float32(1 / 255) and q_in.zero_point.item() == 0 and not q_in.signed
    assert q_in.bit_width.item() == 8
    for name in ("stem.act.sigmoid", "blocks.0.0.se.gate"):
        out = seen[name][1]
        assert out.scale.item() == 1 / 256 and out.zero_point.item() == 0 and not out.signed
    conv_out = seen["stem.conv"][1]
    assert conv_out.signed and conv_out.bit_width.item() == 8 and conv_out.zero_point.item() == 0
    for name in ("stem.conv", "classifier"):
        layer = dict(quant.named_modules())[name]
        qw = layer.quant_weight()
        w_int = qw.int()
        assert w_int.abs().max().item() == 127 and w_int.min().item() >= -127  # narrow, per channel
        per_channel_max = w_int.reshape(w_int.shape[0], -1).abs().amax(dim=1)
        assert (per_channel_max == 127).all()
        q_input = seen[name][0]
        qb = layer.bias_quant(layer.bias, q_input, qw)
        assert qb.bit_width.item() == 32 and qb.signed
        expected = (q_input.scale * qw.scale).reshape(-1)
        assert torch.allclose(qb.scale.reshape(-1), expected, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["full", "lite"])
def test_qcdq_export_matches_onnxruntime(variant, tmp_path):
    import onnx
    import onnxruntime as ort
    from brevitas.export import export_onnx_qcdq

    spec = make_spec(-4, variant=variant, classes=10, resolution=32, board=None)
    folded = fold_batchnorm(_float_with_bn_stats(spec, batch=32))
    quant = _calibrated_quant(spec, folded, torch.rand(16, 3, 32, 32))
    path = tmp_path / "m.onnx"
    export_onnx_qcdq(quant, torch.rand(1, 3, 32, 32), str(path), dynamo=False)

    graph = onnx.load(str(path)).graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def quantized_downstream(name: str) -> bool:
        """Every path from this tensor reaches a QuantizeLinear, through Clip/Relu at most."""
        nodes = consumers.get(name, [])
        return bool(nodes) and all(
            n.op_type == "QuantizeLinear"
            or (n.op_type in ("Clip", "Relu") and quantized_downstream(n.output[0]))
            for n in nodes
        )

    compute = [n for n in graph.node if n.op_type in ("Conv", "Gemm", "Sigmoid", "Add", "ReduceMean")]
    compute += [n for n in graph.node if n.op_type == "Mul" and all(i in consumers for i in n.input)]
    assert compute
    for node in compute:
        assert quantized_downstream(node.output[0]), f"{node.op_type} {node.name} output is not quantized"

    session = ort.InferenceSession(str(path))
    name = session.get_inputs()[0].name
    x = torch.rand(6, 3, 32, 32)
    for i in range(len(x)):  # one sample at a time: batched torch convs may sum in another order
        with torch.no_grad():
            ref = quant(x[i : i + 1]).numpy()
        out = session.run(None, {name: x[i : i + 1].numpy()})[0]
        assert out.shape == (1, 10)
        np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)
    assert np.abs(ref).max() > 0.1  # the logits are not all quantized to zero
