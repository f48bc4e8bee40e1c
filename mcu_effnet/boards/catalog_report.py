"""The ``boards`` report: the catalog as JSON and as a text table."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from mcu_effnet.boards.catalog import BOARDS, Board


def board_to_dict(b: Board) -> dict[str, Any]:
    d = asdict(b)
    d["aliases"] = list(b.aliases)
    d["cflags"] = list(b.cflags)
    d["flash_bytes"] = b.flash_bytes
    d["sram_bytes"] = b.sram_bytes
    d["largest_sram_region"] = asdict(b.largest_sram_region)
    return d


def catalog_dicts() -> list[dict[str, Any]]:
    return [board_to_dict(b) for b in BOARDS]


def format_catalog() -> str:
    header = ["board", "core", "clock", "flash", "SRAM", "largest region", "emulator", "flash tool"]
    rows = [header]
    for b in BOARDS:
        big = b.largest_sram_region
        name = b.name + (f" ({', '.join(b.aliases)})" if b.aliases else "")
        rows.append(
            [
                name,
                b.core + ("+dsp" if b.has_dsp else ""),
                f"{b.clock_hz / 1e6:g} MHz",
                f"{b.flash_bytes // 1024} KiB",
                f"{b.sram_bytes // 1024} KiB",
                f"{big.name} {big.size // 1024} KiB @0x{big.origin:08x}",
                f"qemu {b.emulator.machine}",
                (b.flash_tool or "-").split()[0],
            ]
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
