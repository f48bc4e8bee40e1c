"""The files of a firmware project, rendered from ``firmware_templates/``: the platform layer
(startup, console, harness, linker scripts from the board catalog, the console UART), the test
vector, the model (the engine's files or TFLite Micro's) and the Makefile."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import jinja2

from mcu_effnet.boards import Board, get_board
from mcu_effnet.boards.uart import CONSOLE_UARTS
from mcu_effnet.codegen import io_ports
from mcu_effnet.codegen.project_plan import DEFAULT_STACK_BYTES, ProjectPlan
from mcu_effnet.codegen.templates import TEMPLATES, environment
from mcu_effnet.codegen.tflm import TFLM_KERNELS
from mcu_effnet.errors import UserError

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
# Sources only the emulator build compiles, and only the board build.
QEMU_ONLY_SOURCES = ("platform/semihost.c", "platform/counter_systick.c")
BOARD_ONLY_SOURCES = ("platform/uart.c", "platform/counter_dwt.c")


def write_file(dest: Path, rel: str, text: str, files: list[str]) -> None:
    """Writes ``dest/rel`` (folders made as needed) and records ``rel`` in ``files``."""
    path = dest / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    files.append(rel)


def _include_dirs(paths: list[str]) -> list[str]:
    dirs = {str(Path(p).parent) for p in paths if p.endswith((".h", ".hpp"))}
    ordered = sorted(d for d in dirs if d != ".")
    return [".", *ordered]


def render_platform(
    board: Board | str,
    dest: str | os.PathLike,
    stack: int = DEFAULT_STACK_BYTES,
    env: jinja2.Environment | None = None,
    files: list[str] | None = None,
) -> list[str]:
    """The platform layer (alone: for tests and bring-up programs); returns the files written."""
    board = get_board(board) if isinstance(board, str) else board
    env, dest, files = env or environment(), Path(dest), [] if files is None else files
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
        write_file(dest, f"platform/{name}", text, files)
    text = env.get_template("platform/board_config.h.j2").render(board=board, stack_size=stack)
    write_file(dest, "platform/board_config.h", text, files)
    if board.flash_tool:
        uart = CONSOLE_UARTS.get(board.name)
        if uart is None:
            raise UserError(f"{board.name}: no console UART is defined for this board")
        if isinstance(uart, str):
            shutil.copyfile(TEMPLATES / "platform" / uart, plat / "uart.c")
        else:
            text = env.get_template("platform/uart_stm32.c.j2").render(board=board, uart=uart)
            (plat / "uart.c").write_text(text)
        files.append("platform/uart.c")
    return files


def _describe(ports: list) -> str:
    return ", ".join(f"{p.dtype} {list(p.shape)}" for p in ports)


def render_project(env: jinja2.Environment, plan: ProjectPlan, dest: Path) -> list[str]:
    """Every source file and the Makefile of the project into ``dest``: returns them in order."""
    board, tflm = plan.board, plan.tflm
    files = render_platform(board, dest, plan.stack_bytes, env)
    common = dict(board=board, model_name=plan.model_name, runtime=plan.runtime, profile=plan.profile)
    test_vector = env.get_template("platform/test_vector.c.j2").render(
        **common,
        test_input=plan.test_input,
        test_expected=plan.test_expected,
        input_note=f"seeded random {plan.input.dtype} (seed {plan.seed}), shape {list(plan.input.shape)}"
        if len(plan.inputs) < 2
        else f"seeded random values (seed {plan.seed}) for inputs {_describe(plan.inputs)}",
        layout_note=f"outputs {_describe(plan.outputs)}",
    )
    write_file(dest, "test_vector.c", test_vector, files)
    if plan.runtime == "native":
        for rel, text in sorted(plan.engine.files.items()):
            write_file(dest, f"model/{rel}", text, files)
        write_file(dest, "main.c", env.get_template("project/main.c.j2").render(**common), files)
    else:
        values = dict(
            common,
            inputs=plan.inputs,
            outputs=plan.outputs,
            input_size=sum(p.size for p in plan.inputs),
            output_size=sum(p.size for p in plan.outputs),
            input_ctype=io_ports.shared_ctype([p.ctype for p in plan.inputs]),
            output_ctype=io_ports.shared_ctype([p.ctype for p in plan.outputs]),
            model_source=plan.label,
        )
        for rel, text in tflm.sources(env, values).items():
            write_file(dest, rel, text, files)
    if plan.profile:
        from mcu_effnet.codegen import profile as profile_mod

        profile_mod.render(TEMPLATES, dest, files)
    c_sources = [f for f in files if f.endswith(".c") and f not in BOARD_ONLY_SOURCES]
    c_sources = sorted(set(c_sources) - set(QEMU_ONLY_SOURCES))
    makefile = env.get_template("project/Makefile.j2").render(
        **common,
        c_sources=c_sources,
        cxx_sources=sorted(f for f in files if f.endswith(".cc")),
        include_dirs=_include_dirs(files),
        tflm_dir=str(tflm.tflm_dir) if tflm and tflm.tflm_dir else "",
        tflm_variant=TFLM_KERNELS[plan.kernels],
        profile_marks=plan.profile_marks,
    )
    write_file(dest, "Makefile", makefile, files)
    if plan.model_bytes is not None:
        (dest / "model.tflite").write_bytes(plan.model_bytes)
        files.append("model.tflite")
    return files
