"""Our exported EfficientNets (full and lite) in the simulator, bit-exact with TFLite Micro.

Each variant is built at a tiny φ and 32 px, calibrated on random images, exported to QCDQ
ONNX by Brevitas and written to int8 ``.tflite`` by the project's exporter; then 128
random int8 inputs go through TFLite Micro and ``mcu_effnet.sim.run``, which must agree on
every output element and on every intermediate tensor TFLite Micro lets us read.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
warnings.filterwarnings("ignore")  # Brevitas and torch.onnx are chatty

from tflite_builder import run_tflm  # noqa: E402

from mcu_effnet.graph import load_tflite  # noqa: E402
from mcu_effnet.oracle import tflm_all_tensors  # noqa: E402
from mcu_effnet.sim import run  # noqa: E402

_EXPORTS: dict[tuple[str, float], bytes] = {}  # one export per variant serves every test here


def _export(tmp_path, variant: str, phi: float) -> bytes:
    if (variant, phi) not in _EXPORTS:
        _EXPORTS[variant, phi] = _export_once(tmp_path, variant, phi)
    return _EXPORTS[variant, phi]


def _export_once(tmp_path, variant: str, phi: float) -> bytes:
    from brevitas.export import export_onnx_qcdq
    from brevitas.graph.calibrate import calibration_mode

    from mcu_effnet.arch import make_spec
    from mcu_effnet.models import build_quant
    from mcu_effnet.quant.tflite_export import export_tflite

    torch.manual_seed(0)
    spec = make_spec(phi, variant=variant, classes=10, resolution=32, board=None)
    model = build_quant(spec)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad(), calibration_mode(model):
        for _ in range(3):
            model(torch.rand((4, 3, 32, 32), generator=gen))
    model.eval()
    onnx_path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx_qcdq(model, torch.rand((1, 3, 32, 32)), str(onnx_path), dynamo=False)
    out = tmp_path / "model.tflite"
    export_tflite(onnx_path, out, labels=[str(i) for i in range(10)], check=False)
    return out.read_bytes()


# _export caches per process: these tests share one worker (test_sim_efficientnet._export).
@pytest.mark.xdist_group("efficientnet_exports")
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["full", "lite"])
def test_exported_efficientnet_bit_exact(tmp_path, variant: str) -> None:
    model = _export(tmp_path, variant, -6)
    graph = load_tflite(model)
    kinds = {op.kind for op in graph.ops}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"} <= kinds
    if variant == "full":
        assert {"LOGISTIC", "MUL", "ADD"} <= kinds
    shape = graph.tensors[graph.inputs[0]].shape
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(128, *shape[1:])).astype(np.int8)
    expected = run_tflm(model, x)
    got = run(graph, x)
    assert got.shape == expected.shape
    assert int((got != expected).sum()) == 0
    assert len(np.unique(expected)) > 5
    # layer by layer, on a few samples: every op output equal
    reference = tflm_all_tensors(model, x[:4])
    captured = run(graph, x[:4], capture=True)
    for op in graph.ops:
        for i in op.outputs:
            np.testing.assert_array_equal(captured[i], reference[i], err_msg=f"op {op.index} {op.kind}")


@pytest.mark.xdist_group("efficientnet_exports")
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["full", "lite"])
def test_spec_graph_is_the_exported_graph(tmp_path, variant: str) -> None:
    """Fitting sizes ``fitting.spec_graph`` (no torch, no weights) in place of the exported model:
    the same ops with the same attributes and tensor shapes, so the same plan and engine layout."""
    from mcu_effnet.arch import make_spec
    from mcu_effnet.codegen.engine import engine_size
    from mcu_effnet.fitting.spec_graph import spec_graph

    exported = load_tflite(_export(tmp_path, variant, -6))
    ours = spec_graph(make_spec(-6, variant=variant, classes=10, resolution=32, board=None))
    assert [op.kind for op in ours.ops] == [op.kind for op in exported.ops]
    for a, b in zip(exported.ops, ours.ops, strict=True):
        shapes = [
            [g.tensors[t].shape if t >= 0 else None for t in (*op.inputs, *op.outputs)]
            for g, op in ((exported, a), (ours, b))
        ]
        assert shapes[0] == shapes[1], f"op {a.index} {a.kind}"
        assert a.attrs == b.attrs, f"op {a.index} {a.kind}"
    for dsp in (False, True):
        assert engine_size(ours, dsp=dsp, widen_budget=0) == engine_size(exported, dsp=dsp, widen_budget=0)
