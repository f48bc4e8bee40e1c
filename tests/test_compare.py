"""``mcu-effnet compare``: the native engine, TFLite Micro reference and TFLite Micro + CMSIS-NN
built for one model and board, run in QEMU on the same inputs, held against the host simulator."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from tflite_builder import ModelBuilder, random_cnn, random_mbconv

from mcu_effnet.boards import get_board
from mcu_effnet.boards.catalog import MemoryRegion
from mcu_effnet.codegen.compare import compare, format_table
from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as simulate


def _one_error_line(result):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mcu-effnet: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.toolchain
def test_compare_three_runtimes_bit_exact(cli, tmp_path):
    model = tmp_path / "mb.tflite"
    model.write_bytes(random_mbconv(np.random.default_rng(11), size=10, activation="RELU6"))
    graph = load_tflite(model)
    x = np.random.default_rng(3).integers(-128, 128, size=(3, *graph.input_tensors[0].shape[1:]))
    np.save(tmp_path / "x.npy", x.astype(np.int8))
    out = tmp_path / "cmp"
    result = cli("compare", model, "--board", "qemu-m4", "--inputs", tmp_path / "x.npy", "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    table = [ln for ln in result.stdout.splitlines() if ln.startswith("|")]
    body = table[2:]
    assert [ln.split("|")[1].strip() for ln in body] == ["native", "TFLM reference", "TFLM + CMSIS-NN"]
    assert all(ln.rstrip(" |").endswith("yes") for ln in body), result.stdout

    data = json.loads((out / "compare.json").read_text())
    assert data["board"] == "qemu-m4" and data["samples"] == 3
    rows = {r["firmware"]: r for r in data["rows"]}
    assert set(rows) == {"native", "tflm-ref", "tflm-cmsis-nn"}
    for r in rows.values():
        assert r["bit_exact"] and r["samples_bit_exact"] == 3
        assert r["instructions_per_inference"] > 0 and r["flash_bytes"] > 0 and r["model_ram_bytes"] > 0
    for name in ("tflm-ref", "tflm-cmsis-nn"):
        # model RAM: the arena the interpreter used plus its static objects, within the reserved arena
        assert 0 < rows[name]["arena_used_bytes"] < rows[name]["model_ram_bytes"]
        assert rows[name]["arena_used_bytes"] <= rows[name]["arena_bytes"]
    # The CMSIS-NN library brings its kernels: more code than the reference build.
    assert rows["tflm-cmsis-nn"]["flash_bytes"] > rows["tflm-ref"]["flash_bytes"]
    assert (out / "compare.png").stat().st_size > 0
    assert (out / "compare.md").read_text().strip() == "\n".join(table)
    # Each firmware's outputs, checked here again against the simulator.
    expected = simulate(graph, x.astype(np.int8))
    for name in rows:
        np.testing.assert_array_equal(np.load(out / name / "outputs.npy"), expected, err_msg=name)
        assert json.loads((out / name / "report.json").read_text())["bit_exact"] is True


def test_format_table_marks_a_difference():
    row = dict(
        label="native",
        model_ram_bytes=2048,
        arena_used_bytes=None,
        flash_bytes=10240,
        instructions_per_inference=1234567,
        bit_exact=False,
        samples=4,
        samples_bit_exact=3,
    )
    text = format_table({"rows": [row]})
    assert text.splitlines()[-1] == "| native | 2.0 KB | - | 10.0 KB | 1,234,567 | NO (3/4) |"


def test_inputs_of_the_wrong_shape(cli, tmp_path):
    model = tmp_path / "cnn.tflite"
    model.write_bytes(random_cnn(np.random.default_rng(0)))
    np.save(tmp_path / "x.npy", np.zeros((2, 3), dtype=np.int8))
    line = _one_error_line(
        cli("compare", model, "--board", "qemu-m4", "--inputs", tmp_path / "x.npy", "--out", tmp_path / "c")
    )
    assert f"--inputs {tmp_path / 'x.npy'}" in line and "int8" in line
    assert not (tmp_path / "c").exists()


def test_out_folder_not_ours(cli, tmp_path):
    model = tmp_path / "cnn.tflite"
    model.write_bytes(random_cnn(np.random.default_rng(0)))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("mine")
    line = _one_error_line(cli("compare", model, "--board", "qemu-m4", "--out", tmp_path / "c"))
    assert "--force" in line and (tmp_path / "c" / "keep.txt").exists()


@pytest.mark.toolchain
def test_a_runtime_that_does_not_fit_is_a_row(tmp_path):
    """16 KB of SRAM: the native engine fits, TFLite Micro's larger arena does not; the table says
    so and the comparison still runs the native firmware, bit-exact."""
    model = random_mbconv(np.random.default_rng(11), size=10, activation="RELU6")
    board = dataclasses.replace(get_board("qemu-m4"), sram=(MemoryRegion("RAM", 0x2000_0000, 16 * 1024),))
    graph = load_tflite(model)
    result = compare(graph, model, board, tmp_path / "cmp", samples=2, model_source="mb.tflite")
    rows = {r["firmware"]: r for r in result["rows"]}
    assert rows["native"]["bit_exact"] and rows["native"]["samples_bit_exact"] == 2
    for name in ("tflm-ref", "tflm-cmsis-nn"):
        assert rows[name]["flash_bytes"] is None and "does not fit" in rows[name]["error"]
        assert "16 KB" in rows[name]["error"]
    assert "not run, does not fit" in format_table(result)
    assert result["ratios"]["instructions_native_vs_cmsis_nn"] is None


def test_json_option_prints_the_result(monkeypatch, tmp_path, capsys):
    """--json prints what compare returned (the measuring itself is the test above)."""
    import mcu_effnet.codegen.compare as compare_mod
    from mcu_effnet.cli import main

    model = tmp_path / "cnn.tflite"
    model.write_bytes(random_cnn(np.random.default_rng(0)))
    seen = {}

    def fake_compare(graph, data, board, out, **kw):
        seen.update(board=board.name, out=out, samples=kw["samples"], inputs=kw["inputs"])
        return {"rows": [{"bit_exact": True, "flash_bytes": 1}], "ratios": {}}

    monkeypatch.setattr(compare_mod, "compare", fake_compare)
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(model), "--board", "qemu-m7", "--samples", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["bit_exact"] is True
    assert seen == {"board": "qemu-m7", "out": Path("compare/cnn-qemu-m7"), "samples": 2, "inputs": None}


@pytest.mark.toolchain
def test_a_failed_build_leaves_no_folder(monkeypatch, tmp_path):
    import mcu_effnet.codegen.compare as compare_mod
    from mcu_effnet.errors import UserError

    def failing_measure(*args, **kwargs):
        raise UserError("make qemu failed: error: something")

    monkeypatch.setattr(compare_mod, "measure", failing_measure)
    model = random_cnn(np.random.default_rng(0))
    with pytest.raises(UserError, match="make qemu failed"):
        compare(load_tflite(model), model, "qemu-m4", tmp_path / "cmp", samples=1)
    assert not (tmp_path / "cmp").exists()


@pytest.mark.toolchain
def test_cmsis_nn_scratch_fits_the_arena(tmp_path):
    """CMSIS-NN asks for scratch memory the reference kernels do not (here 160 x 5 x 5 int16
    for a 5x5 depthwise, 8,000 bytes, and an im2col buffer for a 3x3 conv): the arena
    recorded with the reference kernels plus its margin is too small for it unless the
    scratch is added."""
    b = ModelBuilder(np.random.default_rng(5))
    x = b.input((1, 8, 8, 160))
    y = b.depthwise(x, (5, 5), (1, 1), "SAME", (1, 1), 1, "RELU6", True, True)
    y = b.conv2d(y, 8, (3, 3), (1, 1), "SAME", (1, 1), "NONE", True, True)
    b.outputs = [y]
    model = b.build()
    graph = load_tflite(model)
    result = compare(
        graph, model, get_board("qemu-m4"), tmp_path / "cmp", samples=1, model_source="dw.tflite"
    )
    rows = {r["firmware"]: r for r in result["rows"]}
    assert rows["tflm-cmsis-nn"]["bit_exact"], rows["tflm-cmsis-nn"]
    assert rows["tflm-cmsis-nn"]["arena_used_bytes"] <= rows["tflm-cmsis-nn"]["arena_bytes"]
    assert rows["tflm-cmsis-nn"]["arena_bytes"] > rows["tflm-ref"]["arena_bytes"]


def test_several_inputs_and_typed_outputs_reach_every_firmware(monkeypatch, tmp_path, capsys):
    """A model with int8 + int16 inputs and four outputs (int16, int8, float32, int32): compare
    takes one --inputs per input and hands every firmware the samples packed as bytes and the
    simulator's outputs one batch per output (the measuring itself runs as in the tests above)."""
    from builder16x8 import random_int16, random_mixed_inputs

    import mcu_effnet.codegen.compare as compare_mod
    from mcu_effnet.cli import main
    from mcu_effnet.codegen import io_ports

    model = tmp_path / "mixed.tflite"
    model.write_bytes(random_mixed_inputs(np.random.default_rng(5), typed=True))
    graph = load_tflite(model)
    rng = np.random.default_rng(6)
    x8 = rng.integers(-128, 128, size=(2, *graph.input_tensors[0].shape[1:]), dtype=np.int8)
    x16 = random_int16(rng, graph.input_tensors[1].shape, batch=2)
    np.save(tmp_path / "x8.npy", x8)
    np.save(tmp_path / "x16.npy", x16)
    seen = []

    def fake_measure(graph, model_bytes, board, fw, folder, inputs, expected, **kw):
        seen.append((fw.name, inputs, expected))
        return compare_mod.Row(fw.name, fw.label, 1, 1, None, 1, 1, 1, True, 2, 2, 0.0)

    monkeypatch.setattr(compare_mod, "measure", fake_measure)
    monkeypatch.setattr(compare_mod, "_check_tflm", lambda *a: None)
    monkeypatch.setattr(compare_mod, "write_png", lambda *a: None)
    monkeypatch.setattr("mcu_effnet.codegen.toolchain.require_tools", lambda **kw: None)
    args = ["--inputs", str(tmp_path / "x8.npy"), "--inputs", str(tmp_path / "x16.npy")]
    assert main(["compare", str(model), "--board", "qemu-m4", "--out", str(tmp_path / "c"), *args]) == 0
    assert [name for name, _, _ in seen] == ["native", "tflm-ref", "tflm-cmsis-nn"]
    _, packed, expected = seen[0]
    ins, outs = io_ports.check_ports(graph, "mixed")
    unpacked = io_ports.unpack(packed, ins)
    np.testing.assert_array_equal(unpacked[0], x8)
    np.testing.assert_array_equal(unpacked[1], x16)
    assert [np.asarray(e).dtype.name for e in expected] == [p.dtype for p in outs]
    assert [p.dtype for p in outs] == ["int16", "int8", "float32", "int32"]
    for got, want in zip(expected, simulate(graph, [x8, x16]), strict=True):
        np.testing.assert_array_equal(got, want)
    capsys.readouterr()


def test_inputs_given_the_wrong_number_of_times(cli, tmp_path):
    from builder16x8 import random_mixed_inputs

    model = tmp_path / "mixed.tflite"
    model.write_bytes(random_mixed_inputs(np.random.default_rng(5)))
    np.save(tmp_path / "x.npy", np.zeros((2, 3), dtype=np.int8))
    line = _one_error_line(
        cli("compare", model, "--board", "qemu-m4", "--inputs", tmp_path / "x.npy", "--out", tmp_path / "c")
    )
    assert "--inputs given 1 times" in line and "2 inputs" in line
    assert not (tmp_path / "c").exists()
