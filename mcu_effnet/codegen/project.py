"""Firmware projects: one folder per model and board, rendered from ``firmware_templates/``.

``write_project(graph, board, out_dir)`` renders everything into a temporary folder beside
``out_dir`` (platform layer, linker scripts from the board catalog, the generated model, a test
vector with the host simulator's expected output, Makefile, README), builds it when the ARM
toolchain is present (to fill in the linked sizes), writes ``report.json`` and ``memory.png``,
and only then moves it into place. An existing ``out_dir`` is replaced only when it carries our
marker file, or with ``force=True``.

Layout of a project::

    Makefile README.md report.json memory.png model.tflite .mcu-effnet-project
    main.c | main.cc, model_data.cc (tflm)    test_vector.c test_vector.h
    model/...        the engine's files (native runtime) or model.h (tflm)
    platform/...     startup, console, harness, semihosting / UART, counters, linker scripts
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcu_effnet.boards import Board, get_board
from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph

MARKER = ".mcu-effnet-project"
TEMPLATES = Path(__file__).resolve().parent.parent / "firmware_templates"
DEFAULT_STACK_BYTES = 8 * 1024
# RAM of the platform layer beside the model's buffers: console line, counters, .data of newlib.
RUNTIME_RAM_BYTES = 1024
# Flash of everything but the weights, for the fit check before linking (the linker has the
# final word): platform + kernels for native, the interpreter and its kernels for TFLite Micro.
CODE_FLASH_BYTES = {"native": 48 * 1024, "tflm": 96 * 1024}
RUNTIMES = ("native", "tflm")
# --kernels -> the prebuilt TFLite Micro library variant (libtflm_<variant>.a)
TFLM_KERNELS = {"reference": "ref", "cmsis-nn": "cmsis_nn"}
KiB = 1024

# Platform files copied as they are (C that does not vary).
_PLATFORM_FILES = (
    "platform.h",
    "cmsis_regs.h",
    "console.c",
    "console.h",
    "startup.c",
    "harness.c",
    "harness.h",
    "semihost.c",
    "counter_systick.c",
    "counter_dwt.c",
)
_PLATFORM_SOURCES = ("platform/startup.c", "platform/console.c", "platform/harness.c")


class DoesNotFit(UserError):
    """The model's RAM or flash exceeds the board's (``compare`` reports it as a result)."""


@dataclass(frozen=True)
class _Enable:
    address: int
    bit: int
    note: str


@dataclass(frozen=True)
class _StmUart:
    """A polled transmit-only console on an STM32 (register data for ``uart_stm32.c.j2``)."""

    name: str
    base: int
    legacy_registers: bool  # STM32F4 (SR/DR/BRR/CR1) vs F7/H7/L4 (CR1/BRR/ISR/TDR)
    gpio_base: int
    tx_pin: int
    tx_pin_name: str
    af: int
    enable: tuple[_Enable, ...]
    brr: int
    brr_note: str
    clock_note: str
    note: str
    baud: int = 115200


# Console UART of each real board (the ST-LINK / J-Link virtual COM port where there is one).
_UARTS: dict[str, _StmUart | str] = {
    "stm32f746g-disco": _StmUart(
        name="USART1",
        base=0x4001_1000,
        legacy_registers=False,
        gpio_base=0x4002_0000,
        tx_pin=9,
        tx_pin_name="PA9",
        af=7,
        enable=(
            _Enable(0x4002_3830, 0, "RCC_AHB1ENR.GPIOAEN"),
            _Enable(0x4002_3844, 4, "RCC_APB2ENR.USART1EN"),
        ),
        brr=139,
        brr_note="16 MHz HSI / 115200",
        clock_note="16 MHz HSI",
        note="USART1 is the ST-LINK virtual COM port on the discovery board.",
    ),
    "stm32f405": _StmUart(
        name="USART1",
        base=0x4001_1000,
        legacy_registers=True,
        gpio_base=0x4002_0000,
        tx_pin=9,
        tx_pin_name="PA9",
        af=7,
        enable=(
            _Enable(0x4002_3830, 0, "RCC_AHB1ENR.GPIOAEN"),
            _Enable(0x4002_3844, 4, "RCC_APB2ENR.USART1EN"),
        ),
        brr=139,
        brr_note="16 MHz HSI / 115200",
        clock_note="16 MHz HSI",
        note="Connect a USB-serial adapter to PA9 (no on-board debugger UART is assumed).",
    ),
    "nucleo-h743zi": _StmUart(
        name="USART3",
        base=0x4000_4800,
        legacy_registers=False,
        gpio_base=0x5802_0C00,
        tx_pin=8,
        tx_pin_name="PD8",
        af=7,
        enable=(
            _Enable(0x5802_44E0, 3, "RCC_AHB4ENR.GPIODEN"),
            _Enable(0x5802_44E8, 18, "RCC_APB1LENR.USART3EN"),
        ),
        brr=556,
        brr_note="64 MHz HSI / 115200",
        clock_note="64 MHz HSI",
        note="USART3 is the ST-LINK virtual COM port on Nucleo-144 boards.",
    ),
    "nucleo-l4r5zi": _StmUart(
        name="LPUART1",
        base=0x4000_8000,
        legacy_registers=False,
        gpio_base=0x4800_1800,
        tx_pin=7,
        tx_pin_name="PG7",
        af=8,
        enable=(
            _Enable(0x4002_1058, 28, "RCC_APB1ENR1.PWREN"),
            _Enable(0x4000_7004, 9, "PWR_CR2.IOSV (port G is powered from VDDIO2)"),
            _Enable(0x4002_104C, 6, "RCC_AHB2ENR.GPIOGEN"),
            _Enable(0x4002_105C, 0, "RCC_APB1ENR2.LPUART1EN"),
        ),
        brr=8889,
        brr_note="256 * 4 MHz MSI / 115200 (LPUART)",
        clock_note="4 MHz MSI",
        note="LPUART1 is the ST-LINK virtual COM port on Nucleo-144 L4R5ZI.",
    ),
    "nrf52840dk": "uart_nrf52.c",
}


@dataclass
class Project:
    path: Path
    board: Board
    runtime: str
    report: dict[str, Any]
    files: list[str] = field(default_factory=list)

    @property
    def report_path(self) -> Path:
        return self.path / "report.json"


def _kib(n: float) -> str:
    if n < KiB:
        return f"{int(n)} B"
    value = n / KiB
    return f"{value:.0f} KB" if value >= 10 or value == int(value) else f"{value:.1f} KB"


def c_array(values: Any, per_line: int = 16) -> str:
    """Integers as the body of a C array initializer, ``per_line`` to a line, indented.

    >>> c_array([1, -2, 3], per_line=2)
    '    1, -2,\\n    3'
    """
    flat = [int(v) for v in np.asarray(values).reshape(-1)]
    lines = [
        "    " + ", ".join(str(v) for v in flat[i : i + per_line]) for i in range(0, len(flat), per_line)
    ]
    return ",\n".join(lines)


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["c_array"] = c_array
    env.globals["kib"] = _kib
    return env


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None


def load_marker(path: str | os.PathLike) -> dict[str, Any]:
    """The marker of a project folder made by ``write_project`` (UserError if it is not one)."""
    folder = Path(path)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such project folder")
    marker = _read_marker(folder)
    if marker is None:
        raise UserError(f"{folder}: not a firmware project made by mcu-effnet codegen (no {MARKER})")
    return marker


def _check_out_dir(out: Path, force: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    if _read_marker(out) is not None or force or not any(out.iterdir()):
        return
    raise UserError(
        f"--out {out}: folder exists and was not made by mcu-effnet (no {MARKER}); pass --force to replace it"
    )


def _io_tensors(graph: Graph):
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UserError(
            f"{graph.source or 'model'}: has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
            "firmware projects support one input and one output"
        )
    tin, tout = graph.input_tensors[0], graph.output_tensors[0]
    for t, what in ((tin, "input"), (tout, "output")):
        if t.dtype != "int8":
            raise UserError(f"{graph.source or 'model'}: {what} '{t.name}' is {t.dtype}; firmware needs int8")
    return tin, tout


def ram_budget(arena: int, io_bytes: int, stack: int) -> dict[str, int]:
    """SRAM the firmware needs, by part (all in the board's largest contiguous region)."""
    return {"arena": arena, "I/O buffers": io_bytes, "stack": stack, "runtime": RUNTIME_RAM_BYTES}


def check_fits(
    board: Board, runtime: str, arena: int, io_bytes: int, stack: int, weights: int, model_label: str
) -> int:
    """Raises UserError (both figures) when the model cannot fit; returns the SRAM needed."""
    parts = ram_budget(arena, io_bytes, stack)
    needed = sum(parts.values())
    region = board.largest_sram_region
    if needed > region.size:
        detail = " + ".join(f"{k} {_kib(v)}" for k, v in parts.items())
        has = f"{board.name} has {_kib(board.sram_bytes)}"
        if len(board.sram) > 1:
            has += f" in all, at most {_kib(region.size)} contiguous ({region.name})"
        raise DoesNotFit(f"{model_label}: needs {_kib(needed)} SRAM ({detail}), {has}")
    flash_needed = weights + CODE_FLASH_BYTES[runtime]
    flash_has = board.flash[0].size
    if flash_needed > flash_has:
        raise DoesNotFit(
            f"{model_label}: needs {_kib(flash_needed)} flash (weights {_kib(weights)} + code "
            f"{_kib(CODE_FLASH_BYTES[runtime])}), {board.name} has {_kib(flash_has)}"
        )
    return needed


def _default_simulate(graph: Graph, x: np.ndarray) -> np.ndarray:
    from mcu_effnet.sim import run

    out = run(graph, x)
    return out[0] if isinstance(out, list | tuple) else out


def test_vector_input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """The deterministic int8 input embedded in every project (batch axis included)."""
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(1, *shape[1:]) if shape else (1,), dtype=np.int8)


