"""What a firmware project says about itself: ``report.json``, ``README.md`` and ``memory.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from mcu_effnet.boards import Board
from mcu_effnet.boards.uart import uart_note
from mcu_effnet.codegen.project_plan import ProjectPlan
from mcu_effnet.codegen.project_render import write_file
from mcu_effnet.codegen.templates import KiB, kib
from mcu_effnet.codegen.tflm import TFLM_KERNELS


def write_report(
    env: jinja2.Environment,
    plan: ProjectPlan,
    build: tuple[dict[str, int], str] | None,
    dest: Path,
    files: list[str],
) -> dict[str, Any]:
    """README.md, report.json (the plan's figures, the linked sizes when the project was built)
    and memory.png into ``dest``, recorded in ``files``; returns the report."""
    board, tflm = plan.board, plan.tflm
    report = dict(plan.report)
    if build is not None:
        sizes, elf = build
        report.update(flash_bytes=sizes["flash_bytes"], ram_bytes=sizes["ram_bytes"], elf=elf, size=sizes)
    readme = env.get_template("project/README.md.j2").render(
        board=board,
        runtime=plan.runtime,
        model_name=plan.model_name,
        model_source=plan.label,
        report=report,
        ram_region=f"{board.largest_sram_region.name}, {kib(board.largest_sram_region.size)}",
        uart_note=uart_note(board),
        input_size=report["input_bytes"],
        output_size=report["output_bytes"],
        tflm_dir=str(tflm.tflm_dir) if tflm and tflm.tflm_dir else "",
        tflm_variant=TFLM_KERNELS[report.get("tflm_kernels", "reference")],
    )
    write_file(dest, "README.md", readme, files)
    write_file(dest, "report.json", json.dumps(report, indent=2) + "\n", files)
    write_memory_png(dest / "memory.png", report, board)
    files.append("memory.png")
    from mcu_effnet.codegen import report_html

    report_html.write(dest / "report.html", report, dest)
    files.append("report.html")
    return report


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
    from matplotlib.ticker import MaxNLocator

    rows = report.get("layers") or []
    live = [_live_bytes(r) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    if rows and all(v is not None for v in live):
        # One filled step artist, not a rectangle per layer: a 200-layer model drew in seconds,
        # which every firmware project paid.
        ax.stairs(
            [v / KiB for v in live],
            [i - 0.5 for i in range(len(live) + 1)],
            fill=True,
            color="#4477aa",
            label="live activations" if report["runtime"] == "native" else "op working set (inputs + output)",
        )
        ax.set_xlim(-0.5, len(live) - 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
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
    ax.set_title(f"{report['model']} on {board.name}: activation memory ({report['runtime']})", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    top = max(board.largest_sram_region.size, report["arena_bytes"]) / KiB
    peak = max([report["arena_bytes"], *[v for v in live if v is not None]]) / KiB
    if top > 20 * max(peak, 1e-3):
        ax.set_yscale("log")  # a 4 MB emulator RAM would flatten the bars otherwise
        smallest = min([v / KiB for v in live if v], default=peak / 100)
        ax.set_ylim(min(smallest / 2, peak / 10), top * 2)
    else:
        ax.set_ylim(0, top * 1.1)
    # Fixed margins: tight_layout would draw the whole figure once more to measure its labels.
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.9)
    fig.savefig(path)
    plt.close(fig)
