"""``mcu-effnet sim`` and ``mcu-effnet validate`` from the command line, as a user runs them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from tflite_builder import ModelBuilder, random_cnn, random_mbconv, run_tflm

from mcu_effnet.cli import main as cli_main
from mcu_effnet.graph import load_tflite


def image_classifier(
    size: int = 12,
    classes: int = 6,
    scale: float = 1.0 / 255,
    zero_point: int = -128,
    labels: list[str] | None = None,
    channels: int = 3,
) -> bytes:
    """conv -> MEAN -> FC -> SOFTMAX on an image input with the given input quantization."""
    b = ModelBuilder(np.random.default_rng(11))
    x = b.input((1, size, size, channels), scale=scale, zero_point=zero_point)
    feat = b.conv2d(x, 8, (3, 3), (2, 2), activation="RELU")
    pooled = b.mean(feat, (1, 2), keep_dims=False)
    b.outputs = [b.softmax(b.fully_connected(pooled, classes))]
    if labels is not None:
        b.add_metadata("mcu_effnet_labels", "\n".join(labels).encode("utf-8"))
    return b.build()


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcu-effnet: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def cnn_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "cnn.tflite"
    return write(path, random_mbconv(np.random.default_rng(5), size=8))


# ---- sim --input / --output -----------------------------------------------------------------


def test_sim_batch_matches_tflite_micro(cli, tmp_path, cnn_model):
    graph = load_tflite(cnn_model)
    x = (
        np.random.default_rng(0)
        .integers(-128, 128, size=(7, *graph.input_tensors[0].shape[1:]))
        .astype(np.int8)
    )
    np.save(tmp_path / "x.npy", x)
    result = cli("sim", cnn_model, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.int8 and y.shape[0] == 7
    np.testing.assert_array_equal(y, run_tflm(cnn_model.read_bytes(), x))


def test_sim_accepts_one_sample_without_batch_axis(cli, tmp_path, cnn_model):
    graph = load_tflite(cnn_model)
    sample = (
        np.random.default_rng(1).integers(-128, 128, size=graph.input_tensors[0].shape[1:]).astype(np.int8)
    )
    np.save(tmp_path / "one.npy", sample)
    result = cli("sim", cnn_model, "--input", tmp_path / "one.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), run_tflm(cnn_model.read_bytes(), sample[None]))


def test_sim_output_into_a_missing_folder_is_one_error_line(cli, tmp_path, cnn_model):
    graph = load_tflite(cnn_model)
    np.save(tmp_path / "x.npy", np.zeros((1, *graph.input_tensors[0].shape[1:]), np.int8))
    line = one_error_line(
        cli("sim", cnn_model, "--input", tmp_path / "x.npy", "--output", tmp_path / "no" / "y.npy")
    )
    assert "does not exist" in line
    (tmp_path / "dir.npy").mkdir()
    assert "cannot write" in one_error_line(
        cli("sim", cnn_model, "--input", tmp_path / "x.npy", "--output", tmp_path / "dir.npy")
    )


def test_sim_without_output_prints_a_summary(cli, tmp_path, cnn_model):
    graph = load_tflite(cnn_model)
    np.save(tmp_path / "x.npy", np.zeros((2, *graph.input_tensors[0].shape[1:]), np.int8))
    result = cli("sim", cnn_model, "--input", tmp_path / "x.npy")
    assert result.returncode == 0, result.stderr
    assert "2 samples" in result.stdout and "sample 1: argmax" in result.stdout


@pytest.mark.parametrize(
    "array, fragment",
    [
        (np.zeros((2, 5, 5, 3), np.int8), "(2, 5, 5, 3) int8"),
        (np.zeros((2, 8, 8, 5), np.float32), "(2, 8, 8, 5) float32"),
        (np.zeros((8, 8), np.int8), "(8, 8) int8"),
    ],
)
def test_sim_rejects_inputs_that_do_not_fit(cli, tmp_path, cnn_model, array, fragment):
    graph = load_tflite(cnn_model)
    expected = "(N, " + ", ".join(str(d) for d in graph.input_tensors[0].shape[1:]) + ") int8"
    np.save(tmp_path / "bad.npy", array)
    line = one_error_line(cli("sim", cnn_model, "--input", tmp_path / "bad.npy"))
    assert fragment in line and expected in line and "bad.npy" in line


def test_sim_rejects_missing_and_unreadable_inputs(cli, tmp_path, cnn_model):
    assert "no such file" in one_error_line(cli("sim", cnn_model, "--input", tmp_path / "missing.npy"))
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    assert "junk.npy" in one_error_line(cli("sim", cnn_model, "--input", tmp_path / "junk.npy"))
    (tmp_path / "junk.tflite").write_bytes(b"\x00" * 64)
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8, 5), np.int8))
    assert "junk.tflite" in one_error_line(
        cli("sim", tmp_path / "junk.tflite", "--input", tmp_path / "x.npy")
    )


# ---- sim --image ----------------------------------------------------------------------------


def test_sim_image_top5_with_labels_from_metadata(cli, tmp_path):
    names = [f"thing{k}" for k in range(6)]
    model = write(tmp_path / "m.tflite", image_classifier(labels=names))
    pixels = np.random.default_rng(2).integers(0, 256, size=(12, 12, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "cat.png")
    result = cli("sim", model, "--image", tmp_path / "cat.png")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 5
    # scale 1/255 and zero point -128: the int8 input is pixel - 128
    expected = run_tflm(model.read_bytes(), (pixels.astype(np.int16) - 128).astype(np.int8)[None])[0]
    order = np.argsort(-expected.astype(int), kind="stable")
    assert lines[0].startswith(f"1. thing{order[0]} ") and f"int8 {expected[order[0]]})" in lines[0]
    assert all(f"thing{order[k]}" in lines[k] for k in range(5))


def test_sim_image_labels_txt_beats_metadata_and_indices_are_the_fallback(cli, tmp_path):
    Image.fromarray(np.full((30, 20, 3), 200, np.uint8)).save(tmp_path / "big.jpg")  # resized to 12x12
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with_txt = write(tmp_path / "a" / "m.tflite", image_classifier(labels=["meta"] * 6))
    (tmp_path / "a" / "labels.txt").write_text("\n".join(f"txt{k}" for k in range(6)) + "\n")
    bare = write(tmp_path / "b" / "m.tflite", image_classifier())
    out_txt = cli("sim", with_txt, "--image", tmp_path / "big.jpg")
    assert out_txt.returncode == 0, out_txt.stderr
    assert "txt" in out_txt.stdout and "meta" not in out_txt.stdout
    out_bare = cli("sim", bare, "--image", tmp_path / "big.jpg")
    assert out_bare.returncode == 0, out_bare.stderr
    assert out_bare.stdout.splitlines()[0].startswith("1. class ")


def test_sim_image_uses_the_input_quantization(cli, tmp_path):
    """Any input scale / zero point: q = round(pixel / 255 / scale) + zero_point, clamped."""
    scale, zero_point = 2.0 / 255, -20
    model = write(tmp_path / "m.tflite", image_classifier(scale=scale, zero_point=zero_point))
    pixels = np.random.default_rng(3).integers(0, 256, size=(12, 12, 3), dtype=np.uint8)
    pixels[0, 0] = (0, 1, 255)
    Image.fromarray(pixels).save(tmp_path / "p.png")
    result = cli("sim", model, "--image", tmp_path / "p.png", "--dump", tmp_path / "dump")
    assert result.returncode == 0, result.stderr
    index = json.loads((tmp_path / "dump" / "index.json").read_text())
    entry = next(e for e in index["tensors"] if e["role"] == "input")
    fed = np.load(tmp_path / "dump" / entry["file"])
    real = pixels.astype(np.float64) / 255.0 / np.float64(np.float32(scale))
    expected = np.clip(np.floor(real + 0.5) + zero_point, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(fed[0], expected)
    assert fed[0, 0, 0, 0] == -20 and fed[0, 0, 0, 2] == 107  # float32(2/255) is a hair above 2/255


def test_sim_image_grayscale_model_takes_luminance(cli, tmp_path):
    model = write(tmp_path / "gray.tflite", image_classifier(channels=1))
    rgb = np.random.default_rng(12).integers(0, 256, size=(12, 12, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    result = cli("sim", model, "--image", tmp_path / "c.png", "--dump", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    entry = next(
        e for e in json.loads((tmp_path / "d" / "index.json").read_text())["tensors"] if e["role"] == "input"
    )
    luminance = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.int16)
    np.testing.assert_array_equal(
        np.load(tmp_path / "d" / entry["file"])[0, ..., 0], (luminance - 128).astype(np.int8)
    )


def test_sim_image_errors(cli, tmp_path, cnn_model):
    model = write(tmp_path / "m.tflite", image_classifier())
    (tmp_path / "not_image.png").write_bytes(b"hello")
    assert "not_image.png" in one_error_line(cli("sim", model, "--image", tmp_path / "not_image.png"))
    assert "no such image" in one_error_line(cli("sim", model, "--image", tmp_path / "none.png"))
    # the mbconv model's input has 4 to 8 channels: not an RGB or grayscale image
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "ok.png")
    assert "not an NHWC image" in one_error_line(cli("sim", cnn_model, "--image", tmp_path / "ok.png"))


# ---- sim --dump -----------------------------------------------------------------------------


def test_sim_dump_writes_every_tensor_and_an_index(cli, tmp_path, cnn_model):
    graph = load_tflite(cnn_model)
    x = (
        np.random.default_rng(4)
        .integers(-128, 128, size=(3, *graph.input_tensors[0].shape[1:]))
        .astype(np.int8)
    )
    np.save(tmp_path / "x.npy", x)
    dump = tmp_path / "layers"
    result = cli(
        "sim", cnn_model, "--input", tmp_path / "x.npy", "--dump", dump, "--output", tmp_path / "y.npy"
    )
    assert result.returncode == 0, result.stderr
    entries = json.loads((dump / "index.json").read_text())["tensors"]
    activations = {t.index for t in graph.tensors if not t.is_constant}
    assert {e["index"] for e in entries} == activations
    assert sorted(p.name for p in dump.iterdir()) == sorted([e["file"] for e in entries] + ["index.json"])
    for e in entries:
        assert e["file"].startswith(f"{e['index']}_") and "/" not in e["file"]
        array = np.load(dump / e["file"])
        assert array.shape[0] == 3 and list(array.shape) == e["shape"]
        assert e["producer"] is None or e["producer"]["kind"] == graph.ops[e["producer"]["op"]].kind
    by_index = {e["index"]: np.load(dump / e["file"]) for e in entries}
    np.testing.assert_array_equal(by_index[graph.inputs[0]], x)
    np.testing.assert_array_equal(by_index[graph.outputs[0]], np.load(tmp_path / "y.npy"))
    np.testing.assert_array_equal(by_index[graph.outputs[0]], run_tflm(cnn_model.read_bytes(), x))

    # Dumping again over a previous dump replaces it; a foreign non-empty folder is left alone.
    assert cli("sim", cnn_model, "--input", tmp_path / "x.npy", "--dump", dump).returncode == 0
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert "not empty" in one_error_line(
        cli("sim", cnn_model, "--input", tmp_path / "x.npy", "--dump", foreign)
    )
    assert (foreign / "notes.txt").read_text() == "keep me"


# ---- validate -------------------------------------------------------------------------------


def test_validate_table_and_exit_zero(cli, tmp_path, cnn_model):
    result = cli("validate", cnn_model, "--samples", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    tflm_row = next(line for line in result.stdout.splitlines() if line.startswith("TFLite Micro")).split()
    samples, elements, differing = tflm_row[2], tflm_row[3], tflm_row[4]
    assert (samples, differing) == ("20", "0") and int(elements) >= 20
    assert "LiteRT" in result.stdout and "bit-exact with TFLite Micro" in result.stdout


def test_validate_json(cli, tmp_path):
    model = write(tmp_path / "cnn.tflite", random_cnn(np.random.default_rng(6), size=10))
    result = cli("validate", model, "--samples", "12", "--seed", "3", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["bit_exact_with_tflm"] is True and report["samples"] == 12
    tflm, litert = report["comparisons"][:2]
    assert tflm["reference"] == "TFLite Micro" and tflm["differing"] == 0 and tflm["exact_pct"] == 100.0
    assert tflm["elements"] == 12 * load_tflite(model).output_tensors[0].shape[-1]
    assert litert["reference"] == "LiteRT" and (litert["error"] or litert["within_1lsb_pct"] is not None)


def test_validate_exits_1_when_tflite_micro_differs(tmp_path, monkeypatch, capsys, cnn_model):
    """A simulator/TFLite Micro mismatch anywhere fails validation (the oracle is perturbed by one LSB)."""
    from mcu_effnet import oracle

    real = oracle.run_tflm

    def off_by_one(model, x):
        outs = real(model, x)
        outs[0] = outs[0].copy()
        outs[0].flat[5] = (
            np.int8(max(-128, int(outs[0].flat[5]) - 1)) if outs[0].flat[5] > -128 else np.int8(-127)
        )
        return outs

    monkeypatch.setattr(oracle, "run_tflm", off_by_one)
    assert cli_main(["validate", str(cnn_model), "--samples", "4", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["bit_exact_with_tflm"] is False and report["comparisons"][0]["differing"] == 1


def test_validate_with_data_folder_and_npz(cli, tmp_path):
    model = write(tmp_path / "m.tflite", image_classifier())
    folder = tmp_path / "images" / "cats"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for k in range(5):
        Image.fromarray(rng.integers(0, 256, size=(16, 20, 3), dtype=np.uint8)).save(folder / f"{k}.png")
    result = cli("validate", model, "--data", tmp_path / "images", "--samples", "3", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["samples"] == 3
    np.savez(
        tmp_path / "d.npz", x_test=rng.integers(0, 256, size=(4, 3, 12, 12), dtype=np.uint8)
    )  # NCHW pixels
    result = cli("validate", model, "--data", tmp_path / "d.npz", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["comparisons"][0]["samples"] == 4
    # 16x16 pixels are resized to the model's 12x12; floats in [0, 1] are pixel / 255
    big = rng.integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "big.npz", x_test=big)
    np.savez(tmp_path / "unit.npz", x_test=big.astype(np.float32) / 255.0)
    from mcu_effnet.sim.inputs import load_npz

    graph = load_tflite(model)
    resized = load_npz(tmp_path / "big.npz", graph, 10)
    expected = np.stack(
        [np.asarray(Image.fromarray(im).resize((12, 12), Image.Resampling.BILINEAR)) for im in big]
    )
    np.testing.assert_array_equal(resized, (expected.astype(np.int16) - 128).astype(np.int8))
    np.testing.assert_array_equal(load_npz(tmp_path / "unit.npz", graph, 10), resized)
    assert cli("validate", model, "--data", tmp_path / "unit.npz", "--samples", "2").returncode == 0
    np.savez(tmp_path / "wrong.npz", x_train=np.zeros((2, 12, 12, 3), np.uint8))
    assert "x_test" in one_error_line(cli("validate", model, "--data", tmp_path / "wrong.npz"))


def test_validate_against_onnx(cli, tmp_path):
    """A float ONNX global-average-pool against the int8 MEAN: within 1 LSB everywhere."""
    import onnx
    from onnx import TensorProto, helper

    scale, zero_point = 0.02, 5
    b = ModelBuilder(np.random.default_rng(8))
    x = b.input((1, 6, 6, 4), scale=scale, zero_point=zero_point)
    axes = b.add_tensor("axes", (2,), "int32", data=np.array([1, 2], np.int32))
    y = b.add_tensor("y", (1, 4), "int8", scale, zero_point)
    b.add_op("MEAN", [x, axes], [y], keep_dims=False)
    b.outputs = [y]
    model = write(tmp_path / "gap.tflite", b.build())
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["image", "to_pixels"], ["pixels"]),
            helper.make_node("GlobalAveragePool", ["pixels"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["logits"]),
        ],
        "gap",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor("to_pixels", TensorProto.FLOAT, [], [1.0])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "gap.onnx")
    result = cli("validate", model, "--onnx", tmp_path / "gap.onnx", "--samples", "10", "--json")
    assert result.returncode == 0, result.stderr
    onnx_row = json.loads(result.stdout)["comparisons"][2]
    assert onnx_row["reference"].startswith("ONNX") and onnx_row["error"] is None
    assert onnx_row["within_1lsb_pct"] == 100.0 and onnx_row["samples"] == 10
    single = json.loads(result.stdout)["comparisons"][3]
    assert single["reference"] == "ONNX, sim 1-rounding" and single["within_1lsb_pct"] == 100.0
    table = cli("validate", model, "--onnx", tmp_path / "gap.onnx", "--samples", "10").stdout
    assert "ONNX, sim 1-rounding" in table and "TFLITE_SINGLE_ROUNDING" in table


def test_validate_bad_inputs(cli, tmp_path, cnn_model):
    (tmp_path / "trunc.tflite").write_bytes(cnn_model.read_bytes()[:100])
    assert "trunc.tflite" in one_error_line(cli("validate", tmp_path / "trunc.tflite"))
    assert "no such ONNX" in one_error_line(cli("validate", cnn_model, "--onnx", tmp_path / "none.onnx"))
    assert "--samples" in one_error_line(cli("validate", cnn_model, "--samples", "0"))


def test_validate_names_the_first_op_that_differs(tmp_path, monkeypatch, capsys, cnn_model):
    """A simulator kernel gone wrong (DEPTHWISE_CONV_2D off by one somewhere) is located by op."""
    from mcu_effnet.sim.kernels import KERNELS

    graph = load_tflite(cnn_model)
    target = next(op for op in graph.ops if op.kind == "DEPTHWISE_CONV_2D")
    real = KERNELS["DEPTHWISE_CONV_2D"]

    def broken(g, op, inputs):
        outs = real(g, op, inputs)
        out = outs[0].copy()
        out.flat[::7] = np.where(out.flat[::7] < 127, out.flat[::7] + 1, 126)
        return [out]

    monkeypatch.setitem(KERNELS, "DEPTHWISE_CONV_2D", broken)
    assert cli_main(["validate", str(cnn_model), "--samples", "3"]) == 1
    table = capsys.readouterr().out
    name = graph.tensor(target.outputs[0]).name
    assert f"first difference: op {target.index} DEPTHWISE_CONV_2D -> tensor '{name}' on sample " in table, (
        table
    )
    assert "NOT bit-exact" in table
