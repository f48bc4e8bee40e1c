"""Measured costs of the native engine per board: code flash per op kind and instructions per op.

Stored beside the catalog in ``costs.json`` and refreshed by ``benchmarks/board_costs.py``, which
builds reference EfficientNets for every board (sizes read from the linker map) and runs them
in QEMU with the per-op counter (instructions, not cycles: ``-icount shift=0`` counts one per
instruction). Fitting reads them to predict a firmware's flash and an inference's time before
any weights exist; this module only loads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

# Room left to the application around the model, by default: its own code and constants (drivers,
# a USB or radio stack) in flash, its buffers and heap in SRAM. Fitting keeps both free; codegen
# widens DSP weights only as far as the flash reserve allows.
DEFAULT_RESERVE_FLASH_BYTES = 64 * 1024
DEFAULT_RESERVE_RAM_BYTES = 16 * 1024


@dataclass(frozen=True)
class OpCost:
    """Instructions of one op of a kind: ``per_op`` plus ``per_unit`` for each unit of work
    (multiply-accumulates for convolutions and fully connected layers, else output elements)."""

    per_op: float
    per_unit: float


@dataclass(frozen=True)
class BoardCosts:
    board: str
    base_flash_bytes: int  # startup, platform layer, harness, newlib, shared fixed-point code
    kind_code_bytes: dict[str, int]  # runtime kernels an op kind links in (once per kind)
    op_bytes: dict[str, int]  # per op: its const parameter struct and its call in model.c
    instructions: dict[str, OpCost]  # per op kind
    invoke_instructions: int  # per inference outside the ops (input copy, output copy)
    measured_with: str  # what the benchmark built

    def code_bytes(self, kind: str) -> int:
        """A kind never measured costs as much as the largest one that was."""
        return self.kind_code_bytes.get(kind, max(self.kind_code_bytes.values(), default=0))

    def op_struct_bytes(self, kind: str) -> int:
        return self.op_bytes.get(kind, max(self.op_bytes.values(), default=0))

    def op_instructions(self, kind: str, units: int) -> float:
        cost = self.instructions.get(kind)
        if cost is None:  # unmeasured: as costly per unit as the costliest measured kind
            cost = max(self.instructions.values(), key=lambda c: c.per_unit, default=OpCost(0.0, 0.0))
        return cost.per_op + cost.per_unit * units


def _parse(name: str, doc: dict) -> BoardCosts:
    return BoardCosts(
        board=name,
        base_flash_bytes=int(doc["base_flash_bytes"]),
        kind_code_bytes={k: int(v) for k, v in doc["kind_code_bytes"].items()},
        op_bytes={k: int(v) for k, v in doc["op_bytes"].items()},
        instructions={
            k: OpCost(float(v["per_op"]), float(v["per_unit"])) for k, v in doc["instructions"].items()
        },
        invoke_instructions=int(doc.get("invoke_instructions", 0)),
        measured_with=str(doc.get("measured_with", "")),
    )


@cache
def _table() -> dict[str, BoardCosts]:
    path = resources.files("mcu_effnet").joinpath("boards", "costs.json")
    if not path.is_file():
        return {}
    text = path.read_text()
    return {name: _parse(name, doc) for name, doc in json.loads(text)["boards"].items()}


def board_costs(board_name: str) -> BoardCosts | None:
    """The measured costs of the board called ``board_name`` (its catalog name), None if never measured."""
    return _table().get(board_name)
