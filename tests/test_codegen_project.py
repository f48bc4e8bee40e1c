"""The project writer: folder safety (marker, --force, no half-written output), the fit check,
linker scripts from the catalog, report.json and memory.png, and the --runtime tflm files.

Most tests need no ARM toolchain (build=False); the ones that build are marked with it.
"""

from __future__ import annotations

import json
import re

import firmware_standin as standin
import numpy as np
import pytest
from tflite_builder import ModelBuilder, random_cnn

from mcu_effnet.boards import BOARDS, get_board
from mcu_effnet.codegen import project_report
from mcu_effnet.codegen.c_literals import c_array_body as c_array
from mcu_effnet.codegen.project import MARKER, write_project
from mcu_effnet.errors import UserError
from mcu_effnet.graph import load_tflite


def _write(out, board="qemu-m4", **kw):
    kw.setdefault("engine", standin.StandinEngine())
    kw.setdefault("simulate", standin.simulate)
    kw.setdefault("build", False)
    return write_project(standin.graph(), board, out, **kw)


def test_c_array_formats_rows():
    assert c_array([1, -2, 3], per_line=2) == "    1, -2,\n    3"
    assert c_array(np.arange(3, dtype=np.int8).reshape(1, 3)) == "    0, 1, 2"


def test_project_layout_report_and_png(tmp_path):
    p = _write(tmp_path / "fw")
    for rel in (
        "Makefile",
        "README.md",
        "main.c",
        "test_vector.c",
        "model/model.c",
        "platform/qemu.ld",
        "platform/startup.c",
        "platform/board_config.h",
        "report.json",
        "memory.png",
        MARKER,
    ):
        assert (p.path / rel).is_file(), rel
    assert not (p.path / "platform" / "board.ld").exists()  # qemu-m4 has no hardware image
    report = json.loads((p.path / "report.json").read_text())
    for key in (
        "flash_bytes",
        "ram_bytes",
        "model_ram_bytes",
        "arena_bytes",
        "weights_bytes",
        "layers",
        "instructions_per_inference",
    ):
        assert key in report
    assert report["arena_bytes"] == 64 and report["layers"][0]["live_bytes"] == 64
    assert (p.path / "memory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the embedded expectation is the simulator's output for the embedded input (bytes, as int8)
    text = (p.path / "test_vector.c").read_text()
    arrays = re.findall(r"\{([^}]*)\}", text)
    x = np.array([int(v) for v in arrays[0].replace("\n", " ").split(",")], dtype=np.uint8).view(np.int8)
    y = np.array([int(v) for v in arrays[1].replace("\n", " ").split(",")], dtype=np.uint8).view(np.int8)
    np.testing.assert_array_equal(y, standin.simulate(None, x[None])[0])
    # nothing left beside it
    assert sorted(q.name for q in tmp_path.iterdir()) == ["fw"]


def test_refuses_folder_not_ours_unless_forced(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not made by mcu-effnet.*--force"):
        _write(out)
    assert (out / "notes.txt").read_text() == "keep me"
    _write(out, force=True)
    assert not (out / "notes.txt").exists() and (out / MARKER).exists()
    _write(out)  # ours now: replaced without --force


def test_failure_leaves_no_half_written_folder(tmp_path):
    def broken(graph, x):
        raise UserError("simulator says no")

    with pytest.raises(UserError, match="simulator says no"):
        _write(tmp_path / "fw", simulate=broken)
    assert list(tmp_path.iterdir()) == []
    # and an existing project stays as it was
    _write(tmp_path / "fw")
    before = (tmp_path / "fw" / "test_vector.c").read_text()

    def late_failure(*args, **kwargs):
        raise RuntimeError("disk full")

    orig = project_report.write_memory_png
    project_report.write_memory_png = late_failure
    try:
        with pytest.raises(RuntimeError):
            _write(tmp_path / "fw", seed=7)
    finally:
        project_report.write_memory_png = orig
    assert (tmp_path / "fw" / "test_vector.c").read_text() == before
    assert sorted(q.name for q in tmp_path.iterdir()) == ["fw"]


def test_too_big_names_both_figures(tmp_path):
    engine = standin.StandinEngine(arena_bytes=180 * 1024)
    with pytest.raises(UserError) as info:
        _write(tmp_path / "fw", board="stm32f405", engine=engine)
    msg = str(info.value)
    assert "needs 189 KB SRAM (arena 180 KB + I/O buffers" in msg
    assert "stack 8 KB" in msg
    assert "I/O buffers 40 B" in msg
    assert "stm32f405 has 192 KB in all, at most 128 KB contiguous (SRAM)" in msg
    assert "\n" not in msg
    engine = standin.StandinEngine(weights_bytes=1024 * 1024)
    with pytest.raises(UserError, match=r"needs 1072 KB flash .*nrf52840dk has 1024 KB"):
        _write(tmp_path / "fw", board="nrf52840dk", engine=engine)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("board", [b.name for b in BOARDS])
def test_linker_scripts_follow_the_catalog(tmp_path, board):
    b = get_board(board)
    p = _write(tmp_path / "fw", board=board)
    variants = [("qemu.ld", True)] + ([("board.ld", False)] if b.flash_tool else [])
    for name, emulated in variants:
        text = (p.path / "platform" / name).read_text()
        flash, ram = b.linker_memory(emulated)
        assert f"FLASH (rx)  : ORIGIN = 0x{flash.origin:08X}, LENGTH = {flash.size}" in text
        assert f"RAM   (rwx) : ORIGIN = 0x{ram.origin:08X}, LENGTH = {ram.size}" in text
        assert "__stack_size = 8192;" in text and ".arena (NOLOAD)" in text
    if b.flash_tool:
        assert (p.path / "platform" / "uart.c").exists()
        assert b.flash_tool in (p.path / "Makefile").read_text()


def test_stm32f405_uses_its_own_qemu_machine_and_real_sizes(tmp_path):
    p = _write(tmp_path / "fw", board="stm32f405")
    qemu_ld = (p.path / "platform" / "qemu.ld").read_text()
    assert "ORIGIN = 0x08000000, LENGTH = 1048576" in qemu_ld
    assert "ORIGIN = 0x20000000, LENGTH = 131072" in qemu_ld
    assert "-M netduinoplus2" in (p.path / "Makefile").read_text()


def test_tflm_project_files(tmp_path):
    model = random_cnn(np.random.default_rng(1))
    graph = load_tflite(model)
    p = write_project(graph, "qemu-m4", tmp_path / "tflm", runtime="tflm", model_bytes=model, build=False)
    main = (p.path / "main.cc").read_text()
    kinds = list(dict.fromkeys(op.kind for op in graph.ops))
    from mcu_effnet.codegen.tflm import RESOLVER_METHODS

    assert f"MicroMutableOpResolver<{len(kinds)}>" in main or f"kOpCount = {len(kinds)};" in main
    assert re.findall(r"resolver->(\w+)\(\)", main) == [RESOLVER_METHODS[k] for k in kinds]
    # the arena: TFLite Micro's recorded total plus the margin
    recorded = p.report["tflm_arena_recorded_bytes"]
    assert recorded > 0
    assert recorded < p.report["arena_bytes"] <= recorded * 1.1 + 1024 + 16
    assert f"#define MODEL_ARENA_SIZE {p.report['arena_bytes']}u" in (p.path / "model/model.h").read_text()
    data = (p.path / "model/model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_model_data[]" in data
    body = data[data.index("{") + 1 : data.index("}")]
    assert bytes(int(v) for v in body.replace("\n", " ").split(",")) == model
    makefile = (p.path / "Makefile").read_text()
    assert "prebuilt/cortex-m4/libtflm_$(TFLM_VARIANT).a" in makefile and "TFLM_DIR" in makefile


def test_tflm_refuses_ops_without_resolver_entry(tmp_path):
    b = ModelBuilder(np.random.default_rng(0))
    x = b.input((1, 4), scale=0.1, zero_point=0)
    b.outputs = [b.unary("RELU", x)]
    graph = load_tflite(b.build())
    graph.ops[0].kind = "NOT_AN_OP"
    with pytest.raises(UserError, match=r"op 0 \(NOT_AN_OP\) has no TFLite Micro resolver"):
        write_project(graph, "qemu-m4", tmp_path / "t", runtime="tflm", model_bytes=b"x", build=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.toolchain
def test_build_fills_sizes(tmp_path):
    p = _write(tmp_path / "fw", board="stm32", build=True)
    r = p.report
    assert r["elf"] == "build/board/firmware.elf"
    assert r["flash_bytes"] == r["size"]["text"] + r["size"]["data"]
    assert r["ram_bytes"] == r["size"]["data"] + r["size"]["bss"]
    # the RAM image holds at least the stack and the arena
    assert r["ram_bytes"] >= 8192 + 64
    assert json.loads((p.path / "report.json").read_text())["flash_bytes"] == r["flash_bytes"]


@pytest.mark.toolchain
def test_engine_files_in_subfolders_build(tmp_path):
    """The engine's files keep their relative paths under model/; headers' folders are on -I."""
    engine = standin.StandinEngine()
    engine.files = {
        "model.h": standin.MODEL_H,
        "model.c": standin.MODEL_C.replace(
            '#include "model.h"', '#include "model.h"\n#include "kernels.h"'
        ).replace("arena[j] = (acc + 2) >> 2;", "arena[j] = round_shift2(acc);"),
        "runtime/kernels.h": "#ifndef KERNELS_H\n#define KERNELS_H\n#include <stdint.h>\n"
        "int32_t round_shift2(int32_t v);\n#endif\n",
        "runtime/kernels.c": '#include "kernels.h"\nint32_t round_shift2(int32_t v) { return (v + 2) >> 2; }\n',
    }
    p = _write(tmp_path / "fw", engine=engine, build=True)
    assert "-Imodel/runtime" in (p.path / "Makefile").read_text()
    assert "model/runtime/kernels.c" in (p.path / "Makefile").read_text()
    assert p.report["flash_bytes"] > 0
