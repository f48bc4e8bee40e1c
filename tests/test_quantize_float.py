"""QUANTIZE float32 -> int8 / int16 (models converted with float input) in the simulator,
bit-exact with TFLite Micro's AffineQuantize: float32 division, halves away from zero, clamping.
NaN and quotients beyond int32 are undefined in TFLite Micro (an out-of-range cast); there the
simulator saturates, as a Cortex-M FPU converts."""

from __future__ import annotations

import numpy as np
import pytest
from host_engine import HostRuntime
from hypothesis import given, settings
from hypothesis import strategies as st
from tflite_builder import ModelBuilder, random_float_io_cnn, run_tflm

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as simulate


def _quantize_model(seed: int, dtype: str, shape=(1, 3, 4, 5)) -> bytes:
    b = ModelBuilder(np.random.default_rng(seed))
    b.outputs = [b.float_input(shape, dtype)]
    return b.build()


def _hard_floats(rng: np.random.Generator, n: int, shape, scale: float, dtype: str) -> np.ndarray:
    """Exact halves of the scale, values far beyond the output range (still inside int32 after
    the division, where TFLite Micro is defined), and ordinary ones."""
    size = (n, *shape[1:])
    kind = rng.integers(0, 3, size=size)
    halves = (rng.integers(-40000, 40000, size=size) + 0.5) * scale
    huge = rng.uniform(-2.0e9, 2.0e9, size=size) * scale
    plain = rng.standard_normal(size) * scale * (200 if dtype == "int16" else 60)
    return np.choose(kind, [halves, huge, plain]).astype(np.float32)


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_quantize_float32_is_bit_exact_with_tflm(dtype, seed):
    model = _quantize_model(seed, dtype)
    graph = load_tflite(model)
    q = graph.tensors[graph.outputs[0]]
    x = _hard_floats(np.random.default_rng(seed), 8, graph.input_tensors[0].shape, float(q.scale[0]), dtype)
    got = simulate(graph, x)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, run_tflm(model, x))


@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_nan_and_infinities_saturate(dtype):
    """Undefined in TFLite Micro; here defined: +inf/+huge -> max, -inf -> min, NaN -> zero point."""
    graph = load_tflite(_quantize_model(0, dtype, (1, 5)))
    q = graph.tensors[graph.outputs[0]]
    x = np.array([[np.inf, -np.inf, np.nan, 3e38, -3e38]], np.float32)
    lo, hi = np.iinfo(np.dtype(dtype)).min, np.iinfo(np.dtype(dtype)).max
    np.testing.assert_array_equal(simulate(graph, x)[0], [hi, lo, int(q.zero_point[0]), hi, lo])


def test_a_float_io_cnn_simulates_bit_exact():
    model = random_float_io_cnn(np.random.default_rng(5))
    graph = load_tflite(model)
    x = np.random.default_rng(6).standard_normal((4, *graph.input_tensors[0].shape[1:])).astype(np.float32)
    got, want = simulate(graph, x), run_tflm(model, x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_sim_cli_takes_float32_inputs_and_refuses_an_image(cli, tmp_path):
    from test_cli_codegen_run import _one_error_line

    model = tmp_path / "float_io.tflite"
    model.write_bytes(random_float_io_cnn(np.random.default_rng(7)))
    shape = load_tflite(model).input_tensors[0].shape
    x = np.random.default_rng(8).standard_normal((3, *shape[1:])).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = cli("sim", model, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), run_tflm(model.read_bytes(), x))
    (tmp_path / "a.ppm").write_text("P3 1 1 255 1 2 3\n")
    assert "float32" in _one_error_line(cli("sim", model, "--image", tmp_path / "a.ppm"))


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> HostRuntime:
    return HostRuntime(tmp_path_factory.mktemp("float_inputs"))


@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_the_c_kernel_matches_tflm_and_saturates_like_the_simulator(host, dtype):
    """ek_quantize_f32 under ASan/UBSan: bit-exact with TFLite Micro where it is defined (halves,
    far beyond the range), and with the simulator on NaN and infinities."""
    model = _quantize_model(11, dtype, (1, 6, 7))
    graph = load_tflite(model)
    q = graph.tensors[graph.outputs[0]]
    x = _hard_floats(np.random.default_rng(12), 40, graph.input_tensors[0].shape, float(q.scale[0]), dtype)
    engine = generate_engine(graph)
    assert "typedef float model_input_t;" in engine.files["model.h"]
    got = host.run_engine(engine, x)
    np.testing.assert_array_equal(got.reshape(x.shape), run_tflm(model, x))
    odd = np.full((1, 6, 7), np.nan, np.float32)
    odd[0, :3] = [[np.inf] * 7, [-np.inf] * 7, [3e38] * 7]
    np.testing.assert_array_equal(host.run_engine(engine, odd).reshape(odd.shape), simulate(graph, odd))


