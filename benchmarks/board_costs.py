"""Measures what fitting needs of the native engine on every board: code flash per op kind and
instructions per op kind, and stores them with the board data (``mcu_effnet/boards/costs.json``).

    .venv/bin/python benchmarks/board_costs.py [--board B ...] [--no-store]

For each board, reference EfficientNets (full and lite, φ -4, 64 px, width 0.35, placeholder weights from
``mcu_effnet.fitting.spec_graph``) are generated and built:

- code: the linker map of the plain build gives each linked section's size and object. The
  runtime objects' code is shared among the op kinds whose kernels they hold (in proportion to
  those kernels' own functions); each op's parameter struct (``opN_kind``) and its share of
  ``model_invoke`` are per op; everything else but the weights and the test vector is the base
  (startup, platform, harness, newlib, shared fixed-point helpers).
- instructions: a profiling build runs in QEMU (``-icount shift=0``: one tick per instruction)
  and each op's instructions are fitted per kind as ``per_op + per_unit × units`` (units:
  multiply-accumulates, else output elements, else input elements) by least squares.

Prints a table per board and writes ``benchmarks/results/board_costs.json`` and ``.md``; unless
``--no-store``, also ``mcu_effnet/boards/costs.json``, which ``scale`` / ``qat`` read.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
STORE = ROOT / "mcu_effnet" / "boards" / "costs.json"
REFERENCES = (("full", -4.0, 64, 0.35), ("lite", -4.0, 64, 0.35))  # small enough for every board
CLASSES = 10

_SECTION = re.compile(r"^ (\.\S+)\s*(?:\n\s+)?(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S+)", re.M)
_CALL = re.compile(r"^\s+(\w+)\(&op(\d+)_(\w+?)(?:_\d+)?,", re.M)


def linked_sections(map_text: str) -> list[tuple[str, int, str]]:
    """(section, size, object file) of every input section placed in the image."""
    placed = map_text.split("Linker script and memory map", 1)[1]
    return [(m[1], int(m[3], 16), Path(m[4]).name) for m in _SECTION.finditer(placed) if int(m[3], 16)]


def code_sizes(folder: Path, report: dict) -> dict:
    """Base, per-kind kernel code and per-op bytes of one built project."""
    elf = folder / report["elf"]
    sections = linked_sections(elf.with_suffix(".map").read_text())
    model_c = (folder / "model" / "model.c").read_text()
    calls = [(kernel, int(index), kind.upper()) for kernel, index, kind in _CALL.findall(model_c)]
    ops_per_kind: dict[str, int] = defaultdict(int)
    for _, _, kind in calls:
        ops_per_kind[kind] += 1
    kernel_kinds: dict[str, set[str]] = defaultdict(set)
    for kernel, _, kind in calls:
        kernel_kinds[kernel].add(kind)
    text = [(s, n, o) for s, n, o in sections if s.startswith((".text", ".isr_vector"))]
    own = {s.removeprefix(".text."): (n, o) for s, n, o in text}
    # Kinds served by each runtime object, weighted by the size of their kernels' own functions.
    object_kinds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for kernel, kinds in kernel_kinds.items():
        size, obj = own.get(kernel, (0, ""))
        for kind in kinds:
            object_kinds[obj][kind] += size / len(kinds)
    kind_code: dict[str, float] = defaultdict(float)
    invoke = 0
    for section, size, obj in text:
        if section == ".text.model_invoke":
            invoke = size
        elif obj in object_kinds:
            weights = object_kinds[obj]
            total = sum(weights.values())
            for kind, w in weights.items():
                kind_code[kind] += size * w / total
    structs: dict[str, list[int]] = defaultdict(list)
    for section, size, _ in sections:
        m = re.match(r"\.rodata\.op\d+_(\w+?)(?:_\d+)?$", section)
        if m:
            structs[m[1].upper()].append(size)
    per_call = invoke / max(len(calls), 1)
    op_bytes = {kind: per_call + float(np.mean(structs.get(kind, [0]))) for kind in ops_per_kind}
    model_part = sum(kind_code.values()) + sum(op_bytes[k] * n for k, n in ops_per_kind.items())
    model_part += report["weights_bytes"] + report["input_bytes"] + report["output_bytes"]
    return {
        "flash_bytes": report["flash_bytes"],
        "base_flash_bytes": report["flash_bytes"] - model_part,
        "kind_code_bytes": dict(kind_code),
        "op_bytes": op_bytes,
    }


def fit_instructions(samples: dict[str, list[tuple[int, int]]]) -> dict[str, dict[str, float]]:
    """Least squares ``instructions = per_op + per_unit × units`` per kind (non-negative terms)."""
    out = {}
    for kind, rows in samples.items():
        units = np.array([u for u, _ in rows], dtype=float)
        instr = np.array([i for _, i in rows], dtype=float)
        if len(rows) >= 2 and np.ptp(units) > 0:
            slope, intercept = np.polyfit(units, instr, 1)
            if intercept < 0:
                slope, intercept = float(instr.sum() / units.sum()), 0.0
        else:
            slope, intercept = float(instr.sum() / max(units.sum(), 1)), 0.0
        out[kind] = {
            "per_op": round(float(intercept), 1),
            "per_unit": round(float(slope), 4),
            "ops": len(rows),
        }
    return out


def measure_board(board_name: str, work: Path) -> dict:
    from mcu_effnet.arch import make_spec
    from mcu_effnet.codegen import profile, toolchain
    from mcu_effnet.codegen.fuse import fuse_silu
    from mcu_effnet.codegen.project import write_project
    from mcu_effnet.fitting.footprint import op_units
    from mcu_effnet.fitting.spec_graph import spec_graph

    code_runs, samples, outside = [], defaultdict(list), []
    for variant, phi, res, width in REFERENCES:
        spec = make_spec(phi, variant=variant, classes=CLASSES, resolution=res, width=width, board=None)
        graph = spec_graph(spec)
        plain = write_project(graph, board_name, work / f"{board_name}-{variant}", force=True)
        code_runs.append(code_sizes(plain.path, plain.report))
        prof = write_project(
            graph, board_name, work / f"{board_name}-{variant}-profile", force=True, profile=True
        )
        elf = toolchain.make(prof.path, "qemu", label=str(prof.path))
        result = toolchain.run_qemu(prof.board, elf)
        if not result.check_ok:
            raise SystemExit(f"{board_name} {variant}: the firmware's test vector check failed")
        layers = profile.execution_layers(prof.report)
        costs = profile.from_run(result.lines, "native", layers, result.instructions)
        fused, _ = fuse_silu(graph)
        by_index = {op.index: op for op in fused.ops}  # a fused op keeps its MUL's index
        for row in costs.layers:
            op = by_index[row.index]
            samples[row.op].append((op_units(fused, op), row.instructions))
        outside.append(costs.outside_ops_instructions)
    kinds = {k for run in code_runs for k in run["kind_code_bytes"]}
    kind_code = {k: round(max(r["kind_code_bytes"].get(k, 0) for r in code_runs)) for k in sorted(kinds)}
    op_bytes = {k: round(max(r["op_bytes"].get(k, 0) for r in code_runs)) for k in sorted(kinds)}
    # The base is what is left once the kinds are counted as stored (max over the references).
    bases = []
    for run in code_runs:
        counted = sum(kind_code[k] - v for k, v in run["kind_code_bytes"].items())
        bases.append(run["base_flash_bytes"] - counted)
    return {
        "base_flash_bytes": round(max(bases)),
        "kind_code_bytes": kind_code,
        "op_bytes": op_bytes,
        "instructions": fit_instructions(samples),
        "invoke_instructions": round(float(np.mean(outside))),
        "measured_with": ", ".join(
            f"EfficientNet-{v} phi {p:g} {r} px width x{w}" for v, p, r, w in REFERENCES
        ),
        "reference_flash_bytes": [r["flash_bytes"] for r in code_runs],
    }


def markdown(results: dict) -> str:
    kinds = sorted({k for r in results.values() for k in r["kind_code_bytes"]})
    lines = [
        "# Native engine costs per board (benchmarks/board_costs.py)",
        "",
        "Code flash per op kind (bytes of runtime kernels, once per kind) and instructions per unit",
        "of work (MACs, else elements) measured in QEMU with `-icount shift=0` (instructions, not cycles).",
        "",
        "| board | base flash | " + " | ".join(kinds) + " |",
        "|---|---|" + "---|" * len(kinds),
    ]
    for name, r in results.items():
        cells = [
            f"{r['kind_code_bytes'].get(k, 0)} B / {r['instructions'].get(k, {}).get('per_unit', 0):.2f}"
            for k in kinds
        ]
        lines.append(f"| {name} | {r['base_flash_bytes']} B | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    from mcu_effnet.boards import BOARDS, get_board

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--board", action="append", help="measure only these boards (default: the catalog)")
    parser.add_argument("--no-store", action="store_true", help="leave mcu_effnet/boards/costs.json alone")
    args = parser.parse_args()
    names = [get_board(b).name for b in args.board] if args.board else [b.name for b in BOARDS]
    results = {}
    with tempfile.TemporaryDirectory(prefix="board-costs-") as work:
        for name in names:
            print(f"measuring {name} ...", flush=True)
            results[name] = measure_board(name, Path(work))
    table = markdown(results)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "board_costs.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "board_costs.md").write_text(table)
    if not args.no_store:
        stored = json.loads(STORE.read_text())["boards"] if STORE.exists() else {}
        stored.update(results)
        doc = {"source": "benchmarks/board_costs.py", "boards": dict(sorted(stored.items()))}
        STORE.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
