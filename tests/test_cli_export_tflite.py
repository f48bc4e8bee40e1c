"""``mcu-effnet export MODEL.onnx --out MODEL.tflite`` through the installed command.

Bad input gives one error line, exit code 2 and no output file; a good QCDQ model gives the
file, its labels and the JSON report.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_tflite_export import Classifier, _bad_onnx, calibrate, to_qcdq

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize(
    "kind, message",
    [
        ("float", "needs QAT or calibration first"),
        ("clip", "Clip with min 0.5 and max 6 has no TFLite int8 equivalent"),
        ("tanh", "(Tanh) has no int8 TFLite equivalent"),
        ("sigmoid", "TFLite's int8 LOGISTIC always outputs scale 1/256"),
        ("garbage", "not a readable ONNX model"),
        ("missing", "no such file"),
    ],
)
def test_cli_refuses_bad_onnx_in_one_line(cli, tmp_path, kind, message):
    onnx_path = _bad_onnx(kind, tmp_path)
    out = tmp_path / "out.tflite"
    result = cli("export", onnx_path, "--out", out)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcu-effnet: error:"), result.stderr
    assert message in lines[0], lines[0]
    if kind not in ("garbage", "missing"):
        assert onnx_path.name in lines[0]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_cli_exports_onnx_with_labels_and_json_report(cli, tmp_path):
    torch.manual_seed(11)
    onnx_path = to_qcdq(calibrate(Classifier("mean"), (1, 3, 8, 8)), (1, 3, 8, 8), tmp_path / "c.onnx")
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\nfish\nfrog\n")
    images = np.random.default_rng(3).integers(0, 256, size=(16, 8, 8, 3), dtype=np.uint8)
    np.save(tmp_path / "val.npy", images)
    out = tmp_path / "c.tflite"
    result = cli(
        "export", onnx_path, "--out", out, "--labels", labels, "--inputs", tmp_path / "val.npy", "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["check"]["passed"] and report["check"]["input_source"] == "validation images"
    assert report["check"]["tflm"]["samples"] == 16
    assert report["tflite_bytes"] == out.stat().st_size and report["labels"] == 5
    assert report["ops"] == {"CONV_2D": 1, "MEAN": 1, "FULLY_CONNECTED": 1}


def test_cli_onnx_options_are_refused_for_a_run_folder(cli, tmp_path):
    result = cli("export", tmp_path, "--out", tmp_path / "x.tflite")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"mcu-effnet: error: --out: only for a .onnx file, not for the run folder {tmp_path}"
    ]
