"""Models with several outputs, of one type or several (int8 scores, float32 features from a
DEQUANTIZE, int32 or int64 ARG_MAX indices): the engine writes each to its own place (``model_invoke_n``)
or packed as bytes (``model_invoke``); ``codegen`` + ``run`` compare each output with the
simulator, in QEMU, and TFLite Micro is the oracle. A wrong count of ``--output`` is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from data_movement_builder import split, transpose
from host_engine import HostRuntime
from test_cli_codegen_run import _one_error_line
from tflite_builder import ModelBuilder, random_two_heads, run_tflm

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as simulate


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> HostRuntime:
    return HostRuntime(tmp_path_factory.mktemp("multi_output"))


def _split_outputs(rng: np.random.Generator) -> bytes:
    """A convolution whose channels are SPLIT straight into the model's outputs."""
    b = ModelBuilder(rng)
    size, parts = int(rng.integers(3, 7)), int(rng.integers(2, 4))
    x = b.input((1, size, size, 3))
    y = b.conv2d(x, 2 * parts, (3, 3), (1, 1), "SAME", activation="RELU")
    b.outputs = split(b, y, 3, parts)
    return b.build()


def _nchw_two_outputs(rng: np.random.Generator) -> bytes:
    """An NCHW input TRANSPOSEd to NHWC (absorbed into the input copy), then two outputs."""
    b = ModelBuilder(rng)
    size = int(rng.integers(3, 7))
    x = b.input((1, 3, size, size))
    y = b.conv2d(transpose(b, x, [0, 2, 3, 1]), 4, (3, 3), (2, 2), "SAME", activation="RELU")
    b.outputs = [y, b.mean(y, (1, 2), keep_dims=True)]
    return b.build()


def _batch(graph, n: int, seed: int) -> np.ndarray:
    t = graph.input_tensors[0]
    return np.random.default_rng(seed).integers(-128, 128, size=(n, *t.shape[1:]), dtype=np.int8)


def _assert_same(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        w = np.asarray(w)
        assert g.dtype == w.dtype
        # bits: a float32 output is compared exactly
        np.testing.assert_array_equal(
            g.reshape(len(w), -1).view(np.uint8), w.reshape(len(w), -1).view(np.uint8)
        )


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kind", ["heads", "typed heads", "split", "nchw"])
def test_several_outputs_in_the_host_engine_match_tflite_micro(host, kind, seed):
    rng = np.random.default_rng(seed)
    if kind in ("split", "nchw"):
        model = (_split_outputs if kind == "split" else _nchw_two_outputs)(rng)
    else:
        model = random_two_heads(rng, typed=kind == "typed heads")
    graph = load_tflite(model)
    x = _batch(graph, 4, seed + 10)
    want = run_tflm(model, x)
    _assert_same(simulate(graph, x), want)
    engine = generate_engine(graph)
    assert bool(engine.absorbed) == (kind == "nchw")  # the input TRANSPOSE: a gather as it is copied in
    _assert_same(host.run_engine(engine, x), want)
    if kind != "nchw":  # written in place, an input is in the first op's layout (NHWC)
        # each input and output read and written in its own arena place (model_invoke_n)
        _assert_same(host.run_engine(engine, x, defines=("HARNESS_IN_PLACE",)), want)


def test_model_h_types_each_output(tmp_path):
    engine = generate_engine(load_tflite(random_two_heads(np.random.default_rng(1), typed=True)))
    header = engine.files["model.h"]
    assert "#define MODEL_NUM_OUTPUTS 3" in header
    assert "typedef int8_t model_output0_t;" in header and "typedef float model_output1_t;" in header
    assert "typedef int32_t model_output2_t;" in header
    assert "model_output_t;" not in header  # no one type for all of them
    assert "int model_invoke(const model_input_t *input, void *output);" in header


def test_run_refuses_a_wrong_count_of_outputs(cli, tmp_path):
    model, out = tmp_path / "heads.tflite", tmp_path / "fw"
    model.write_bytes(random_two_heads(np.random.default_rng(2)))
    assert cli("codegen", model, "--board", "qemu-m4", "--out", out, "--no-build").returncode == 0
    report = json.loads((out / "report.json").read_text())
    assert [o["dtype"] for o in report["outputs"]] == ["int8", "int8"]
    np.save(tmp_path / "x.npy", _batch(load_tflite(model), 2, 3))
    line = _one_error_line(cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy"))
    assert "--output given 1 times" in line and "2 outputs" in line


@pytest.mark.toolchain
def test_three_typed_outputs_run_bit_exact_on_qemu_m4(cli, tmp_path):
    """int8 scores, float32 features and int64 ARG_MAX indices (TFLite's default type) from one
    firmware. TFLite Micro, the oracle, writes int32 indices only: it runs the same model with
    int32 indices (same seed, same weights), whose values the int64 ones must equal."""
    model, out = tmp_path / "heads.tflite", tmp_path / "fw"
    model.write_bytes(random_two_heads(np.random.default_rng(4), typed=True, index_dtype="int64"))
    twin = random_two_heads(np.random.default_rng(4), typed=True, index_dtype="int32")
    result = cli("codegen", model, "--board", "qemu-m4", "--out", out)
    assert result.returncode == 0, result.stderr
    graph = load_tflite(model)
    x = _batch(graph, 3, 5)
    np.save(tmp_path / "x.npy", x)
    ys = [tmp_path / f"y{k}.npy" for k in range(3)]
    args = [a for y in ys for a in ("--output", y)]
    result = cli("run", out, "--input", tmp_path / "x.npy", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test vector: bit-exact with the simulator" in result.stdout
    for k in range(3):
        assert f"--input: output {k} (" in result.stdout
    assert result.stdout.count("3 of 3 samples bit-exact") == 3
    got = [np.load(y) for y in ys]
    assert got[2].dtype == np.int64
    want = run_tflm(twin, x)
    _assert_same(got[:2], want[:2])
    np.testing.assert_array_equal(got[2], want[2])
    report = json.loads((out / "report.json").read_text())
    assert [o["dtype"] for o in report["outputs"]] == ["int8", "float32", "int64"]
    assert all(o["bit_exact"] for o in report["outputs"])
