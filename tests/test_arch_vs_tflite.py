"""The activation estimate of mcu_effnet.arch against the int8 graph the exporter really writes:
op for op, the bytes live under a free-after-last-use planner are the same."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from mcu_effnet.arch import activation_schedule, make_spec
from mcu_effnet.models import build_float, build_quant, fold_batchnorm

warnings.filterwarnings("ignore", message=".*fast_hadamard_transform.*")


def _exported_graph(spec, tmp_path):
    from brevitas.graph.calibrate import calibration_mode

    from mcu_effnet.graph import load_tflite
    from mcu_effnet.quant.onnx_export import export_qcdq
    from mcu_effnet.quant.tflite_export import export_tflite

    torch.manual_seed(0)
    res = spec.resolution
    model = build_float(spec)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        model.train()(torch.rand(16, 3, res, res))
    quant = build_quant(spec)
    quant.load_state_dict(fold_batchnorm(model.eval()).state_dict(), strict=False)
    with torch.no_grad(), calibration_mode(quant):
        quant(torch.rand(8, 3, res, res))
    onnx_path, tflite_path = tmp_path / "m.onnx", tmp_path / "m.tflite"
    export_qcdq(quant.eval(), res, onnx_path)
    export_tflite(onnx_path, tflite_path, check=False)
    return load_tflite(str(tflite_path))


def _live_bytes(graph) -> list[int]:
    """Per op, bytes of the non-constant tensors alive (written earlier or now, read now or later)."""
    first = {t: -1 for t in graph.inputs}
    last: dict[int, int] = {}
    for i, op in enumerate(graph.ops):
        for t in op.inputs:
            if t >= 0 and not graph.tensors[t].is_constant:
                last[t] = i
        for t in op.outputs:
            first.setdefault(t, i)
            last.setdefault(t, i)
    for t in graph.outputs:
        last[t] = len(graph.ops)
    return [
        sum(graph.tensors[t].nbytes for t in first if first[t] <= i <= last[t]) for i in range(len(graph.ops))
    ]


@pytest.mark.slow
@pytest.mark.parametrize("variant,resolution", [("full", 32), ("lite", 40)])
def test_estimate_equals_exported_graph(variant, resolution, tmp_path):
    spec = make_spec(-4, variant=variant, classes=10, resolution=resolution, board=None)
    graph = _exported_graph(spec, tmp_path)
    schedule = activation_schedule(spec)
    assert len(graph.ops) == len(schedule.steps)
    assert _live_bytes(graph) == schedule.live_bytes()
    assert max(_live_bytes(graph)) == spec.peak_activation_bytes
