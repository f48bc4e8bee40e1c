"""Instructions per inference in QEMU: the native engine's plain C kernels, its DSP (SIMD)
kernels, and TFLite Micro with CMSIS-NN.

    .venv/bin/python benchmarks/simd_speed.py [MODEL.tflite ...] [--board qemu-m4] [--only NAME,...]
        [--variants "native C,native DSP,TFLM + CMSIS-NN"] [--suite models|pointwise] [--out STEM]

For each model (default: ``benchmarks/sim_speed.py``'s built-in models, as ``memory.py``; ``--only``
keeps the named ones) it writes and builds three firmware projects with
``mcu_effnet.codegen.project.write_project``:

- ``native C``: the engine generated with ``dsp=False`` (the portable kernels: what a Cortex-M0+
  or M3 runs);
- ``native DSP``: the engine for the board's core (Cortex-M4/M7/M33: the DSP kernels);
- ``TFLM + CMSIS-NN``: ``--runtime tflm --kernels cmsis-nn`` (``TFLM_DIR``, else the
  ``shared/tflm`` folder beside the repository, as ``mcu_effnet.codegen.tflm.find_tflm_dir``);

runs each in QEMU (``-icount shift=0``: one instruction, one count) on the embedded test vector
and one random input, checks the outputs bit-exact against the host simulator, and prints the
instructions per inference with the ratios DSP / C and DSP / CMSIS-NN (the target: the
native DSP engine at most TFLite Micro + CMSIS-NN's, aiming at 0.7x). Writes
``benchmarks/results/<STEM>.json`` and ``<STEM>.md`` (default stem ``simd_speed``). The committed
results: ``simd_speed`` (qemu-m4, every built-in model) and ``simd_speed-qemu-m7`` /
``simd_speed-qemu-m33`` (``--board qemu-m7 --only "effnet-like 64px" --out simd_speed-qemu-m7``),
``simd_speed-tconv`` (``--suite tconv --out simd_speed-tconv``: single TRANSPOSE_CONV ops).
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
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = ("native C", "native DSP", "TFLM + CMSIS-NN")


def pointwise_models() -> list[tuple[str, bytes]]:
    """Single 1x1 CONV_2D / FULLY_CONNECTED models shaped like effnet-like 64px's layers."""
    from tflite_builder import ModelBuilder

    models = []
    for h, c, oc in ((32, 16, 64), (16, 64, 24), (16, 24, 96), (8, 96, 40), (8, 40, 128), (1, 96, 6)):
        b = ModelBuilder(np.random.default_rng(c * oc))
        b.outputs = [b.conv2d(b.input((1, h, h, c)), oc, (1, 1))]
        models.append((f"1x1 {h}x{h}x{c}->{oc}", b.build()))
    for depth, units in ((128, 10), (1280, 100)):
        b = ModelBuilder(np.random.default_rng(depth))
        b.outputs = [b.fully_connected(b.input((1, depth)), units)]
        models.append((f"FC {depth}->{units}", b.build()))
    return models


def tconv_models() -> list[tuple[str, bytes]]:
    """Single TRANSPOSE_CONV models, decoder up-sampling shapes (int8, per-channel)."""
    from tflite_builder import ModelBuilder

    models = []
    for h, c, oc, k, s, pad in (
        (8, 32, 32, 3, 2, "SAME"),
        (16, 16, 8, 2, 2, "VALID"),
        (8, 24, 16, 4, 2, "SAME"),
    ):
        b = ModelBuilder(np.random.default_rng(h * c + oc))
        b.outputs = [b.transpose_conv(b.input((1, h, h, c)), oc, (k, k), (s, s), pad)]
        models.append((f"tconv {h}x{h}x{c}->{oc} {k}x{k} s{s} {pad}", b.build()))
    return models


