"""``fit`` against the firmware it leads to: the predicted SRAM and flash of a fitted spec within
5 % of the linked ELF's, for every board of the catalog, and the stated reserves left free.

The firmware is generated from the spec's int8 graph (``fitting.spec_graph``, the exporter's
graph op for op: ``tests/test_fit_spec_graph.py``); the weights' values do not change a size.
"""

from __future__ import annotations

import numpy as np
import pytest

from mcu_effnet.arch import make_spec
from mcu_effnet.boards import BOARDS, get_board
from mcu_effnet.codegen.project import write_project
from mcu_effnet.fitting.spec_graph import spec_graph

TOLERANCE = 0.05


def _no_simulation(graph, x):
    """The test vector's expected output is not what is measured here; skipping the simulator
    keeps each case to the build."""
    return np.zeros(graph.tensors[graph.outputs[0]].shape, dtype=np.int8)


@pytest.mark.toolchain
@pytest.mark.slow
@pytest.mark.parametrize("phi", [-4, -1])
@pytest.mark.parametrize("board_name", [b.name for b in BOARDS])
def test_fit_predicts_the_firmware(board_name, phi, tmp_path, arm_toolchain):
    board = get_board(board_name)
    spec = make_spec(phi, classes=10, board=board_name)
    fit = spec.fit
    project = write_project(spec_graph(spec), board, tmp_path / "fw", simulate=_no_simulation)
    report = project.report
    flash, ram = report["flash_bytes"], report["ram_bytes"]
    assert abs(fit.firmware_flash_bytes - flash) <= TOLERANCE * flash, (fit.firmware_flash_bytes, flash)
    assert abs(fit.ram_bytes - ram) <= TOLERANCE * ram, (fit.ram_bytes, ram)
    # the application's reserves stay free on the board
    assert flash <= board.flash[0].size - fit.reserve_flash_bytes
    assert ram <= board.largest_sram_region.size - fit.reserve_ram_bytes
