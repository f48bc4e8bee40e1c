"""Native engine vs TFLite Micro (reference kernels, CMSIS-NN) on every benchmark model, in QEMU.

    .venv/bin/python benchmarks/compare.py [--boards qemu-m4,qemu-m7] [--models SUBSTRING,...]
                                           [--samples 2] [MODEL.tflite ...]

Models (default): our EfficientNets, full and lite, at φ −4 with 32 px (no board fitting) and at
φ −1 fitted to ``stm32`` (STM32F746G-DISCO), exported to int8 .tflite without training (random
weights, Brevitas calibration on random images, the project's QCDQ ONNX → TFLite writer; the
arithmetic does not care that the weights are untrained), and the test CNNs of
``benchmarks/memory.py`` (the test builder's random CNNs and MBConvs, two EfficientNet-like
models), and three public architectures built with the test builder's random int8 weights
(``tests/public_models.py``: MLPerf Tiny's ResNet-8 at 32x32, MobileNetV1-0.25 at 96x96 for
visual wake words, DS-CNN on 49x10 keyword-spotting features). For each model and board, ``mcu_effnet.codegen.compare.compare`` builds the three
firmwares, runs them on the same random inputs (plus the embedded test vector) and checks every
output against the host simulator.

Prints a markdown table and writes ``benchmarks/results/compare.json`` and ``compare.md`` (``--out
STEM``: ``STEM.json`` and ``STEM.md``, for a run on a subset of the models or boards).
The targets, read off the table on qemu-m4: native instructions ≤ TFLM + CMSIS-NN's
(aim ≤ 0.7×), native model RAM ≤ 0.8 × TFLite Micro's ``arena_used_bytes``, native flash ≤
TFLM + CMSIS-NN's, every path bit-exact.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = ROOT / "benchmarks" / "results"
# (name, variant, phi, board to fit to or None, resolution or None)
EFFICIENTNETS = (
    ("effnet-full phi-4 32px", "full", -4, None, 32),
    ("effnet-lite phi-4 32px", "lite", -4, None, 32),
    ("effnet-full phi-1 stm32", "full", -1, "stm32", None),
    ("effnet-lite phi-1 stm32", "lite", -1, "stm32", None),
)


def export_efficientnet(variant: str, phi: float, board: str | None, resolution: int | None) -> bytes:
    """An untrained (random, calibrated) QAT EfficientNet through the project's exporter."""
    import torch
    from brevitas.export import export_onnx_qcdq
    from brevitas.graph.calibrate import calibration_mode

    from mcu_effnet.arch import make_spec
    from mcu_effnet.models import build_quant
    from mcu_effnet.quant.tflite_export import export_tflite

    torch.manual_seed(0)
    spec = make_spec(phi, variant=variant, classes=10, resolution=resolution, board=board)
    size = spec.resolution
    model = build_quant(spec)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad(), calibration_mode(model):
        for _ in range(3):
            model(torch.rand((4, 3, size, size), generator=gen))
    model.eval()
    with tempfile.TemporaryDirectory(prefix="mcu-effnet-export-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx_qcdq(model, torch.rand((1, 3, size, size)), str(onnx_path), dynamo=False)
        out = Path(tmp) / "model.tflite"
        export_tflite(onnx_path, out, labels=[str(i) for i in range(10)], check=False)
        return out.read_bytes()


def default_models(include_efficientnets: bool = True, keep=lambda name: True) -> list[tuple[str, bytes]]:
    from memory import default_models as test_models
    from public_models import PUBLIC_MODELS

    models = []
    if include_efficientnets:
        for name, variant, phi, board, res in EFFICIENTNETS:
            if keep(name):  # exported only when wanted: the φ −1 ones take a while
                print(f"exporting {name} ...", file=sys.stderr, flush=True)
                models.append((name, export_efficientnet(variant, phi, board, res)))
    models += [(n, build(0)) for n, build in PUBLIC_MODELS if keep(n)]
    return models + [(n, m) for n, m in test_models() if keep(n)]


def git_commit() -> str | None:
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return proc.stdout.strip() or None


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:.1f}"


def _m(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f}"


