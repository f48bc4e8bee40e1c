"""``mcu-effnet codegen`` and ``mcu-effnet run`` through the installed command: firmware in QEMU
bit-exact with the host simulator, and one clear line with exit code 2 for bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zlib

import numpy as np
import pytest
from tflite_builder import ModelBuilder, random_cnn, random_mbconv

from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as simulate

QEMU_BOARDS = ["qemu-m4", "qemu-m7", "qemu-m33", "stm32", "stm32f405"]


def _model(tmp_path, seed=0, name="cnn.tflite", kind="cnn"):
    path = tmp_path / name
    rng = np.random.default_rng(seed)
    path.write_bytes(random_cnn(rng) if kind == "cnn" else random_mbconv(rng))
    return path


def _one_error_line(result):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [
        ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("mcu-effnet: building")
    ]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mcu-effnet: error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def _inputs(graph, n, seed):
    shape = graph.input_tensors[0].shape
    return np.random.default_rng(seed).integers(-128, 128, size=(n, *shape[1:]), dtype=np.int8)


# ---- bad input ---------------------------------------------------------------------------------


def test_unknown_board_lists_names(cli, tmp_path):
    line = _one_error_line(
        cli("codegen", _model(tmp_path), "--board", "arduino-uno", "--out", tmp_path / "fw")
    )
    assert "arduino-uno" in line and "qemu-m4" in line and "stm32f405" in line and "nrf52840dk" in line
    assert not (tmp_path / "fw").exists()


def test_out_folder_not_ours_is_refused(cli, tmp_path):
    out = tmp_path / "fw"
    out.mkdir()
    (out / "main.c").write_text("/* mine */")
    line = _one_error_line(
        cli("codegen", _model(tmp_path), "--board", "qemu-m4", "--out", out, "--runtime", "tflm")
    )
    assert "not made by mcu-effnet" in line and "--force" in line
    assert (out / "main.c").read_text() == "/* mine */"


def test_model_too_big_for_board(cli, tmp_path):
    b = ModelBuilder(np.random.default_rng(0))
    x = b.input((1, 96, 96, 3))
    b.outputs = [b.conv2d(x, 16, (3, 3), (1, 1), "SAME", activation="RELU")]
    model = tmp_path / "big.tflite"
    model.write_bytes(b.build())
    result = cli(
        "codegen", model, "--board", "stm32f405", "--runtime", "tflm", "--out", tmp_path / "fw", "--no-build"
    )
    line = _one_error_line(result)
    assert re.search(
        r"needs \d+ KB SRAM \(arena \d+ KB \+ I/O buffers \d+ KB \+ stack 8 KB \+ runtime 1 KB\)", line
    )
    assert "stm32f405 has 192 KB in all, at most 128 KB contiguous" in line
    assert not (tmp_path / "fw").exists()


@pytest.mark.parametrize(
    "reserve,needle", [("1M", "leaves nothing of stm32f405's flash"), ("a lot", "number of bytes")]
)
def test_flash_reserve_the_board_cannot_hold(cli, tmp_path, reserve, needle):
    result = cli(
        "codegen",
        _model(tmp_path),
        "--board",
        "stm32f405",
        "--reserve-flash",
        reserve,
        "--out",
        tmp_path / "fw",
    )
    line = _one_error_line(result)
    assert "--reserve-flash" in line and needle in line
    assert not (tmp_path / "fw").exists()


def test_unsupported_op_from_the_loader(cli, tmp_path):
    b = ModelBuilder(np.random.default_rng(0))
    x = b.input((1, 4), scale=0.1, zero_point=0)
    r = b.unary("RELU", x)
    t = b.activation("sin", (1, 4), 1 / 128, 0)
    b.add_op("SIN", [r], [t])
    b.outputs = [t]
    model = tmp_path / "sin.tflite"
    model.write_bytes(b.build())
    line = _one_error_line(cli("codegen", model, "--board", "qemu-m4", "--out", tmp_path / "fw"))
    assert "SIN" in line and "unsupported" in line


def test_no_model_and_no_runs(cli, tmp_path):
    line = _one_error_line(cli("codegen", "--board", "qemu-m4", cwd=tmp_path))
    assert "runs/" in line and "mcu-effnet qat" in line


def test_run_dir_argument_and_default_out(cli, tmp_path):
    run_dir = tmp_path / "runs" / "20260101-phi-1"
    run_dir.mkdir(parents=True)
    _model(run_dir, name="model.tflite")
    result = cli("codegen", "--board", "stm32", "--runtime", "tflm", "--no-build", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    marker = json.loads((tmp_path / "firmware" / "stm32" / ".mcu-effnet-project").read_text())
    assert marker["board"] == "stm32f746g-disco" and marker["runtime"] == "tflm"


def test_run_refuses_a_folder_not_ours(cli, tmp_path):
    line = _one_error_line(cli("run", tmp_path))
    assert "not a firmware project made by mcu-effnet" in line


def test_missing_toolchain_gives_the_install_line(cli, tmp_path):
    out = tmp_path / "fw"
    assert (
        cli(
            "codegen", _model(tmp_path), "--board", "qemu-m4", "--runtime", "tflm", "--out", out, "--no-build"
        ).returncode
        == 0
    )
    script = os.path.join(os.path.dirname(sys.executable), "mcu-effnet")
    env = dict(os.environ, PATH=str(tmp_path / "nothing-here"))
    result = subprocess.run([script, "run", str(out)], capture_output=True, text=True, env=env, timeout=120)
    line = _one_error_line(result)
    assert "arm-none-eabi-gcc" in line and "sudo apt-get install -y gcc-arm-none-eabi" in line


def test_run_rejects_inputs_of_the_wrong_shape(cli, tmp_path):
    out = tmp_path / "fw"
    assert (
        cli(
            "codegen", _model(tmp_path), "--board", "qemu-m4", "--runtime", "tflm", "--out", out, "--no-build"
        ).returncode
        == 0
    )
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 3, 3), np.int8))
    line = _one_error_line(cli("run", out, "--input", tmp_path / "x.npy"))
    assert "x.npy" in line and "int8" in line


# ---- end to end in QEMU ----------------------------------------------------------------------


@pytest.mark.toolchain
def test_tflm_project_runs_bit_exact(cli, tmp_path):
    model = _model(tmp_path, seed=2)
    out = tmp_path / "fw"
    result = cli("codegen", model, "--board", "qemu-m4", "--runtime", "tflm", "--out", out)
    assert result.returncode == 0, result.stderr
    graph = load_tflite(model)
    x = _inputs(graph, 3, seed=9)
    np.save(tmp_path / "x.npy", x)
    result = cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bit-exact: yes" in result.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), simulate(graph, x))
    report = json.loads((out / "report.json").read_text())
    assert report["instructions_per_inference"] > 0
    assert 0 < report["tflm_arena_used_bytes"] <= report["arena_bytes"]


@pytest.mark.toolchain
def test_run_exits_nonzero_on_a_difference(cli, tmp_path):
    out = tmp_path / "fw"
    assert (
        cli(
            "codegen", _model(tmp_path), "--board", "qemu-m4", "--runtime", "tflm", "--out", out, "--no-build"
        ).returncode
        == 0
    )
    tv = out / "test_vector.c"
    text = tv.read_text()
    head, expected = text.split("test_vector_expected", 1)
    first = expected.index("{") + 1
    values = expected[first : expected.index("}")].split(",")
    values[0] = str(int(values[0]) ^ 1)  # one expected output off by an LSB
    tv.write_text(
        head + "test_vector_expected" + expected[:first] + ",".join(values) + expected[expected.index("}") :]
    )
    result = cli("run", out)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "bit-exact: NO" in result.stdout and "1 of" in result.stdout


@pytest.mark.toolchain
def test_run_without_the_model_says_what_it_compared(cli, tmp_path):
    """Without model.tflite only the firmware's own check of the embedded test vector is left."""
    model = _model(tmp_path, seed=5)
    out = tmp_path / "fw"
    assert cli("codegen", model, "--board", "qemu-m4", "--out", out, "--no-build").returncode == 0
    (out / "model.tflite").unlink()
    np.save(tmp_path / "x.npy", _inputs(load_tflite(model), 2, seed=3))
    result = cli("run", out, "--input", tmp_path / "x.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert "--input: 2 samples run, not compared (no model.tflite in the folder)" in lines
    assert lines[-1] == "bit-exact: yes, on the embedded test vector only (no model.tflite in the folder)"


@pytest.mark.parametrize(
    "board,kind", [(b, "cnn" if i % 2 == 0 else "mbconv") for i, b in enumerate(QEMU_BOARDS)]
)
@pytest.mark.toolchain
def test_native_project_runs_bit_exact(cli, tmp_path, board, kind):
    seed = zlib.crc32(board.encode()) % 1000
    model = _model(tmp_path, seed=seed, kind=kind)
    out = tmp_path / "fw"
    result = cli("codegen", model, "--board", board, "--out", out)
    assert result.returncode == 0, result.stderr
    graph = load_tflite(model)
    x = _inputs(graph, 4, seed=seed + 1)
    np.save(tmp_path / "x.npy", x)
    result = cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 of 4 samples bit-exact" in result.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), simulate(graph, x))
    report = json.loads((out / "report.json").read_text())
    assert report["instructions_per_inference"] > 0 and report["bit_exact"] is True
    assert 0 < report["stack_used_bytes"] < report["stack_bytes"]
    assert report["flash_bytes"] and report["ram_bytes"]


# _export caches per process: these tests share one worker (test_sim_efficientnet._export).
@pytest.mark.xdist_group("efficientnet_exports")
@pytest.mark.slow
@pytest.mark.parametrize(
    "variant,boards",
    [("full", ["qemu-m33", "stm32f405"]), ("lite", ["qemu-m7"])],
)
@pytest.mark.toolchain
def test_our_efficientnets_run_bit_exact_on_the_qemu_boards(cli, tmp_path, variant, boards):
    """Our QAT-exported EfficientNets (φ −6, 32 px) as native firmware in QEMU: each core (M33,
    M4, M7) once, the full variant (squeeze-excitation: MEAN, LOGISTIC, MUL) on STM32F405's own
    machine with its 128 KB of contiguous SRAM. test_native_project_runs_bit_exact takes every
    QEMU-run board through the same kernels on random CNN and MBConv models (the time budget of
    the test suite; benchmarks/memory.py takes any model to any board)."""
    pytest.importorskip("torch")
    from test_sim_efficientnet import _export

    model_bytes = _export(tmp_path, variant, -6)
    model = tmp_path / f"effnet-{variant}.tflite"
    model.write_bytes(model_bytes)
    graph = load_tflite(model)
    x = _inputs(graph, 2, seed=5)
    np.save(tmp_path / "x.npy", x)
    expected = simulate(graph, x)
    for board in boards:
        out = tmp_path / board
        result = cli("codegen", model, "--board", board, "--out", out)
        assert result.returncode == 0, result.stderr
        result = cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / f"y-{board}.npy")
        assert result.returncode == 0, f"{board}: {result.stdout}{result.stderr}"
        np.testing.assert_array_equal(np.load(tmp_path / f"y-{board}.npy"), expected, err_msg=board)