def _include_dirs(paths: list[str]) -> list[str]:
    dirs = {str(Path(p).parent) for p in paths if p.endswith((".h", ".hpp"))}
    ordered = sorted(d for d in dirs if d != ".")
    return [".", *ordered]


def _render_platform(env, board: Board, dest: Path, stack: int, files: list[str]) -> None:
    plat = dest / "platform"
    plat.mkdir(parents=True, exist_ok=True)
    for name in _PLATFORM_FILES:
        shutil.copyfile(TEMPLATES / "platform" / name, plat / name)
        files.append(f"platform/{name}")
    shutil.copyfile(TEMPLATES / "platform" / "test_vector.h", dest / "test_vector.h")
    files.append("test_vector.h")
    variants = [("qemu.ld", True)]
    if board.flash_tool:
        variants.append(("board.ld", False))
    for name, emulated in variants:
        flash, ram = board.linker_memory(emulated)
        note = (
            f"QEMU {board.emulator.machine}: its origins, the board's sizes"
            if emulated
            else f"the {board.name} itself"
        )
        text = env.get_template("platform/linker.ld.j2").render(
            board=board, flash=flash, ram=ram, stack_size=stack, variant_note=note
        )
        (plat / name).write_text(text)
        files.append(f"platform/{name}")
    (plat / "board_config.h").write_text(
        env.get_template("platform/board_config.h.j2").render(board=board, stack_size=stack)
    )
    files.append("platform/board_config.h")
    if board.flash_tool:
        uart = _UARTS.get(board.name)
        if uart is None:
            raise UserError(f"{board.name}: no console UART is defined for this board")
        if isinstance(uart, str):
            shutil.copyfile(TEMPLATES / "platform" / uart, plat / "uart.c")
        else:
            text = env.get_template("platform/uart_stm32.c.j2").render(board=board, uart=uart)
            (plat / "uart.c").write_text(text)
        files.append("platform/uart.c")