def format_table(results: list[dict]) -> str:
    """One line per model and board: the three firmwares side by side, and native's ratios."""
    head = (
        "| model | board | model RAM KB: native / TFLM ref / TFLM+NN | TFLM arena used KB "
        "| flash KB: native / ref / NN | M instructions: native / ref / NN "
        "| native ÷ NN: instr. / RAM vs arena used / flash | bit-exact |"
    )
    lines = [head, "|---|---|---|---:|---|---|---|---|"]
    for res in results:
        by = {r["firmware"]: r for r in res["rows"]}
        order = [by.get(n) for n in ("native", "tflm-ref", "tflm-cmsis-nn")]

        def triple(key: str, fmt, rows=order) -> str:
            return " / ".join(fmt(r[key]) if r else "-" for r in rows)

        ratio = res["ratios"]

        def rx(key: str, ratio: dict = ratio) -> str:
            v = ratio.get(key)
            return "-" if v is None else f"{v:.2f}"

        ran = [r for r in res["rows"] if r["flash_bytes"] is not None]
        exact = (
            "yes"
            if all(r["bit_exact"] for r in ran)
            else "NO: " + ", ".join(r["firmware"] for r in ran if not r["bit_exact"])
        )
        unfit = [r["firmware"] for r in res["rows"] if r["flash_bytes"] is None]
        if unfit:
            exact += f" ({', '.join(unfit)}: does not fit)"
        nn = by.get("tflm-cmsis-nn")
        lines.append(
            f"| {res['model']} | {res['board']} | {triple('model_ram_bytes', _kb)} "
            f"| {_kb(nn['arena_used_bytes']) if nn else '-'} | {triple('flash_bytes', _kb)} "
            f"| {triple('instructions_per_inference', _m)} "
            f"| {rx('instructions_native_vs_cmsis_nn')} / {rx('model_ram_native_vs_tflm_arena_used')} "
            f"/ {rx('flash_native_vs_cmsis_nn')} | {exact} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help=".tflite files (default: the benchmark models)")
    parser.add_argument("--boards", default="qemu-m4,qemu-m7")
    parser.add_argument("--only", default="", help="comma-separated substrings: keep matching models")
    parser.add_argument("--no-efficientnets", action="store_true", help="only the test CNNs (no torch)")
    parser.add_argument("--samples", type=int, default=2, help="random inputs besides the test vector")
    parser.add_argument(
        "--out", default="compare", help="results file stem: a subset run must not overwrite compare.md"
    )
    args = parser.parse_args()

    from mcu_effnet.codegen.compare import compare
    from mcu_effnet.errors import UserError
    from mcu_effnet.graph import load_tflite

    wanted = [s.strip() for s in args.only.split(",") if s.strip()]

    def keep(name: str) -> bool:
        return not wanted or any(w in name for w in wanted)

    if args.models:
        models = [(Path(m).stem, Path(m).read_bytes()) for m in args.models if keep(Path(m).stem)]
    else:
        models = default_models(not args.no_efficientnets, keep)
    boards = [b for b in args.boards.split(",") if b]
    results, failures = [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mcu-effnet-compare-") as work:
        for i, (name, model) in enumerate(models):
            graph = load_tflite(model)
            graph.source = name
            for board in boards:
                print(f"{name} on {board} ...", file=sys.stderr, flush=True)
                t0 = time.perf_counter()
                try:
                    res = compare(
                        graph,
                        model,
                        board,
                        Path(work) / f"{i}-{board}",
                        samples=args.samples,
                        model_source=name,
                    )
                except UserError as exc:
                    failures.append({"model": name, "board": board, "error": str(exc)})
                    print(f"  {name} on {board}: {exc}", file=sys.stderr)
                    continue
                res["model"] = name
                res["seconds"] = round(time.perf_counter() - t0, 1)
                results.append(res)
                print(format_table([res]).splitlines()[-1], file=sys.stderr, flush=True)
    text = format_table(results)
    print(text)
    for f in failures:
        print(f"- {f['model']} on {f['board']}: {f['error']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "boards": boards,
        "samples": args.samples,
        "commit": git_commit(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (RESULTS / f"{args.out}.json").write_text(
        json.dumps({"meta": meta, "results": results, "failures": failures}, indent=2) + "\n"
    )
    note = (
        "Native engine vs TFLite Micro (reference kernels, CMSIS-NN) in QEMU (`benchmarks/compare.py`); "
        "model RAM and flash in KB (1024 B), instructions per inference in millions (QEMU -icount). "
        "Model RAM: native = arena + buffers outside it; TFLM = arena_used_bytes() on the target + "
        "interpreter and resolver objects. Ratios: native ÷ TFLM + CMSIS-NN (RAM: ÷ its arena_used_bytes)."
    )
    fail_text = "".join(f"\n- {f['model']} on {f['board']}: {f['error']}" for f in failures)
    (RESULTS / f"{args.out}.md").write_text(f"{note}\n\n{text}\n{fail_text}\n")
    ok = not failures and all(
        r["bit_exact"] for res in results for r in res["rows"] if r["flash_bytes"] is not None
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
