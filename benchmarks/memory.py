"""Firmware memory and speed in QEMU: the native engine's model RAM against TFLite Micro's arena.

    .venv/bin/python benchmarks/memory.py [MODEL.tflite ...] [--board qemu-m4] [--runtimes native,tflm]

For each model (default: ``benchmarks/sim_speed.py``'s built-in models: the test builder's CNNs
and MBConvs and two EfficientNet-like models, plus two CNNs with parallel branches from
``tests/branchy_models.py``) it generates a firmware project per runtime with
``mcu_effnet.codegen.project.write_project``, builds it, runs it in QEMU (``-icount shift=0``) on
the embedded test vector and a few random inputs, and records:

- ``model_ram_bytes`` (native: arena and any other RAM the model needs; also in the .tflite's
  stored op order, before ``mcu_effnet.graph.op_order`` reorders the ops; without fusing SiLU
  pairs; with none of that and no op run in place over its input), TFLite Micro's arena
  total as recorded by the tflite-micro interpreter (host build) and ``arena_used_bytes()`` as
  measured on the target, and the ratios of native's to both (the target: native ≤ 0.8 ×
  TFLite Micro's ``arena_used_bytes()``; ``benchmarks/compare.py`` adds CMSIS-NN);
- flash (text + data of the linked ELF) and RAM (data + bss);
- instructions per inference, and whether every output is bit-exact with the host simulator.

Prints a table and writes ``benchmarks/results/memory.json`` and ``memory.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = ROOT / "benchmarks" / "results"


def default_models() -> list[tuple[str, bytes]]:
    from branchy_models import branchy_cnn  # parallel branches stored breadth first
    from sim_speed import builtin_models  # random CNNs, MBConvs and EfficientNet-like 64/96 px

    return [
        *builtin_models(),
        ("branchy concat 3x 16px", branchy_cnn(np.random.default_rng(4), size=16, branches=3)),
        ("branchy add 4x 16px", branchy_cnn(np.random.default_rng(5), size=16, branches=4, merge="add")),
    ]


def engine_available() -> bool:
    try:
        import mcu_effnet.codegen.engine  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def measure(name: str, model: bytes, board: str, runtime: str, samples: int, work: Path) -> dict:
    from mcu_effnet.codegen import toolchain
    from mcu_effnet.codegen.project import write_project
    from mcu_effnet.graph import load_tflite
    from mcu_effnet.sim import run as simulate

    graph = load_tflite(model)
    out = work / f"{len(list(work.iterdir()))}-{runtime}"
    t0 = time.perf_counter()
    project = write_project(graph, board, out, runtime=runtime, model_bytes=model, model_source=name)
    elf = toolchain.make(out, "qemu")
    shape = graph.input_tensors[0].shape
    x = np.random.default_rng(0).integers(-128, 128, size=(samples, *shape[1:]), dtype=np.int8)
    result = toolchain.run_qemu(
        project.board, elf, inputs=x.reshape(samples, -1), output_bytes=project.report["output_bytes"]
    )
    expected = np.asarray(simulate(graph, x)).reshape(samples, -1)
    exact = bool(
        result.status == 0
        and result.check_ok
        and result.outputs is not None
        and np.array_equal(result.outputs, expected)
    )
    r = project.report
    row = {
        "model": name,
        "runtime": runtime,
        "board": r["board"],
        "machine": project.board.emulator.machine,
        "model_ram_bytes": r["model_ram_bytes"],
        "arena_bytes": r["arena_bytes"],
        "weights_bytes": r["weights_bytes"],
        "flash_bytes": r["flash_bytes"],
        "ram_bytes": r["ram_bytes"],
        "instructions_per_inference": result.instructions,
        "bit_exact": exact,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    plan = r.get("memory_plan")
    if plan:  # the native plan in the .tflite's stored op order, before reordering
        stored_ram = r["model_ram_bytes"] - r["arena_bytes"] + plan["stored_order_arena_bytes"]
        row.update(stored_order_model_ram_bytes=stored_ram, order_method=plan["order_method"])
        from mcu_effnet.graph.op_order import plan_memory
        from mcu_effnet.graph.planner import plan_arena

        io = r["model_ram_bytes"] - r["arena_bytes"]
        # without fusing SiLU pairs (mcu_effnet.codegen.fuse), and also with no op in place in the
        # stored order: what each step saves
        row["no_fusion_model_ram_bytes"] = io + plan_memory(graph).arena_bytes
        row["no_in_place_model_ram_bytes"] = io + plan_arena(graph, in_place=False).arena_bytes
    if runtime == "tflm":
        row["tflm_arena_recorded_bytes"] = r["tflm_arena_recorded_bytes"]
        used = result.lines.get("TFLM")
        row["tflm_arena_used_bytes"] = int(used[0]["arena_used"]) if used else None
    return row


def summarize(rows: list[dict]) -> list[dict]:
    """One line per model: native against TFLite Micro (reference kernels)."""
    by_model: dict[str, dict] = {}
    for row in rows:
        by_model.setdefault(row["model"], {})[row["runtime"]] = row
    table = []
    for model, runs in by_model.items():
        native, tflm = runs.get("native"), runs.get("tflm")
        line = {"model": model}
        if tflm:
            line.update(
                tflm_arena_recorded=tflm["tflm_arena_recorded_bytes"],
                tflm_arena_used=tflm["tflm_arena_used_bytes"],
                tflm_flash=tflm["flash_bytes"],
                tflm_instructions=tflm["instructions_per_inference"],
                tflm_exact=tflm["bit_exact"],
            )
        if native:
            line.update(
                native_no_in_place_ram=native.get("no_in_place_model_ram_bytes"),
                native_no_fusion_ram=native.get("no_fusion_model_ram_bytes"),
                native_stored_order_ram=native.get("stored_order_model_ram_bytes"),
                native_model_ram=native["model_ram_bytes"],
                native_flash=native["flash_bytes"],
                native_instructions=native["instructions_per_inference"],
                native_exact=native["bit_exact"],
            )
        if native and tflm:
            line["ram_ratio"] = round(native["model_ram_bytes"] / tflm["tflm_arena_recorded_bytes"], 3)
            if tflm["tflm_arena_used_bytes"]:
                line["ram_ratio_used"] = round(native["model_ram_bytes"] / tflm["tflm_arena_used_bytes"], 3)
        table.append(line)
    return table


def format_table(table: list[dict]) -> str:
    cols = [
        ("model", "model"),
        ("native_no_in_place_ram", "native RAM: stored order, no in-place, no fusion"),
        ("native_no_fusion_ram", "+ in-place, order chosen"),
        ("native_stored_order_ram", "+ SiLU fused, stored order"),
        ("native_model_ram", "native model RAM (all)"),
        ("tflm_arena_recorded", "TFLM arena (recorded)"),
        ("tflm_arena_used", "TFLM arena used (target)"),
        ("ram_ratio", "RAM ratio (recorded)"),
        ("ram_ratio_used", "RAM ratio (used)"),
        ("native_flash", "native flash"),
        ("tflm_flash", "TFLM flash"),
        ("native_instructions", "native instr."),
        ("tflm_instructions", "TFLM instr."),
        ("native_exact", "native exact"),
        ("tflm_exact", "TFLM exact"),
    ]
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for row in table:
        cells = []
        for key, _ in cols:
            v = row.get(key)
            cells.append(
                "-"
                if v is None
                else (
                    "yes" if v is True else "no" if v is False else f"{v:,}" if isinstance(v, int) else str(v)
                )
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help=".tflite files (default: built-in test models)")
    parser.add_argument("--board", default="qemu-m4")
    parser.add_argument("--runtimes", default="native,tflm")
    parser.add_argument("--only", default="", help="only the built-in models whose name contains this")
    parser.add_argument("--tag", default="", help="write memory-TAG.json / .md instead of memory.json / .md")
    parser.add_argument(
        "--samples", type=int, default=4, help="random inputs per model besides the test vector"
    )
    args = parser.parse_args()

    models = [(Path(m).stem, Path(m).read_bytes()) for m in args.models] or default_models()
    models = [(name, model) for name, model in models if args.only in name]
    runtimes = [r for r in args.runtimes.split(",") if r]
    if "native" in runtimes and not engine_available():
        print(
            "note: mcu_effnet.codegen.engine is not in the tree yet; native runtime skipped", file=sys.stderr
        )
        runtimes.remove("native")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mcu-effnet-bench-") as work:
        for name, model in models:
            for runtime in runtimes:
                print(f"{name}: {runtime} ...", file=sys.stderr, flush=True)
                rows.append(measure(name, model, args.board, runtime, args.samples, Path(work)))
    table = summarize(rows)
    text = format_table(table)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"board": args.board, "python": platform.python_version(), "machine": platform.machine()}
    stem = f"memory-{args.tag}" if args.tag else "memory"
    (RESULTS / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "runs": rows, "table": table}, indent=2) + "\n"
    )
    (RESULTS / f"{stem}.md").write_text(
        f"Firmware on {args.board} in QEMU (`benchmarks/memory.py`); bytes and instructions per inference.\n\n{text}\n"
    )
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
