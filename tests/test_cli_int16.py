"""A 16x8 model through the CLI paths that take user data: an image quantizes to the model's int16
input parameters; an int8 .npy given to a 16x8 model is refused in one line naming the flag (or
file) and both types, exit 2, before anything is built."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from builder16x8 import random_16x8_cnn
from PIL import Image
from tflite_builder import run_tflm

from mcu_effnet.graph import load_tflite


@pytest.fixture(scope="module")
def model16(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli16")
    path = folder / "m16.tflite"
    path.write_bytes(random_16x8_cnn(np.random.default_rng(11)))
    tin = load_tflite(path.read_bytes()).input_tensors[0]
    assert tin.dtype == "int16"
    x8 = folder / "x8.npy"
    np.save(x8, np.zeros((2, *tin.shape[1:]), dtype=np.int8))
    return path, x8


def _one_error_line(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mcu-effnet: error: "), result.stderr
    return lines[0]


def _in_process(capsys, *args) -> SimpleNamespace:
    """The CLI's main() in this process (what the console script runs, without a subprocess's
    seconds of imports): returncode, stdout, stderr."""
    from mcu_effnet.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)


@pytest.mark.parametrize("verb", ["sim", "compare", "run"])
def test_int8_inputs_for_a_16x8_model_are_refused_in_one_line(capsys, tmp_path, model16, verb):
    model, x8 = model16
    if verb == "sim":
        result, named = _in_process(capsys, "sim", model, "--input", x8), str(x8)
    elif verb == "compare":
        out = tmp_path / "cmp"
        result = _in_process(capsys, "compare", model, "--board", "qemu-m4", "--inputs", x8, "--out", out)
        named = f"--inputs {x8}"
        assert not out.exists()
    else:
        project = tmp_path / "fw"
        made = _in_process(capsys, "codegen", model, "--board", "qemu-m4", "--out", project, "--no-build")
        assert made.returncode == 0, made.stderr
        result, named = _in_process(capsys, "run", project, "--input", x8), f"--input {x8}"
        assert not (project / "build").exists()
    line = _one_error_line(result)
    assert named in line and "int8" in line and "int16" in line, line


def test_an_image_quantizes_to_the_int16_input(cli, tmp_path, model16):
    model, _ = model16
    graph = load_tflite(model.read_bytes())
    tin = graph.input_tensors[0]
    _, h, w, c = tin.shape
    pixels = np.random.default_rng(3).integers(0, 256, size=(h, w, c), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "img.png")  # the input's own size: no resizing
    result = cli("sim", model, "--image", tmp_path / "img.png", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stderr
    # pixel / 255 on the int16 grid, rounded half away from zero (TFLite's QUANTIZE)
    real = pixels.astype(np.float64) / 255.0 / float(tin.scale[0])
    codes = np.sign(real) * np.floor(np.abs(real) + 0.5) + int(tin.zero_point[0])
    x = np.clip(codes, -32768, 32767).astype(np.int16)[None]
    expected = np.asarray(run_tflm(model.read_bytes(), x))
    assert np.unique(x).size > 16  # a real spread of int16 codes, not a saturated image
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy").reshape(expected.shape), expected)


def _fc16_with_its_float_onnx(rng: np.random.Generator, tmp_path) -> tuple:
    """A 16x8 FULLY_CONNECTED and the same layer in float ONNX (dequantized weights and bias)."""
    import onnx
    from builder16x8 import Builder16x8
    from onnx import TensorProto, helper, numpy_helper

    b = Builder16x8(rng)
    b.outputs = [b.fully_connected(b.input((1, 12)), 5, per_channel=True)]
    model = tmp_path / "fc16.tflite"
    model.write_bytes(b.build())
    graph = load_tflite(model.read_bytes())
    x_t, w_t, b_t = (graph.tensors[i] for i in graph.ops[0].inputs)
    w_scale = np.asarray(w_t.scale, np.float64).reshape(-1, 1)
    weights = (np.asarray(w_t.data, np.float64) * w_scale).T.astype(np.float32)
    bias = (np.asarray(b_t.data, np.float64) * float(x_t.scale[0]) * w_scale[:, 0]).astype(np.float32)
    onnx_graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"])],
        "fc16",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    onnx_path = tmp_path / "fc16.onnx"
    onnx.save(helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", 13)]), onnx_path)
    return model, onnx_path


def test_validate_onnx_compares_on_the_int16_output_grid(tmp_path):
    from mcu_effnet.sim.crosscheck import validate

    model, onnx_path = _fc16_with_its_float_onnx(np.random.default_rng(12), tmp_path)
    report = validate(model, onnx_path=onnx_path, samples=20)
    rows = {c.reference: c for c in report.comparisons}
    onnx_row = rows["ONNX (QCDQ, float)"]
    assert report.bit_exact and onnx_row.ran, onnx_row.error
    # The float layer lands within rounding of the int16 codes (not clipped to int8's range).
    assert onnx_row.max_lsb <= 1 and onnx_row.within_1lsb_pct == 100.0


def _qdq_conv_onnx(path, activation_dtype: type) -> None:
    """x → Q/DQ → Conv 1x1 (int8 Q/DQ weights) → Q/DQ, activations quantized to ``activation_dtype``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).integers(-127, 128, (4, 3, 1, 1)).astype(np.int8)
    constants = {
        "s": np.array(0.01, np.float32),
        "z": np.array(0, activation_dtype),
        "wq": weights,
        "ws": np.array(0.02, np.float32),
        "wz": np.array(0, np.int8),
        "os": np.array(0.05, np.float32),
    }
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"]),
        helper.make_node("Conv", ["xd", "wd"], ["c"]),
        helper.make_node("QuantizeLinear", ["c", "os", "z"], ["cq"]),
        helper.make_node("DequantizeLinear", ["cq", "os", "z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [numpy_helper.from_array(v, k) for k, v in constants.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), path)


def test_export_refuses_int16_qdq_activations_in_one_line(capsys, tmp_path):
    """The ONNX export writes int8 models only: a 16-bit QDQ graph is refused, naming the node."""
    _qdq_conv_onnx(tmp_path / "q16.onnx", np.int16)
    line = _one_error_line(
        _in_process(capsys, "export", tmp_path / "q16.onnx", "--out", tmp_path / "q16.tflite")
    )
    assert "'xq' (QuantizeLinear)" in line and "int16 activations" in line, line
    assert not (tmp_path / "q16.tflite").exists()
