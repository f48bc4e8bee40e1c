"""Building a rendered firmware project with the ARM toolchain, when it is installed, for the
linked sizes; a TFLite Micro project's tree is checked first (``tflm.check_tree``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mcu_effnet.codegen import toolchain
from mcu_effnet.codegen.project_plan import ProjectPlan
from mcu_effnet.codegen.tflm import TFLM_KERNELS, check_tree, require_tree


def build_project(
    plan: ProjectPlan, folder: Path, label: str, say: Callable[[str], None]
) -> tuple[dict[str, int], str] | None:
    """``make all`` in ``folder``: the ELF's sizes (``toolchain.elf_size``) and its path relative to
    the folder, or None when the toolchain is missing (the project is still usable)."""
    missing = toolchain.missing_tools(need_qemu=False, need_cxx=plan.runtime == "tflm")
    timeout = toolchain.DEFAULT_TIMEOUT
    tflm = plan.tflm
    # A TFLite Micro tree that cannot serve this model and board is refused before compiling;
    # without the toolchain a missing tree is left for the build to report.
    if tflm is not None and (tflm.tflm_dir is not None or not missing):
        tree = require_tree(tflm.tflm_dir, tflm.looked)
        library = check_tree(tree, plan.board, TFLM_KERNELS[plan.kernels], tflm.ops)
        if library is None and not missing:  # no prebuilt library for the core: the build makes one
            say(
                f"no prebuilt TensorFlow Lite Micro library for {plan.board.core}: the build makes "
                "one once into ~/.cache/mcu-effnet/tflm or $TFLM_CACHE_ROOT (10-25 minutes)"
            )
            timeout = toolchain.LIBRARY_BUILD_TIMEOUT
    if missing:
        say("toolchain not found: project written without building it (sizes left empty)")
        return None
    say(f"building {plan.board.name} firmware")
    elf = toolchain.make(folder, "all", timeout=timeout, label=label)
    return toolchain.elf_size(elf), str(elf.relative_to(folder))
