"""Firmware projects: one folder per model and board, rendered from ``firmware_templates/``.

``write_project(graph, board, out_dir)`` is four steps: plan (``project_plan``: the runtime's
model, the fit checks, the test vector with the host simulator's expected output), render
(``project_render``: platform layer, linker scripts from the board catalog, the model, Makefile)
into a temporary folder beside ``out_dir``, build when the ARM toolchain is present
(``project_build``: the linked sizes), report (``project_report``: report.json, README,
memory.png); only then is the folder moved into place. An existing ``out_dir`` is replaced only
when it carries our marker file, or with ``force=True``.

Layout of a project::

    Makefile README.md report.json memory.png model.tflite .mcu-effnet-project
    main.c | main.cc, model_data.cc (tflm)    test_vector.c test_vector.h
    model/...        the engine's files (native runtime) or model.h (tflm)
    platform/...     startup, console, harness, semihosting / UART, counters, linker scripts
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcu_effnet.atomic import staged
from mcu_effnet.boards import Board, get_board
from mcu_effnet.boards.costs import DEFAULT_RESERVE_FLASH_BYTES
from mcu_effnet.codegen.project_build import build_project
from mcu_effnet.codegen.project_plan import DEFAULT_STACK_BYTES, check_choices, plan_project
from mcu_effnet.codegen.project_render import render_project
from mcu_effnet.codegen.project_report import write_report
from mcu_effnet.codegen.templates import environment
from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph
from mcu_effnet.graph.tiling import DEFAULT_MAX_RECOMPUTE

MARKER = ".mcu-effnet-project"


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
    profile: bool = False,
    reserve_flash: int = DEFAULT_RESERVE_FLASH_BYTES,
    max_recompute: float | None = DEFAULT_MAX_RECOMPUTE,
) -> Project:
    """Plans, renders, builds (when the toolchain is there) and reports a firmware project.

    ``engine``: an ``EngineSources`` (default: ``generate_engine(graph)``); ``simulate``: the
    host simulator giving the test vector's expected output (default: ``mcu_effnet.sim.run``).
    ``model_bytes``: the ``.tflite`` file (copied into the project for ``run``; required for
    ``runtime="tflm"``). ``profile``: a profiling build (the counter read around every op,
    ``codegen/profile.py``). ``reserve_flash``: flash the application keeps; the DSP engine
    widens weights only within what is left. ``max_recompute``: the MACs (% of the model's) the
    engine may compute again to run its first layers band by band (``codegen.tile_plan``).
    """
    board = get_board(board) if isinstance(board, str) else board
    check_choices(runtime, kernels)
    out = Path(out_dir)
    _check_out_dir(out, force)
    options = (model_bytes, model_source, stack_bytes, engine, simulate, seed, tflm_dir, profile)
    plan = plan_project(
        graph, board, runtime, kernels, *options, reserve_flash=reserve_flash, max_recompute=max_recompute
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with staged(out, folder=True) as tmp:
        env = environment()
        files = render_project(env, plan, tmp)
        built = build_project(plan, tmp, str(out), progress or (lambda _msg: None)) if build else None
        report = write_report(env, plan, built, tmp, files)
        marker = {"tool": "mcu-effnet", "board": board.name, "runtime": runtime, "kernels": kernels}
        marker.update(model=plan.model_name, seed=seed, profile=profile, max_recompute=max_recompute)
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return Project(path=out, board=board, runtime=runtime, report=report, files=files)
