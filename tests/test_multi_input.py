"""Models with several inputs (and a float output) as firmware: ``codegen`` packs them into the test vector, ``run``
takes one ``--input`` per model input and feeds them packed to ``model_invoke()`` in QEMU,
bit-exact with TFLite Micro; a wrong count of ``--input`` files is one line, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli_codegen_run import _one_error_line
from tflite_builder import random_two_input, run_tflm

from mcu_effnet.graph import load_tflite


def _model(tmp_path, seed: int = 0, dequantize: bool = False):
    path = tmp_path / "two.tflite"
    path.write_bytes(random_two_input(np.random.default_rng(seed), dequantize))
    return path


def _inputs(graph, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=(n, *t.shape[1:]), dtype=np.int8) for t in graph.input_tensors]


def test_run_refuses_a_wrong_count_of_inputs(cli, tmp_path):
    model, out = _model(tmp_path), tmp_path / "fw"
    assert cli("codegen", model, "--board", "qemu-m4", "--out", out, "--no-build").returncode == 0
    report = json.loads((out / "report.json").read_text())
    assert len(report["input_shapes"]) == 2
    x1, _ = _inputs(load_tflite(model), 2, seed=1)
    np.save(tmp_path / "x1.npy", x1)
    line = _one_error_line(cli("run", out, "--input", tmp_path / "x1.npy"))
    assert "--input given 1 times" in line and "2 inputs" in line


def test_tflm_runtime_refuses_several_inputs(cli, tmp_path):
    result = cli(
        "codegen", _model(tmp_path), "--board", "qemu-m4", "--runtime", "tflm", "--out", tmp_path / "fw"
    )
    line = _one_error_line(result)
    assert "2 inputs" in line and "tflm" in line
    assert not (tmp_path / "fw").exists()


@pytest.mark.toolchain
def test_two_input_model_with_a_float_output_runs_bit_exact_on_qemu_m4(cli, tmp_path):
    """Two int8 inputs, a float32 output (DEQUANTIZE): the firmware's floats are TFLite Micro's bits."""
    model, out = _model(tmp_path, seed=3, dequantize=True), tmp_path / "fw"
    result = cli("codegen", model, "--board", "qemu-m4", "--out", out)
    assert result.returncode == 0, result.stderr
    graph = load_tflite(model)
    xs = _inputs(graph, 3, seed=4)
    for k, x in enumerate(xs):
        np.save(tmp_path / f"x{k}.npy", x)
    result = cli(
        "run",
        out,
        "--input",
        tmp_path / "x0.npy",
        "--input",
        tmp_path / "x1.npy",
        "--output",
        tmp_path / "y.npy",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test vector: bit-exact with the simulator" in result.stdout
    assert "3 of 3 samples bit-exact" in result.stdout
    expected = np.asarray(run_tflm(model.read_bytes(), xs), dtype=np.float32)
    got = np.load(tmp_path / "y.npy")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
