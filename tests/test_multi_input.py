"""Models with several inputs as firmware: ``codegen`` packs them into the test vector, ``run``
takes one ``--input`` per model input and feeds them packed to ``model_invoke()`` in QEMU (the
native engine and TensorFlow Lite Micro), bit-exact with TFLite Micro; a wrong count of ``--input`` files, or one of the wrong type or
shape, is one line, exit 2. Inputs of different types (int8 and int16) are packed as bytes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from builder16x8 import random_int16, random_mixed_inputs
from host_engine import HostRuntime
from test_cli_codegen_run import _one_error_line
from tflite_builder import random_two_input, run_tflm

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as simulate


def _model(tmp_path, seed: int = 0):
    path = tmp_path / "two.tflite"
    path.write_bytes(random_two_input(np.random.default_rng(seed)))
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


def _mixed(graph, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    x8, x16 = graph.input_tensors
    return [
        rng.integers(-128, 128, size=(n, *x8.shape[1:]), dtype=np.int8),
        random_int16(rng, x16.shape, batch=n),
    ]


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> HostRuntime:
    return HostRuntime(tmp_path_factory.mktemp("mixed_inputs"))


@pytest.mark.parametrize("seed", range(2))
def test_int8_and_int16_inputs_in_the_host_engine_match_tflite_micro(host, seed):
    model = random_mixed_inputs(np.random.default_rng(seed))
    graph = load_tflite(model)
    assert [t.dtype for t in graph.input_tensors] == ["int8", "int16"]
    xs = _mixed(graph, 3, seed + 7)
    want = run_tflm(model, xs)
    for g, w in zip(simulate(graph, xs), want, strict=True):
        np.testing.assert_array_equal(g, w)
    engine = generate_engine(graph)
    header = engine.files["model.h"]
    assert "typedef int8_t model_input0_t;" in header and "typedef int16_t model_input1_t;" in header
    assert "model_input_t;" not in header  # no one type for both
    for defines in ((), ("HARNESS_IN_PLACE",)):
        got = host.run_engine(engine, xs, defines=defines)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g.reshape(w.shape), w)


def test_run_refuses_an_input_of_the_wrong_type_or_shape(cli, tmp_path):
    model, out = tmp_path / "mixed.tflite", tmp_path / "fw"
    model.write_bytes(random_mixed_inputs(np.random.default_rng(1)))
    assert cli("codegen", model, "--board", "qemu-m4", "--out", out, "--no-build").returncode == 0
    graph = load_tflite(model)
    x8, x16 = _mixed(graph, 2, 1)
    np.save(tmp_path / "x8.npy", x8)
    np.save(tmp_path / "x16.npy", x16)
    np.save(tmp_path / "short.npy", x16[:, :1])
    swapped = cli("run", out, "--input", tmp_path / "x16.npy", "--input", tmp_path / "x8.npy")
    line = _one_error_line(swapped)
    assert "x16.npy" in line and "input 0" in line and "int8" in line
    line = _one_error_line(cli("run", out, "--input", tmp_path / "x8.npy", "--input", tmp_path / "short.npy"))
    assert "short.npy" in line and "input 1" in line and "int16" in line


@pytest.mark.toolchain
def test_int8_and_int16_inputs_run_bit_exact_on_qemu_m4(cli, tmp_path):
    model, out = tmp_path / "mixed.tflite", tmp_path / "fw"
    model.write_bytes(random_mixed_inputs(np.random.default_rng(2)))
    result = cli("codegen", model, "--board", "qemu-m4", "--out", out)
    assert result.returncode == 0, result.stderr
    graph = load_tflite(model)
    xs = _mixed(graph, 3, 8)
    for k, x in enumerate(xs):
        np.save(tmp_path / f"x{k}.npy", x)
    args = ["--input", tmp_path / "x0.npy", "--input", tmp_path / "x1.npy"]
    result = cli("run", out, *args, "--output", tmp_path / "y0.npy", "--output", tmp_path / "y1.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test vector: bit-exact with the simulator" in result.stdout
    assert result.stdout.count("3 of 3 samples bit-exact") == 2
    for k, want in enumerate(run_tflm(model.read_bytes(), xs)):
        np.testing.assert_array_equal(np.load(tmp_path / f"y{k}.npy"), want)
    report = json.loads((out / "report.json").read_text())
    assert [i["dtype"] for i in report["inputs"]] == ["int8", "int16"]


@pytest.mark.toolchain
@pytest.mark.tflm_tree
def test_tflm_runtime_takes_mixed_inputs_and_typed_outputs_on_qemu_m4(cli, tmp_path):
    """TFLite Micro's firmware feeds each input and dumps each output in its own type: int8 and
    int16 in; int16, int8, float32 and int32 out."""
    model, out = tmp_path / "mixed.tflite", tmp_path / "fw"
    model.write_bytes(random_mixed_inputs(np.random.default_rng(3), typed=True))
    result = cli("codegen", model, "--board", "qemu-m4", "--runtime", "tflm", "--out", out)
    assert result.returncode == 0, result.stderr
    graph = load_tflite(model)
    xs = _mixed(graph, 2, 9)
    for k, x in enumerate(xs):
        np.save(tmp_path / f"x{k}.npy", x)
    ys = [a for k in range(4) for a in ("--output", tmp_path / f"y{k}.npy")]
    result = cli("run", out, "--input", tmp_path / "x0.npy", "--input", tmp_path / "x1.npy", *ys)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bit-exact: yes" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert [o["dtype"] for o in report["outputs"]] == ["int16", "int8", "float32", "int32"]
    for k, want in enumerate(run_tflm(model.read_bytes(), xs)):
        got = np.load(tmp_path / f"y{k}.npy")
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.view(np.uint8), np.ascontiguousarray(want).view(np.uint8))


def test_a_float16_input_is_refused_in_one_line():
    """QUANTIZE reads float32 only (as TFLite Micro): a float16 input is refused, naming the op and input."""
    from tflite_builder import ModelBuilder

    from mcu_effnet.errors import UserError

    b = ModelBuilder(np.random.default_rng(0))
    x = b.add_tensor("pixels", (1, 2, 2, 3), "float16")
    b.inputs.append(x)
    q = b.add_tensor("q", (1, 2, 2, 3), "int8", 0.02, 0)
    b.add_op("QUANTIZE", [x], [q])
    b.outputs = [b.add(q, q)]
    with pytest.raises(UserError, match="model input 'pixels' is float16") as info:
        load_tflite(b.build())
    assert "QUANTIZE" in str(info.value) and "\n" not in str(info.value)
