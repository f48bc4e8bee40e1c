"""Per-layer profile: ``codegen --profile`` + ``run --profile`` on qemu-m4 for the native engine and
TFLite Micro, the layer sum against the whole-inference count, the measured cost of a counter
read against an unprofiled build, and ``--profile`` on a project built without it."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from conftest import _console_script
from tflite_builder import random_cnn

from mcu_effnet.codegen.profile import format_by_cost, format_op_types, from_run
from mcu_effnet.codegen.toolchain import parse_output

# One worker runs the module under `make test` (--dist loadgroup): its module fixtures build and
# run four profiling firmwares (codegen + compare), which each worker it was spread over would
# make again.
pytestmark = pytest.mark.xdist_group("profile")


def _cli(*args, cwd=None, timeout=600):
    return subprocess.run(
        [_console_script(), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("profile") / "cnn.tflite"
    path.write_bytes(random_cnn(np.random.default_rng(3)))
    return path


def _project(model, runtime: str, profile: bool = True):
    """codegen (+ --profile) and run (+ --profile) on qemu-m4: the folder, run's stdout, report.json."""
    out = model.parent / f"fw-{runtime}-{'profile' if profile else 'plain'}"
    flag = ["--profile"] if profile else []
    made = _cli("codegen", model, "--board", "qemu-m4", "--runtime", runtime, "--out", out, *flag)
    assert made.returncode == 0, made.stdout + made.stderr
    ran = _cli("run", out, *flag)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return out, ran.stdout, json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def native(model, arm_toolchain):
    return _project(model, "native")


