"""Building a rendered firmware project with the ARM toolchain, when it is installed, for the
linked sizes; a TFLite Micro project's tree is checked first."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcu_effnet.boards import Board
from mcu_effnet.codegen import runner
from mcu_effnet.codegen.project_plan import ProjectPlan
from mcu_effnet.codegen.tflm import TFLM_KERNELS, check_tree
from mcu_effnet.errors import UserError


def check_tflm(tflm: Any, board: Board, kernels: str, toolchain: bool = True) -> Path | None:
    """Before building a TFLite Micro project: a tree is there and can serve this model and board.
    Returns the prebuilt library the project links, None when its build makes one (or no tree
    without the toolchain).

    Without the toolchain, a missing tree is left for the build to report; a core with no
    prebuilt library is refused (nothing to build one with).
    """
    if tflm.tflm_dir is None:
        if not toolchain:
            return None
        raise UserError(
            "no TensorFlow Lite Micro tree found (looked in "
            + "; ".join(tflm.looked)
            + "): pass --tflm-dir or set TFLM_DIR (the native runtime needs none)"
        )
    return check_tree(tflm.tflm_dir, board, TFLM_KERNELS[kernels], tflm.ops)


def build_project(
    plan: ProjectPlan, folder: Path, label: str, say: Callable[[str], None]
) -> tuple[dict[str, int], str] | None:
    """``make all`` in ``folder``: the ELF's sizes (``runner.elf_size``) and its path relative to
    the folder, or None when the toolchain is missing (the project is still usable)."""
    missing = runner.missing_tools(need_qemu=False, need_cxx=plan.runtime == "tflm")
    timeout = runner.DEFAULT_TIMEOUT
    if plan.tflm is not None:
        library = check_tflm(plan.tflm, plan.board, plan.kernels, toolchain=not missing)
        if library is None and not missing:
            say(
                f"no prebuilt TensorFlow Lite Micro library for {plan.board.core}: the build makes "
                "one once into ~/.cache/mcu-effnet/tflm or $TFLM_CACHE_ROOT (10-25 minutes)"
            )
            timeout = runner.LIBRARY_BUILD_TIMEOUT
    if missing:
        say("toolchain not found: project written without building it (sizes left empty)")
        return None
    say(f"building {plan.board.name} firmware")
    elf = runner.make(folder, "all", timeout=timeout, label=label)
    return runner.elf_size(elf), str(elf.relative_to(folder))