def measure(name: str, model: bytes, board: str, variant: str, work: Path) -> dict:
    from mcu_effnet.codegen import toolchain
    from mcu_effnet.codegen.engine import generate_engine
    from mcu_effnet.codegen.project import write_project
    from mcu_effnet.graph import load_tflite
    from mcu_effnet.sim import run as simulate

    graph = load_tflite(model)
    out = work / f"{len(list(work.iterdir()))}"
    t0 = time.perf_counter()
    kw: dict = dict(model_bytes=model, model_source=name)
    if variant == "native C":
        kw["engine"] = generate_engine(graph, dsp=False)
    elif variant == "TFLM + CMSIS-NN":
        kw.update(runtime="tflm", kernels="cmsis-nn")  # the tree: TFLM_DIR, else shared/tflm
    project = write_project(graph, board, out, **kw)
    elf = toolchain.make(out, "qemu")
    shape = graph.input_tensors[0].shape
    x = np.random.default_rng(0).integers(-128, 128, size=(1, *shape[1:]), dtype=np.int8)
    result = toolchain.run_qemu(
        project.board, elf, inputs=x.reshape(1, -1), output_bytes=project.report["output_bytes"]
    )
    expected = np.asarray(simulate(graph, x)).reshape(1, -1)
    exact = bool(
        result.status == 0
        and result.check_ok
        and result.outputs is not None
        and np.array_equal(result.outputs, expected)
    )
    return {
        "model": name,
        "variant": variant,
        "board": board,
        "instructions_per_inference": result.instructions,
        "flash_bytes": project.report["flash_bytes"],
        "bit_exact": exact,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def summarize(rows: list[dict]) -> list[dict]:
    table = []
    for name in dict.fromkeys(r["model"] for r in rows):
        by = {r["variant"]: r for r in rows if r["model"] == name}
        line: dict = {"model": name}
        for v in VARIANTS:
            line[v] = by[v]["instructions_per_inference"] if v in by else None
            line[f"{v} flash"] = by[v]["flash_bytes"] if v in by else None
        dsp, c, cmsis = line["native DSP"], line["native C"], line["TFLM + CMSIS-NN"]
        line["DSP / C"] = round(dsp / c, 3) if dsp and c else None
        line["DSP / CMSIS-NN"] = round(dsp / cmsis, 3) if dsp and cmsis else None
        line["bit exact"] = all(r["bit_exact"] for r in by.values())
        table.append(line)
    return table


def format_table(table: list[dict]) -> str:
    def n(v: object) -> str:
        return f"{v:,}" if isinstance(v, int) else ("-" if v is None else str(v))

    head = "| model | native C | native DSP | TFLM + CMSIS-NN | DSP / C | DSP / CMSIS-NN | flash native DSP | flash TFLM | exact |"
    lines = [head, "|" + "---|" * 9]
    for t in table:
        lines.append(
            f"| {t['model']} | {n(t['native C'])} | {n(t['native DSP'])} | {n(t['TFLM + CMSIS-NN'])} | "
            f"{n(t['DSP / C'])} | {n(t['DSP / CMSIS-NN'])} | {n(t['native DSP flash'])} | "
            f"{n(t['TFLM + CMSIS-NN flash'])} | {'yes' if t['bit exact'] else 'NO'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help=".tflite files (default: built-in test models)")
    parser.add_argument("--board", default="qemu-m4")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated subset of: " + ", ".join(VARIANTS)
    )
    parser.add_argument("--only", default="", help="comma-separated built-in model names to keep")
    parser.add_argument(
        "--suite", default="models", choices=["models", "pointwise", "tconv"], help="built-in set"
    )
    parser.add_argument("--out", default="simd_speed", help="results file stem in benchmarks/results")
    args = parser.parse_args()

    if args.models:
        models = [(Path(m).stem, Path(m).read_bytes()) for m in args.models]
    else:
        from sim_speed import builtin_models

        suites = {"models": builtin_models, "pointwise": pointwise_models, "tconv": tconv_models}
        models = suites[args.suite]()
        if args.only:
            keep = set(args.only.split(","))
            models = [m for m in models if m[0] in keep]
    variants = [v for v in args.variants.split(",") if v]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mcu-effnet-simd-") as work:
        for name, model in models:
            for variant in variants:
                print(f"{name}: {variant} ...", file=sys.stderr, flush=True)
                rows.append(measure(name, model, args.board, variant, Path(work)))
                print(
                    f"  {rows[-1]['instructions_per_inference']:,} instructions", file=sys.stderr, flush=True
                )
    table = summarize(rows)
    text = format_table(table)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(
        json.dumps({"board": args.board, "runs": rows, "table": table}, indent=2) + "\n"
    )
    (RESULTS / f"{args.out}.md").write_text(
        f"Instructions per inference on {args.board} in QEMU (`benchmarks/simd_speed.py`).\n\n{text}\n"
    )
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
