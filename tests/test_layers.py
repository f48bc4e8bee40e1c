"""The deployment side never imports torch or Brevitas (docs/ARCHITECTURE.md, "Layers"): a user
with only a ``.tflite`` and the ARM toolchain loads, simulates and generates firmware without them."""

from __future__ import annotations

import subprocess
import sys

DEPLOYMENT_MODULES = (
    "mcu_effnet.boards",
    "mcu_effnet.graph",
    "mcu_effnet.graph.op_order",
    "mcu_effnet.sim",
    "mcu_effnet.sim.crosscheck",
    "mcu_effnet.codegen.engine",
    "mcu_effnet.codegen.project",
    "mcu_effnet.codegen.compare",
    "mcu_effnet.codegen.toolchain",
    "mcu_effnet.cli.sim",
    "mcu_effnet.cli.codegen",
    "mcu_effnet.cli.run",
    "mcu_effnet.fitting.search",  # fitting runs before training, with no torch
)


def test_deployment_side_imports_neither_torch_nor_brevitas():
    code = (
        "import importlib, sys\n"
        f"for name in {DEPLOYMENT_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in ('torch', 'brevitas') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