def test_codegen_without_toolchain_writes_an_unbuilt_project(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "mcu-effnet")
    env = dict(os.environ, PATH=str(tmp_path / "nothing-here"))
    out = tmp_path / "fw"
    result = subprocess.run(
        [script, "codegen", str(_model(tmp_path)), "--board", "stm32", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "toolchain not found" in result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["flash_bytes"] is None and report["arena_bytes"] > 0
    assert (out / "model" / "model.c").exists() and not (out / "build").exists()


@pytest.mark.toolchain
def test_tflm_without_a_tree_says_where_it_looked(cli, tmp_path):
    missing = tmp_path / "no-tflm"
    result = cli(
        "codegen",
        _model(tmp_path),
        "--board",
        "qemu-m4",
        "--runtime",
        "tflm",
        "--out",
        tmp_path / "fw",
        "--tflm-dir",
        missing,
    )
    line = _one_error_line(result)
    assert str(missing) in line and "native runtime needs none" in line
    assert not (tmp_path / "fw").exists()


@pytest.mark.toolchain
def test_tflm_variants_switch_and_stay_bit_exact(cli, tmp_path):
    """make run with TFLite Micro's reference kernels, then CMSIS-NN, then reference again: each
    rebuilds with its own defines and matches the simulator's embedded expectation."""
    out = tmp_path / "fw"
    result = cli("codegen", _model(tmp_path, seed=4), "--board", "qemu-m4", "--runtime", "tflm", "--out", out)
    assert result.returncode == 0, result.stderr
    counts = []
    for variant in ("ref", "cmsis_nn", "ref"):
        run = subprocess.run(
            ["make", "-s", "-C", str(out), "run", f"TFLM_VARIANT={variant}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "MCU-EFFNET CHECK ok mismatches=0" in run.stdout
        counts.append(int(re.search(r"INSTRUCTIONS per_inference=(\d+)", run.stdout).group(1)))
    assert counts[0] == counts[2] != counts[1]


@pytest.mark.toolchain
def test_tflm_cmsis_nn_kernels_run_bit_exact(cli, tmp_path):
    model = _model(tmp_path, seed=6, kind="mbconv")
    out = tmp_path / "fw"
    result = cli(
        "codegen", model, "--board", "qemu-m33", "--runtime", "tflm", "--kernels", "cmsis-nn", "--out", out
    )
    assert result.returncode == 0, result.stderr
    assert "TFLM_VARIANT ?= cmsis_nn" in (out / "Makefile").read_text()
    x = _inputs(load_tflite(model), 2, seed=1)
    np.save(tmp_path / "x.npy", x)
    result = cli("run", out, "--input", tmp_path / "x.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 of 2 samples bit-exact" in result.stdout
    assert json.loads((out / "report.json").read_text())["tflm_kernels"] == "cmsis-nn"


def test_kernels_option_needs_the_tflm_runtime(cli, tmp_path):
    line = _one_error_line(
        cli(
            "codegen",
            _model(tmp_path),
            "--board",
            "qemu-m4",
            "--kernels",
            "cmsis-nn",
            "--out",
            tmp_path / "fw",
        )
    )
    assert "--kernels" in line and "--runtime tflm" in line