def uart_note(board: Board) -> str:
    uart = _UARTS.get(board.name)
    if uart is None:
        return "semihosting (QEMU)"
    if isinstance(uart, str):
        return "UARTE0 TX on P0.06 (J-Link virtual COM port), 115200 8N1"
    return f"{uart.name} TX on {uart.tx_pin_name}, {uart.baud} 8N1"


def render_platform(
    board: Board | str, dest: str | os.PathLike, stack: int = DEFAULT_STACK_BYTES
) -> list[str]:
    """Only the platform layer (for tests and bring-up programs): returns the files written."""
    board = get_board(board) if isinstance(board, str) else board
    files: list[str] = []
    _render_platform(_environment(), board, Path(dest), stack, files)
    return files


def _write(dest: Path, rel: str, text: str, files: list[str]) -> None:
    path = dest / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    files.append(rel)


def write_project(
    graph: Graph,
    board: Board | str,
    out_dir: str | os.PathLike,
    runtime: str = "native",
    force: bool = False,
    *,
    model_bytes: bytes | None = None,
    model_source: str | None = None,
    stack_bytes: int = DEFAULT_STACK_BYTES,
    engine: Any = None,
    simulate: Callable[[Graph, np.ndarray], np.ndarray] | None = None,
    seed: int = 0,
    build: bool = True,
    tflm_dir: str | os.PathLike | None = None,
    kernels: str = "reference",
    progress: Callable[[str], None] | None = None,
) -> Project:
    """Renders, builds (when the toolchain is there) and reports a firmware project.

    ``engine``: an ``EngineSources`` (default: ``generate_engine(graph)``); ``simulate``: the
    host simulator giving the test vector's expected output (default: ``mcu_effnet.sim.run``).
    ``model_bytes``: the ``.tflite`` file (copied into the project for ``run``; required for
    ``runtime="tflm"``).
    """
    board = get_board(board) if isinstance(board, str) else board
    if kernels not in TFLM_KERNELS:
        raise UserError(f"--kernels: unknown kernels {kernels!r}; choose one of {', '.join(TFLM_KERNELS)}")
    if kernels != "reference" and runtime != "tflm":
        raise UserError("--kernels chooses TFLite Micro's kernels: it needs --runtime tflm")
    if runtime not in RUNTIMES:
        raise UserError(f"--runtime: unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    out = Path(out_dir)
    _check_out_dir(out, force)
    tin, tout = _io_tensors(graph)
    label = model_source or graph.source or "model"
    model_name = Path(label).stem if label else "model"
    if model_name == "model" and Path(label).parent.name not in ("", "."):
        model_name = Path(label).resolve().parent.name  # a run folder's model.tflite: name it by its run
    say = progress or (lambda _msg: None)

    in_size = int(np.prod(tin.shape, dtype=np.int64))
    out_size = int(np.prod(tout.shape, dtype=np.int64))
    simulate = simulate or _default_simulate

    if runtime == "native":
        if engine is None:
            from mcu_effnet.codegen.engine import generate_engine

            engine = generate_engine(graph, dsp=board.has_dsp)  # the core picks the kernels
        arena = int(engine.arena_bytes)
        weights = int(engine.weights_bytes)
        model_ram = int(getattr(engine, "model_ram_bytes", arena))
        layers = [_layer_row(r) for r in getattr(engine, "layers", [])]
        plan = getattr(engine, "plan", None)
        memory_plan = plan.to_dict(getattr(engine, "graph", None) or graph) if plan is not None else None
        if memory_plan is not None:  # SiLU pairs the engine runs as one table lookup
            memory_plan["fused"] = [f.to_dict() for f in getattr(engine, "fusions", [])]
        tflm = None
    else:
        if model_bytes is None:
            raise UserError(f"{label}: --runtime tflm needs the .tflite file itself")
        from mcu_effnet.codegen import tflm as tflm_mod

        tflm = tflm_mod.plan(graph, model_bytes, tflm_dir=tflm_dir, kernels=kernels)
        arena = tflm.arena_bytes
        weights = len(model_bytes)
        model_ram = arena
        layers = tflm_mod.layer_rows(graph)
        memory_plan = None

    io_bytes = in_size + out_size
    sram_needed = check_fits(board, runtime, arena, io_bytes, stack_bytes, weights, label)

    x = test_vector_input(tin.shape, seed)
    expected = np.asarray(simulate(graph, x))
    if expected.size != out_size or expected.dtype != np.int8:
        raise UserError(f"{label}: the simulator returned {expected.shape} {expected.dtype}, expected int8")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        env = _environment()
        files: list[str] = []
        _render_platform(env, board, tmp, stack_bytes, files)
        common = dict(board=board, model_name=model_name, runtime=runtime)
        _write(
            tmp,
            "test_vector.c",
            env.get_template("platform/test_vector.c.j2").render(
                **common,
                test_input=x,
                test_expected=expected,
                input_note=f"seeded random int8 (seed {seed}), shape {list(tin.shape)}",
            ),
            files,
        )
        if runtime == "native":
            for rel, text in sorted(engine.files.items()):
                _write(tmp, f"model/{rel}", text, files)
            _write(tmp, "main.c", env.get_template("project/main.c.j2").render(**common), files)
        else:
            tflm.render(
                env, tmp, dict(common, input_size=in_size, output_size=out_size, model_source=label), files
            )
        c_sources = [f for f in files if f.endswith(".c") and f not in _board_only_sources()]
        c_sources = sorted(set(c_sources) - set(_qemu_only_sources()))
        cxx_sources = sorted(f for f in files if f.endswith(".cc"))
        tflm_default = str(tflm.tflm_dir) if tflm and tflm.tflm_dir else ""
        _write(
            tmp,
            "Makefile",
            env.get_template("project/Makefile.j2").render(
                **common,
                c_sources=c_sources,
                cxx_sources=cxx_sources,
                include_dirs=_include_dirs(files),
                tflm_dir=tflm_default,
                tflm_variant=TFLM_KERNELS[kernels],
            ),
            files,
        )
        if model_bytes is not None:
            (tmp / "model.tflite").write_bytes(model_bytes)
            files.append("model.tflite")

        report = {
            "board": board.name,
            "runtime": runtime,
            "model": model_name,
            "model_source": str(label),
            "emulator": board.emulator.machine,
            "input_shape": list(tin.shape),
            "output_shape": list(tout.shape),
            "input_bytes": in_size,
            "output_bytes": out_size,
            "arena_bytes": arena,
            "model_ram_bytes": model_ram,
            "weights_bytes": weights,
            "stack_bytes": stack_bytes,
            "sram_needed_bytes": sram_needed,
            "board_ram_bytes": board.largest_sram_region.size,
            "board_sram_total_bytes": board.sram_bytes,
            "board_flash_bytes": board.flash[0].size,
            "flash_bytes": None,
            "ram_bytes": None,
            "elf": None,
            "instructions_per_inference": None,
            "layers": layers,
        }
        if memory_plan is not None:  # native: execution order, buffers, in-place ops, peaks
            report["memory_plan"] = memory_plan
        if tflm is not None:
            report["tflm_kernels"] = kernels
            report["tflm_arena_recorded_bytes"] = tflm.recorded_bytes
            report["tflm_ops"] = tflm.ops

        if build:
            from mcu_effnet.codegen import toolchain

            missing = toolchain.missing_tools(need_qemu=False, need_cxx=runtime == "tflm")
            timeout = toolchain.DEFAULT_TIMEOUT
            if tflm is not None:
                library = check_tflm(tflm, board, kernels, toolchain=not missing)
                if library is None and not missing:
                    say(
                        f"no prebuilt TensorFlow Lite Micro library for {board.core}: the build makes "
                        "one once into ~/.cache/mcu-effnet/tflm or $TFLM_CACHE_ROOT (10-25 minutes)"
                    )
                    timeout = toolchain.LIBRARY_BUILD_TIMEOUT
            if missing:
                say("toolchain not found: project written without building it (sizes left empty)")
            else:
                say(f"building {board.name} firmware")
                elf = toolchain.make(tmp, "all", timeout=timeout, label=str(out))
                sizes = toolchain.elf_size(elf)
                report.update(
                    flash_bytes=sizes["flash_bytes"],
                    ram_bytes=sizes["ram_bytes"],
                    elf=str(elf.relative_to(tmp)),
                )
                report["size"] = sizes

        _write(tmp, "README.md", _render_readme(env, board, runtime, model_name, label, report, tflm), files)
        _write(tmp, "report.json", json.dumps(report, indent=2) + "\n", files)
        write_memory_png(tmp / "memory.png", report, board)
        files.append("memory.png")
        marker = {
            "tool": "mcu-effnet",
            "board": board.name,
            "runtime": runtime,
            "kernels": kernels,
            "model": model_name,
            "seed": seed,
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Project(path=out, board=board, runtime=runtime, report=report, files=files)


def check_tflm(tflm: Any, board: Board, kernels: str, toolchain: bool = True) -> Path | None:
    """Before building a TFLite Micro project: a tree is there and can serve this model and board.
    Returns the prebuilt library the project links, None when its build makes one (or no tree
    without the toolchain).

    Without the toolchain, a missing tree is left for the build to report; a core with no
    prebuilt library is refused (nothing to build one with).
    """
    from mcu_effnet.codegen import tflm as tflm_mod

    if tflm.tflm_dir is None:
        if not toolchain:
            return None
        raise UserError(
            "no TensorFlow Lite Micro tree found (looked in "
            + "; ".join(tflm.looked)
            + "): pass --tflm-dir or set TFLM_DIR (the native runtime needs none)"
        )
    return tflm_mod.check_tree(tflm.tflm_dir, board, TFLM_KERNELS[kernels], tflm.ops)


def _qemu_only_sources() -> tuple[str, ...]:
    return ("platform/semihost.c", "platform/counter_systick.c")


def _board_only_sources() -> tuple[str, ...]:
    return ("platform/uart.c", "platform/counter_dwt.c")


def _layer_row(row: Any) -> dict[str, Any]:
    if isinstance(row, dict):
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in row.items()}
    if hasattr(row, "__dataclass_fields__"):
        from dataclasses import asdict

        return _layer_row(asdict(row))
    return {"layer": str(row)}


def _render_readme(env, board, runtime, model_name, label, report, tflm) -> str:
    return env.get_template("project/README.md.j2").render(
        board=board,
        runtime=runtime,
        model_name=model_name,
        model_source=label,
        report=report,
        ram_region=f"{board.largest_sram_region.name}, {_kib(board.largest_sram_region.size)}",
        uart_note=uart_note(board),
        input_size=report["input_bytes"],
        output_size=report["output_bytes"],
        tflm_dir=str(tflm.tflm_dir) if tflm and tflm.tflm_dir else "",
        tflm_variant=TFLM_KERNELS[report.get("tflm_kernels", "reference")],
    )


def _replace(tmp: Path, out: Path) -> None:
    """Moves the finished folder into place; an old one goes only after the new one is there."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.rename(out, old / "project")
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.rename(old / "project", out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _live_bytes(row: dict[str, Any]) -> int | None:
    for key in ("live_bytes", "live", "arena_live_bytes"):
        if key in row and row[key] is not None:
            return int(row[key])
    return None


def write_memory_png(path: Path, report: dict[str, Any], board: Board) -> None:
    """Live activation memory per layer as bars, the board's SRAM as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report.get("layers") or []
    live = [_live_bytes(r) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    if rows and all(v is not None for v in live):
        ax.bar(
            range(len(live)),
            [v / KiB for v in live],
            color="#4477aa",
            label="live activations" if report["runtime"] == "native" else "op working set (inputs + output)",
        )
        ax.set_xlabel("layer (execution order)")
    else:
        ax.bar([0], [report["arena_bytes"] / KiB], color="#4477aa", label="arena")
        ax.set_xticks([])
    ax.axhline(report["arena_bytes"] / KiB, color="#228833", linestyle="--", label="arena (peak)")
    plan = report.get("memory_plan") or {}
    if plan.get("reordered") and plan.get("stored_order_arena_bytes"):
        ax.axhline(
            plan["stored_order_arena_bytes"] / KiB,
            color="#999999",
            linestyle=":",
            label="arena in the stored op order",
        )
    ax.axhline(board.largest_sram_region.size / KiB, color="#cc3311", label=f"{board.name} SRAM")
    ax.set_ylabel("KB")
    ax.set_title(f"{report['model']} on {board.name}: activation memory ({report['runtime']})")
    ax.legend(loc="upper right", fontsize=8)
    top = max(board.largest_sram_region.size, report["arena_bytes"]) / KiB
    peak = max([report["arena_bytes"], *[v for v in live if v is not None]]) / KiB
    if top > 20 * max(peak, 1e-3):
        ax.set_yscale("log")  # a 4 MB emulator RAM would flatten the bars otherwise
        smallest = min([v / KiB for v in live if v], default=peak / 100)
        ax.set_ylim(min(smallest / 2, peak / 10), top * 2)
    else:
        ax.set_ylim(0, top * 1.1)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
