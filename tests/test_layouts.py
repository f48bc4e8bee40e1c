"""PyTorch-origin layouts: the input TRANSPOSE runs as the engine's input copy, the TRANSPOSE
before a classifier's RESHAPE goes into the FULLY_CONNECTED's weight order, any other runs as a
kernel; a PyTorch-style MobileNetV2 end to end (host engine, ``codegen`` + ``run`` in QEMU)
bit-exact with TFLite Micro."""

from __future__ import annotations

import re

import numpy as np
import pytest
from data_movement_builder import pytorch_mobilenet_v2, transpose
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.codegen.layout import absorb_transposes
from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as sim_run


def _inputs(graph, n: int, seed: int) -> np.ndarray:
    shape = graph.input_tensors[0].shape
    return np.random.default_rng(seed).integers(-128, 128, size=(n, *shape[1:]), dtype=np.int8)


@pytest.fixture(scope="module")
def mobilenet() -> bytes:
    return pytorch_mobilenet_v2(np.random.default_rng(0))


def test_both_pytorch_transposes_are_absorbed(mobilenet):
    graph = load_tflite(mobilenet)
    layout = absorb_transposes(graph)
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("TRANSPOSE") == 2
    assert [(a.into, a.perm) for a in layout.absorbed] == [
        ("input", (0, 2, 3, 1)),
        ("fully_connected", (0, 3, 1, 2)),
    ]
    assert "TRANSPOSE" not in [op.kind for op in layout.graph.ops]
    assert len(graph.ops) == len(layout.graph.ops) + 2  # the loaded graph is left as it is
    engine = generate_engine(graph)
    assert (
        "ek_gather(" in engine.files["model.c"] and "absorbed into the input copy" in engine.files["model.c"]
    )
    assert "FULLY_CONNECTED's weight order" in engine.files["model.c"]


def test_absorbed_engine_is_bit_exact_and_smaller(host, mobilenet):
    graph = load_tflite(mobilenet)
    x = _inputs(graph, 24, 1)
    expected = np.asarray(run_tflm(mobilenet, x))
    np.testing.assert_array_equal(sim_run(graph, x), expected)
    absorbed, kernels = generate_engine(graph), generate_engine(graph, absorb=False)
    np.testing.assert_array_equal(host.run_engine(absorbed, x), expected.reshape(len(x), -1))
    np.testing.assert_array_equal(host.run_engine(kernels, x), expected.reshape(len(x), -1))
    # two ops fewer, and the NCHW input no longer takes arena bytes beside its NHWC copy
    assert len(absorbed.layers) == len(kernels.layers) - 2
    assert (
        graph.inputs[0] in kernels.plan.tensor_buffer and graph.inputs[0] not in absorbed.plan.tensor_buffer
    )
    assert (
        absorbed.plan.live_bytes[0] < kernels.plan.live_bytes[0]
        and absorbed.arena_bytes <= kernels.arena_bytes
    )
    # a caller writing the first op's layout in place gets the same outputs
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    got = host.run_engine(absorbed, nhwc, defines=("HARNESS_IN_PLACE",))
    np.testing.assert_array_equal(got, expected.reshape(len(x), -1))


def _mid_transpose_model(rng: np.random.Generator, size: int, channels: int) -> bytes:
    """conv -> TRANSPOSE swapping H and W (not absorbable) -> conv."""
    b = ModelBuilder(rng)
    x = b.input((1, size, size, 3))
    h = b.conv2d(x, channels, (3, 3), activation="RELU6")
    t = transpose(b, h, [0, 2, 1, 3])
    b.outputs = [b.conv2d(t, 4, (1, 1))]
    return b.build()


def test_other_transposes_run_as_kernels(host):
    model = _mid_transpose_model(np.random.default_rng(3), 6, 5)
    graph = load_tflite(model)
    engine = generate_engine(graph)
    assert engine.absorbed == [] and "ek_gather(&op1_transpose" in engine.files["model.c"]
    x = _inputs(graph, 16, 4)
    np.testing.assert_array_equal(host.run_engine(engine, x), np.asarray(run_tflm(model, x)).reshape(16, -1))


def test_inspect_says_what_is_absorbed(cli, tmp_path, mobilenet):
    model = tmp_path / "mnv2.tflite"
    model.write_bytes(mobilenet)
    result = cli("inspect", model)
    assert result.returncode == 0, result.stderr
    assert "native engine: op 0 TRANSPOSE (perm 0 2 3 1) absorbed into the input copy" in result.stdout
    assert (
        "op 14 TRANSPOSE (perm 0 3 1 2) absorbed into op 16 FULLY_CONNECTED's weight order" in result.stdout
    )


@pytest.mark.toolchain
def test_pytorch_mobilenet_v2_runs_bit_exact_in_qemu(cli, tmp_path, mobilenet):
    model = tmp_path / "mnv2.tflite"
    model.write_bytes(mobilenet)
    out = tmp_path / "fw"
    result = cli("codegen", model, "--board", "qemu-m4", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "2 TRANSPOSE(s) absorbed" in result.stdout
    graph = load_tflite(model)
    x = _inputs(graph, 3, 5)
    np.save(tmp_path / "x.npy", x)
    result = cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 of 3 samples bit-exact" in result.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.asarray(run_tflm(mobilenet, x)))


@pytest.mark.parametrize("runtime", ["native", "tflm"])
def test_unabsorbable_transpose_too_large_for_the_board(cli, tmp_path, runtime):
    model = tmp_path / "big.tflite"
    model.write_bytes(_mid_transpose_model(np.random.default_rng(6), 96, 16))
    out = tmp_path / "fw"
    result = cli("codegen", model, "--board", "stm32f405", "--runtime", runtime, "--out", out, "--no-build")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mcu-effnet: error: "), result.stderr
    needed, has = re.search(r"needs ([\d.]+) KB SRAM .*at most ([\d.]+) KB contiguous", lines[0]).groups()
    assert float(needed) > float(has)
    # The TRANSPOSE named with its output: 96x96x16 int8 codes swapped on H and W.
    copy = 96 * 96 * 16
    assert "op 1 TRANSPOSE (perm 0 2 1 3) is not absorbed" in lines[0]
    assert f"holds a 1x96x96x16 int8 copy of {copy / 1024:.0f} KB ({copy} bytes)" in lines[0]
    assert not out.exists()


def test_classifier_weights_shared_with_another_layer_are_left_alone(host):
    """Permuting weights another FULLY_CONNECTED also reads would change that layer: kept a kernel."""
    b = ModelBuilder(np.random.default_rng(8))
    h = b.conv2d(b.input((1, 2, 3, 3)), 4, (1, 1))
    r1 = b.reshape(transpose(b, h, [0, 3, 1, 2]), (1, 24))
    fc1 = b.fully_connected(r1, 5)
    w, bias = b.operators[-1].inputs[1:3]
    r2 = b.reshape(h, (1, 24))
    fc2 = b.activation("fc", (1, 5), *b.qparams(fc1))
    b.add_op("FULLY_CONNECTED", [r2, w, bias], [fc2])
    b.outputs = [b.add(fc1, fc2)]
    model = b.build()
    graph = load_tflite(model)
    assert absorb_transposes(graph).absorbed == []
    x = _inputs(graph, 16, 9)
    expected = np.asarray(run_tflm(model, x)).reshape(16, -1)
    np.testing.assert_array_equal(host.run_engine(generate_engine(graph), x), expected)