def _check_profile(stdout: str, report: dict) -> dict:
    prof = report["profile"]
    layers = report["layers"]
    # Every layer row carries the measurement; instructions per MAC where the layer has MACs.
    assert all({"instructions", "macs", "instructions_per_mac"} <= set(r) for r in layers)
    for r in layers:
        expected = round(r["instructions"] / r["macs"], 3) if r["macs"] else None
        assert r["instructions_per_mac"] == expected
    convs = [r for r in layers if r["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert convs and all(r["instructions"] > r["macs"] > 0 for r in convs)  # M4: > 1 instr/MAC here

    # The rows add up to the whole inference within the counter reads' own cost.
    whole = report["instructions_per_inference"]
    assert prof["inference_instructions"] == whole
    rows = sum(r["instructions"] for r in layers) + prof["outside_ops_instructions"]
    overhead = prof["marks"] * prof["mark_instructions"]
    resolution = prof["resolution_instructions"]
    assert resolution == 40.0  # SysTick at 25 MHz, 1 ns per instruction
    assert 0 <= whole - rows <= overhead + 2 * resolution, (whole, rows, overhead)
    assert prof["agrees"]
    # A counter read costs tens of instructions: measured, not assumed.
    assert 5 < prof["mark_instructions"] < 200

    # Printed by cost, top first, with shares and the resolution.
    table = stdout[stdout.index("per-layer profile") :]
    assert "±40 instructions" in table
    printed = [
        int(line.split()[3].replace(",", ""))
        for line in table.splitlines()[2:]
        if line.split() and line.split()[0].isdigit()
    ]
    assert len(printed) == len(layers)
    assert printed == sorted(printed, reverse=True)
    assert printed[0] == max(r["instructions"] for r in layers)
    top = max(layers, key=lambda r: r["instructions"])
    assert f"{100 * top['instructions'] / whole:.1f}%" in table
    return prof


def test_native_profile_through_the_cli(native, model):
    out, stdout, report = native
    assert report["profile_build"] is True
    prof = _check_profile(stdout, report)
    assert "input/output copies" in prof["outside_ops"]
    # The marks cost what the firmware measured they cost: the profiled inference exceeds the
    # same model's unprofiled one by the marks, give or take a counter tick at each end.
    _, _, plain = _project(model, "native", profile=False)
    assert "profile" not in plain and plain["profile_build"] is False
    extra = report["instructions_per_inference"] - plain["instructions_per_inference"]
    assert abs(extra - prof["marks"] * prof["mark_instructions"]) <= 2 * prof["resolution_instructions"] + 8
    assert "MODEL_PROFILE_MARK();" in (out / "model" / "model.c").read_text()


def test_profile_across_systick_wraps(native, tmp_path):
    """With a 512-tick SysTick period (20,480 instructions) the inference crosses wraps; the
    64-bit counter keeps every layer's count to within a tick plus the wrap interrupt's cost."""
    from mcu_effnet.boards import get_board
    from mcu_effnet.codegen import toolchain
    from mcu_effnet.codegen.profile import execution_layers

    out, _, report = native
    folder = tmp_path / "wraps"
    shutil.copytree(out, folder, ignore=shutil.ignore_patterns("build"))
    built = subprocess.run(
        ["make", "-C", str(folder), "qemu", "OPT=-O2 -DSYSTICK_RELOAD=0x1FFu"], capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    result = toolchain.run_qemu(get_board("qemu-m4"), folder / "build" / "qemu" / "firmware.elf", timeout=120)
    assert result.check_ok and result.instructions is not None
    assert result.instructions > 2 * 512 * 40  # at least two wraps inside the inference
    prof = from_run(result.lines, "native", execution_layers(report), result.instructions)
    assert prof.agrees()
    wraps = result.instructions // (512 * 40) + 1
    for wrapped, plain in zip(prof.layers, report["layers"], strict=True):
        assert abs(wrapped.instructions - plain["instructions"]) <= 2 * 40 + 30 * wraps, wrapped


@pytest.fixture(scope="module")
def compared(model, arm_toolchain):
    """compare --profile: three profiling projects (native, TFLite Micro reference and CMSIS-NN)."""
    out = model.parent / "cmp"
    ran = _cli("compare", model, "--board", "qemu-m4", "--out", out, "--samples", "1", "--profile")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return out, ran.stdout


@pytest.mark.parametrize("folder", ["tflm-ref", "tflm-cmsis-nn"])
def test_tflm_profile_through_the_cli(compared, folder):
    # compare made the profiling projects (codegen --profile); run --profile them again
    ran = _cli("run", compared[0] / folder, "--profile")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = json.loads((compared[0] / folder / "report.json").read_text())
    prof = _check_profile(ran.stdout, report)
    assert "interpreter" in prof["outside_ops"]
    # One (begin, end) pair per op of the stored model, plus entry and exit.
    assert prof["marks"] == 2 * len(report["layers"]) + 2
    assert [r["index"] for r in report["layers"]] == list(range(len(report["layers"])))


def test_profile_on_an_unprofiled_project_says_how_to_rebuild(model, tmp_path):
    out = tmp_path / "fw"
    made = _cli("codegen", model, "--board", "qemu-m4", "--out", out, "--no-build")
    assert made.returncode == 0, made.stderr
    ran = _cli("run", out, "--profile")
    assert ran.returncode == 2, ran.stdout + ran.stderr
    lines = [ln for ln in ran.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in ran.stderr
    assert lines[0].startswith("mcu-effnet: error: ")
    assert "without profiling" in lines[0]
    assert f"mcu-effnet codegen {model} --board qemu-m4 --profile --out {out}" in lines[0]


def _lines(stamps: list[int], cost: str = "marks=1000 ticks=700 reads_ticks=25") -> dict:
    text = [f"MCU-EFFNET PROFILE marks={len(stamps)} expected={len(stamps)} hz=25000000"]
    text += [f"MCU-EFFNET STAMP i={i} ticks={t}" for i, t in enumerate(stamps)]
    text.append(f"MCU-EFFNET MARKCOST {cost}")
    return parse_output("\n".join(text))


LAYERS = [
    {"index": 0, "op": "CONV_2D", "macs": 1000},
    {"index": 1, "op": "ADD", "macs": 0},
]


def test_native_stamps_to_layers():
    # entry, before op 0, after op 0, after op 1, exit; a mark costs (700 - 25) * 40 / 1000 = 27
    prof = from_run(_lines([0, 3, 103, 104, 110]), "native", LAYERS, inference_instructions=4500)
    assert prof.mark_instructions == pytest.approx(27.0)
    assert [c.instructions for c in prof.layers] == [4000 - 27, 40 - 27]
    assert prof.layers[0].instructions_per_mac == pytest.approx(3.973)
    assert prof.layers[1].instructions_per_mac is None
    assert prof.outside_ops_instructions == round(3 * 40 - 27 + 6 * 40 - 27)
    assert prof.agrees()
    totals = prof.op_type_totals()
    assert list(totals) == ["CONV_2D", "ADD", "(outside ops)"]


def test_tflm_stamps_to_layers():
    # entry, (begin, end) of op 0, (begin, end) of op 1, exit: gaps are the interpreter's
    prof = from_run(_lines([0, 2, 52, 55, 56, 60]), "tflm", LAYERS, inference_instructions=2400)
    assert [c.instructions for c in prof.layers] == [50 * 40 - 27, 40 - 27]
    assert prof.outside_ops_instructions == round((2 + 3 + 4) * 40 - 3 * 27)


def test_a_missing_mark_is_refused():
    lines = _lines([0, 3, 103, 110])  # one mark short for two native layers
    with pytest.raises(Exception, match="counter marks"):
        from_run(lines, "native", LAYERS, inference_instructions=4500)


def test_rows_that_do_not_add_up_are_flagged():
    prof = from_run(_lines([0, 3, 103, 104, 110]), "native", LAYERS, inference_instructions=9000)
    assert not prof.agrees()
    assert "NOT within" in format_by_cost(prof)


def test_op_types_side_by_side():
    text = format_op_types(
        {
            "native": {"CONV_2D": 10, "(outside ops)": 1},
            "TFLM": {"ADD": 30, "CONV_2D": 20, "(outside ops)": 2},
        }
    )
    rows = text.splitlines()
    assert rows[0] == "| op type | native | TFLM |"
    assert rows[2] == "| ADD | - | 30 |"
    assert rows[3] == "| CONV_2D | 10 | 20 |"
    assert rows[-1] == "| (outside ops) | 1 | 2 |"


def test_compare_profile_puts_op_types_side_by_side(compared):
    out, stdout = compared
    assert "| op type | native | TFLM reference | TFLM + CMSIS-NN |" in stdout
    result = json.loads((out / "compare.json").read_text())
    columns = result["op_types"]
    assert list(columns) == ["native", "TFLM reference", "TFLM + CMSIS-NN"]
    for folder, label in (
        ("native", "native"),
        ("tflm-ref", "TFLM reference"),
        ("tflm-cmsis-nn", "TFLM + CMSIS-NN"),
    ):
        report = json.loads((out / folder / "report.json").read_text())
        totals = columns[label]
        assert totals.pop("(outside ops)") == report["profile"]["outside_ops_instructions"]
        assert sum(totals.values()) == sum(r["instructions"] for r in report["layers"])
        assert set(totals) == {r["op"] for r in report["layers"]}
        assert report["profile"]["agrees"]
    # CMSIS-NN's convolutions cost fewer instructions than the reference kernels'.
    assert columns["TFLM + CMSIS-NN"]["CONV_2D"] < columns["TFLM reference"]["CONV_2D"]
    assert "Instructions per op type" in (out / "compare.md").read_text()
