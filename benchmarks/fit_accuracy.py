"""``fit``'s prediction against the firmware it leads to, for every board of the catalog.

    .venv/bin/python benchmarks/fit_accuracy.py [--phi -4 --phi -1]

For each board and φ: the fitted spec (default reserves), a firmware generated from its int8
graph (``fitting.spec_graph``) and built, and the predicted SRAM and flash beside the linked
ELF's (``size``: flash = text + data, RAM = data + bss). Prints a table and writes
``benchmarks/results/fit_accuracy.json`` and ``.md``. ``tests/test_fit_firmware.py`` holds the
same comparison to 5 %.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"


def main() -> int:
    from mcu_effnet.arch import make_spec
    from mcu_effnet.boards import BOARDS
    from mcu_effnet.codegen.project import write_project
    from mcu_effnet.fitting.spec_graph import spec_graph

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phi", type=float, action="append", help="default -4 and -1")
    args = parser.parse_args()
    rows = []

    def no_simulation(graph, x):
        return np.zeros(graph.tensors[graph.outputs[0]].shape, dtype=np.int8)

    with tempfile.TemporaryDirectory(prefix="fit-accuracy-") as work:
        for board in BOARDS:
            for phi in args.phi or (-4.0, -1.0):
                start = time.perf_counter()
                spec = make_spec(phi, classes=10, board=board.name)
                fit_s = time.perf_counter() - start
                out = Path(work) / f"{board.name}{phi:g}"
                report = write_project(spec_graph(spec), board, out, simulate=no_simulation).report
                f = spec.fit
                rows.append(
                    {
                        "board": board.name,
                        "phi": phi,
                        "resolution": spec.resolution,
                        "width_mult": spec.width_mult,
                        "fit_seconds": round(fit_s, 2),
                        "predicted_ram_bytes": f.ram_bytes,
                        "linked_ram_bytes": report["ram_bytes"],
                        "predicted_flash_bytes": f.firmware_flash_bytes,
                        "linked_flash_bytes": report["flash_bytes"],
                        "sram_budget_bytes": f.sram_bytes,
                        "flash_budget_bytes": f.flash_bytes,
                        "latency_ms": f.latency_ms,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    lines = [
        "| board | φ | fitted | fit time | RAM predicted / linked | flash predicted / linked | flash budget | est. latency |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ram_err = (r["predicted_ram_bytes"] - r["linked_ram_bytes"]) / r["linked_ram_bytes"] * 100
        flash_err = (r["predicted_flash_bytes"] - r["linked_flash_bytes"]) / r["linked_flash_bytes"] * 100
        lines.append(
            f"| {r['board']} | {r['phi']:g} | {r['resolution']} px x{r['width_mult']:.2f} | {r['fit_seconds']:.1f} s "
            f"| {r['predicted_ram_bytes'] / 1024:.1f} / {r['linked_ram_bytes'] / 1024:.1f} KiB ({ram_err:+.1f} %) "
            f"| {r['predicted_flash_bytes'] / 1024:.1f} / {r['linked_flash_bytes'] / 1024:.1f} KiB ({flash_err:+.2f} %) "
            f"| {r['flash_budget_bytes'] / 1024:.0f} KiB | {r['latency_ms']:.0f} ms |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fit_accuracy.json").write_text(json.dumps(rows, indent=2) + "\n")
    (RESULTS / "fit_accuracy.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
