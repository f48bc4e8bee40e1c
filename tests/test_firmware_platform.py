"""The firmware platform layer on its own: SysTick instruction counting under QEMU -icount,
semihosting files and exit status, and every catalogued board's project building and fitting.

A stand-in model (tests/firmware_standin.py) replaces the generated engine in most of these
tests, so they exercise only what the platform owns; the every-board build uses the real engine.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import firmware_standin as standin
import numpy as np
import pytest
from tflite_builder import random_cnn

from mcu_effnet.boards import BOARDS, get_board
from mcu_effnet.codegen import toolchain
from mcu_effnet.codegen.project import write_project
from mcu_effnet.codegen.project_render import render_platform
from mcu_effnet.graph import load_tflite

HERE = Path(__file__).resolve().parent
CALIBRATE = HERE / "platform_src" / "calibrate.c"
PLATFORM_C = ("startup.c", "console.c", "semihost.c", "counter_systick.c")

# Each QEMU machine, its clock in Hz (what SysTick counts at), and a board that runs on it.
MACHINES = [
    ("qemu-m4", 25_000_000),  # mps2-an386
    ("qemu-m7", 25_000_000),  # mps2-an500
    ("qemu-m33", 20_000_000),  # mps2-an505
    ("stm32f405", 168_000_000),  # netduinoplus2
]


def _build_calibration(tmp_path: Path, board_name: str, iterations: int, reload: int | None = None) -> Path:
    board = get_board(board_name)
    render_platform(board, tmp_path)
    plat = tmp_path / "platform"
    defines = ["-DMCU_EFFNET_QEMU=1", f"-DCALIBRATE_ITERATIONS={iterations}u"]
    if reload is not None:
        defines.append(f"-DSYSTICK_RELOAD={reload}u")
    elf = tmp_path / "calibrate.elf"
    cmd = [
        "arm-none-eabi-gcc",
        *board.cflags,
        "-std=c99",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-ffunction-sections",
        "-fdata-sections",
        *defines,
        f"-I{plat}",
        *(str(plat / f) for f in PLATFORM_C),
        str(CALIBRATE),
        "-T",
        str(plat / "qemu.ld"),
        "-nostartfiles",
        "--specs=nano.specs",
        "-Wl,--gc-sections",
        "-o",
        str(elf),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return elf


def _calibrate(tmp_path: Path, board_name: str, iterations: int, reload: int | None = None):
    board = get_board(board_name)
    elf = _build_calibration(tmp_path, board_name, iterations, reload)
    result = toolchain.run_qemu(board, elf, timeout=60)
    assert result.status == 0, result.stdout
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("CALIBRATE"))
    fields = dict(tok.split("=") for tok in line.split()[1:])
    return int(fields["ticks1"]), int(fields["ticks2"]), int(fields["hz"])


@pytest.mark.parametrize("board_name,hz", MACHINES)
@pytest.mark.toolchain
def test_systick_counts_instructions_under_icount(tmp_path, board_name, hz):
    """A busy loop of 2*n instructions (SUBS+BNE) measures 2*n * hz / 1e9 ticks."""
    n = 200_000
    ticks1, ticks2, reported_hz = _calibrate(tmp_path, board_name, n)
    assert reported_hz == hz == get_board(board_name).emulator.clock_hz
    ns_per_tick = 1e9 / hz
    # n and 2n iterations differ by exactly 2n instructions: the fixed overhead cancels.
    assert abs((ticks2 - ticks1) * ns_per_tick - 2 * n) <= ns_per_tick
    # and each measurement is the loop alone to within a tick plus the counter's own reads.
    assert abs(ticks1 * ns_per_tick - 2 * n) <= ns_per_tick + 40
    if hz == 25_000_000:
        assert ticks1 == 2 * n // 40  # on the MPS2 machines one tick is exactly 40 instructions


@pytest.mark.toolchain
def test_systick_wraps_are_counted(tmp_path):
    """With a 4096-tick period the loops cross 12 and 24 wraps and the count stays exact to a
    tick per wrap (each wrap adds only its interrupt handler's few instructions)."""
    n = 1_000_000  # 2M and 4M instructions: 50000 and 100000 ticks
    ticks1, ticks2, _ = _calibrate(tmp_path, "qemu-m4", n, reload=0xFFF)  # 4096-tick period
    assert ticks1 * 40 == pytest.approx(2 * n, abs=40 * (2 * n // (4096 * 40) + 2))
    assert ticks2 * 40 == pytest.approx(4 * n, abs=40 * (4 * n // (4096 * 40) + 2))


def _standin_project(tmp_path: Path, board_name: str, build: bool = True):
    return write_project(
        standin.graph(),
        board_name,
        tmp_path / board_name,
        engine=standin.StandinEngine(),
        simulate=standin.simulate,
        build=build,
    )


@pytest.mark.parametrize("board", [b.name for b in BOARDS])
@pytest.mark.toolchain
def test_every_board_project_builds_and_fits(tmp_path, board):
    """A small CNN through the real engine and simulator, for every catalogued board."""
    model = random_cnn(np.random.default_rng(11))
    graph = load_tflite(model)
    project = write_project(graph, board, tmp_path / board, model_bytes=model)
    report = project.report
    b = get_board(board)
    assert report["flash_bytes"] and report["ram_bytes"]
    assert report["flash_bytes"] <= b.flash[0].size
    assert report["ram_bytes"] <= b.largest_sram_region.size
    elf = project.path / report["elf"]
    assert elf.exists()
    # The image is linked at the board's own addresses (not the emulator's) for real boards.
    sections = subprocess.run(
        ["arm-none-eabi-objdump", "-h", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    vector_line = next(ln for ln in sections.splitlines() if ".isr_vector" in ln)
    flash_origin = b.flash[0].origin if b.flash_tool else b.emulator.flash.origin
    assert int(vector_line.split()[3], 16) == flash_origin
    # the arena is placed explicitly, in RAM
    arena_line = next(ln for ln in sections.splitlines() if " .arena " in ln)
    ram = b.linker_memory(emulated=not b.flash_tool)[1]
    assert ram.origin <= int(arena_line.split()[3], 16) < ram.origin + ram.size
    for name in ("Makefile", "README.md", "report.json", "memory.png", ".mcu-effnet-project"):
        assert (project.path / name).exists()


@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m33", "stm32f405"])
@pytest.mark.toolchain
def test_semihosting_files_and_status(tmp_path, board):
    project = _standin_project(tmp_path, board, build=False)
    elf = toolchain.make(project.path, "qemu")
    x = np.random.default_rng(3).integers(-128, 128, size=(7, 32), dtype=np.int8)
    result = toolchain.run_qemu(project.board, elf, inputs=x, output_bytes=8, timeout=60)
    assert result.status == 0, result.stdout
    assert result.check_ok and result.mismatches == 0
    assert result.file_samples == 7
    np.testing.assert_array_equal(result.outputs, standin.simulate(None, x))
    assert result.instructions and result.instructions > 0


@pytest.mark.toolchain
def test_failing_check_exits_nonzero(tmp_path):
    """A firmware whose output differs from the embedded expectation exits with status 1."""
    wrong = lambda graph, x: standin.simulate(graph, x) ^ np.int8(1)  # noqa: E731
    project = write_project(
        standin.graph(),
        "qemu-m4",
        tmp_path / "p",
        engine=standin.StandinEngine(),
        simulate=wrong,
        build=False,
    )
    elf = toolchain.make(project.path, "qemu")
    result = toolchain.run_qemu(project.board, elf, timeout=60)
    assert result.status == 1
    assert not result.check_ok and result.mismatches == 8
    assert result.lines["DONE"][0]["status"] == "1"


@pytest.mark.toolchain
def test_makefile_run_and_size_targets(tmp_path):
    """What a user types in the project folder: make run (QEMU) and make size."""
    project = _standin_project(tmp_path, "stm32f405", build=False)
    run = subprocess.run(
        ["make", "-s", "-C", str(project.path), "run"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "MCU-EFFNET CHECK ok mismatches=0" in run.stdout
    assert "machine=netduinoplus2" in run.stdout
    size = subprocess.run(
        ["make", "-s", "-C", str(project.path), "size"], capture_output=True, text=True, timeout=120
    )
    assert size.returncode == 0, size.stderr
    assert "build/board/firmware.elf" in size.stdout and "build/qemu/firmware.elf" in size.stdout
    assert (project.path / "build" / "board" / "firmware.bin").exists()


@pytest.mark.toolchain
def test_fault_is_reported_and_exits(tmp_path):
    """A model that faults (here: a load from unmapped memory) ends QEMU with a FAULT line."""
    engine = standin.StandinEngine()
    engine.files = dict(engine.files)
    engine.files["model.c"] = standin.MODEL_C.replace(
        "int32_t acc = 0;", "int32_t acc = *(volatile const int32_t *)0x7FFFFFF0u;"
    )
    project = write_project(
        standin.graph(), "qemu-m4", tmp_path / "p", engine=engine, simulate=standin.simulate, build=False
    )
    elf = toolchain.make(project.path, "qemu")
    result = toolchain.run_qemu(project.board, elf, timeout=60)
    assert result.status == 3, result.stdout
    assert "MCU-EFFNET FAULT hardfault" in result.stdout
    assert result.output is None and result.error.startswith("hardfault")