def test_a_float_io_cnn_in_the_host_engine_matches_tflm(host):
    model = random_float_io_cnn(np.random.default_rng(9))
    graph = load_tflite(model)
    x = (np.random.default_rng(10).standard_normal((4, *graph.input_tensors[0].shape[1:])) * 3).astype(
        np.float32
    )
    want = run_tflm(model, x)
    got = host.run_engine(generate_engine(graph), x)
    np.testing.assert_array_equal(got.reshape(want.shape).view(np.uint32), want.view(np.uint32))


@pytest.mark.toolchain
@pytest.mark.parametrize("runtime", ["native", pytest.param("tflm", marks=pytest.mark.tflm_tree)])
def test_a_float_io_cnn_runs_bit_exact_on_qemu_m4(cli, tmp_path, runtime):
    """float32 in (QUANTIZE -> convolutions -> DEQUANTIZE), float32 out, from `run --input`."""
    model, out = tmp_path / "float_io.tflite", tmp_path / "fw"
    model.write_bytes(random_float_io_cnn(np.random.default_rng(13)))
    result = cli("codegen", model, "--board", "qemu-m4", "--runtime", runtime, "--out", out)
    assert result.returncode == 0, result.stderr
    shape = load_tflite(model).input_tensors[0].shape
    x = (np.random.default_rng(14).standard_normal((3, *shape[1:])) * 3).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test vector: bit-exact with the simulator" in result.stdout
    assert "3 of 3 samples bit-exact" in result.stdout
    got, want = np.load(tmp_path / "y.npy"), run_tflm(model.read_bytes(), x)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_sim_cli_takes_one_input_per_model_input_and_one_output_per_model_output(cli, tmp_path):
    from test_cli_codegen_run import _one_error_line
    from tflite_builder import random_two_heads, random_two_input

    model = tmp_path / "two.tflite"
    model.write_bytes(random_two_input(np.random.default_rng(15)))
    graph = load_tflite(model)
    rng = np.random.default_rng(16)
    xs = [rng.integers(-128, 128, size=(3, *t.shape[1:]), dtype=np.int8) for t in graph.input_tensors]
    for k, x in enumerate(xs):
        np.save(tmp_path / f"x{k}.npy", x)
    given = ["--input", tmp_path / "x0.npy", "--input", tmp_path / "x1.npy"]
    result = cli("sim", model, *given, "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), run_tflm(model.read_bytes(), xs))
    assert "input 1" in _one_error_line(
        cli("sim", model, "--input", tmp_path / "x0.npy", "--input", tmp_path / "x0.npy")
    )
    assert "2 inputs" in _one_error_line(cli("sim", model, "--input", tmp_path / "x0.npy"))

    heads = tmp_path / "heads.tflite"
    heads.write_bytes(random_two_heads(np.random.default_rng(17)))
    x = rng.integers(-128, 128, size=(2, *load_tflite(heads).input_tensors[0].shape[1:]), dtype=np.int8)
    np.save(tmp_path / "h.npy", x)
    ys = ["--output", tmp_path / "scores.npy", "--output", tmp_path / "features.npy"]
    result = cli("sim", heads, "--input", tmp_path / "h.npy", *ys)
    assert result.returncode == 0, result.stderr
    for name, want in zip(("scores", "features"), run_tflm(heads.read_bytes(), x), strict=True):
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), want)
    three = [*ys, "--output", tmp_path / "z.npy"]
    assert "2 outputs" in _one_error_line(cli("sim", heads, "--input", tmp_path / "h.npy", *three))


def test_inspect_and_validate_take_a_float_io_model(cli, tmp_path):
    model = tmp_path / "float_io.tflite"
    model.write_bytes(random_float_io_cnn(np.random.default_rng(18)))
    result = cli("inspect", model)
    assert result.returncode == 0, result.stderr
    assert "float32 scale/zp -" in result.stdout
    result = cli("validate", model, "--samples", "4")
    assert result.returncode == 0, result.stderr
    assert "random float32 samples" in result.stdout and "bit-exact with TFLite Micro" in result.stdout
