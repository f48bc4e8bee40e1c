"""The recipe on a small real image set: scikit-learn's bundled 8x8 digits, upscaled to 32x32.

Exports ``sklearn.datasets.load_digits`` (1,797 images, 10 classes; shipped inside the
scikit-learn package, nothing downloaded) as an ImageFolder tree (a fixed 80/20 split per class),
then runs ``mcu-effnet qat --phi -4 --resolution 32`` once per recipe and prints float, QAT and
int8 (.tflite in TFLite Micro) top-1 and the wall time of each run. Digits are the case where a
horizontal flip changes the class, so the recipes compared are the defaults, ``--hflip 0`` and
the README's small-data recipe (``--hflip 0 --qat-epochs 3``).

    pip install scikit-learn    # or: pip install -e .[dev]
    .venv/bin/python benchmarks/digits_recipe.py [--epochs N] [--qat-epochs N] [--work DIR]
        [--recipe defaults] [--seed N] [-- more qat options]
    .venv/bin/python benchmarks/digits_recipe.py --check-pick-margin 0 0.25 0.5 1   # replay only

Without --epochs / --qat-epochs the command's own defaults apply: the "defaults" recipe is
exactly what a user gets from ``mcu-effnet qat --phi -4 --resolution 32 --data DIR``. Wall time
depends on what else runs on the machine, so the CPU time of each run (its process and loader
workers) and the load average before and after are recorded beside it.

Appends one entry per run to the ``runs`` list of benchmarks/results/digits_recipe.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

RESULTS = Path(__file__).parent / "results" / "digits_recipe.json"
RECIPES = {"defaults": [], "hflip 0": ["--hflip", "0"], "small": ["--hflip", "0", "--qat-epochs", "3"]}


def export_digits(root: Path, size: int = 32, seed: int = 0) -> tuple[int, int]:
    """Writes ``root/train/<digit>/*.png`` and ``root/val/<digit>/*.png``; returns (train, val) counts."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    counts = [0, 0]
    for label in range(10):
        indices = rng.permutation(np.flatnonzero(digits.target == label))
        cut = round(0.8 * len(indices))
        for split, chosen in ((0, indices[:cut]), (1, indices[cut:])):
            folder = root / ("train", "val")[split] / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in chosen:
                # Pixel values are 0..16: scale to 0..255, upscale smoothly, dark digit on light paper.
                pixels = (255 - digits.images[i] * (255 / 16)).round().astype(np.uint8)
                image = Image.fromarray(pixels, mode="L").resize((size, size), Image.Resampling.BICUBIC)
                image.convert("RGB").save(folder / f"{i}.png")
                counts[split] += 1
    return counts[0], counts[1]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def qat_candidates(run_dir: Path) -> list[dict]:
    """Every QAT checkpoint the run could export (the calibrated start, each epoch's raw and EMA
    weights) with its fake-quant and int8 (TFLite Micro) validation top-1, from history.csv."""
    with open(run_dir / "history.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["phase"] == "qat"]
    candidates = []
    for row in rows:
        epoch = int(row["epoch"])
        for weights, prefix in (("calibrated" if epoch == 0 else "raw", ""), ("ema", "ema_")):
            fake_quant = float(row[f"{prefix}val_top1"] or "nan")
            if math.isnan(fake_quant):
                continue
            int8 = float(row.get(f"{prefix}int8_val_top1") or "nan")
            candidates.append({"epoch": epoch, "weights": weights, "fake_quant": round(fake_quant, 2),
                               "int8": None if math.isnan(int8) else round(int8, 2)})  # fmt: skip
    return candidates


def fake_quant_pick(candidates: list[dict]) -> dict | None:
    """The candidate the fake-quant accuracy picks (``--pick fake-quant``: ties keep the earlier)."""
    return max(candidates, key=lambda c: c["fake_quant"], default=None)


def replay_pruned_pick(candidates: list[dict], margin: float) -> dict | None:
    """What ``--pick int8`` with ``--pick-margin margin`` exports from a run whose candidates were all
    scored: each candidate, in training order, is scored unless ``int8_pick.skip_reason`` skips it;
    the best (int8, fake-quant) of the scored ones wins, ties keep the earlier."""
    from mcu_effnet.quant.int8_pick import skip_reason

    best_fake_quant, best, scored = -math.inf, None, 0
    for candidate in candidates:
        if skip_reason(candidate["fake_quant"], best_fake_quant, margin) is None:
            scored += 1
            if best is None or (candidate["int8"], candidate["fake_quant"]) > (
                best["int8"],
                best["fake_quant"],
            ):
                best = candidate
        best_fake_quant = max(best_fake_quant, candidate["fake_quant"])
    return None if best is None else {**best, "scored": scored, "candidates": len(candidates)}


def check_pick_margin(results: Path, margins: list[float]) -> None:
    """Replays the pruned pick on every recorded run whose candidates were all scored in int8."""
    runs = [r for r in json.loads(results.read_text())["runs"]
            if r.get("qat_candidates") and all(c["int8"] is not None for c in r["qat_candidates"])]  # fmt: skip
    print(f"{'run':<44} {'all scored':>10} " + " ".join(f"{f'margin {m:g}':>16}" for m in margins))
    for run in runs:
        full = replay_pruned_pick(run["qat_candidates"], math.inf)
        cells = []
        for margin in margins:
            pruned = replay_pruned_pick(run["qat_candidates"], margin)
            same = "=" if pruned["int8"] == full["int8"] else "WORSE"
            cells.append(f"{pruned['int8']:.2f} {same} {pruned['scored']:>2}/{pruned['candidates']}")
        name = (
            f"{run['recipe']} seed {run['options'][run['options'].index('--seed') + 1]} ({run['code'][:14]})"
        )
        print(f"{name:<44} {full['int8']:>10.2f} " + " ".join(f"{c:>16}" for c in cells))


def run_recipe(data: Path, out: Path, extra: list[str]) -> dict:
    command = [sys.executable, "-m", "mcu_effnet.cli", "qat", "--phi", "-4", "--resolution", "32",
               "--board", "none", "--data", str(data), "--no-progress", "--out", str(out), *extra]  # fmt: skip
    load_before = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), _children_cpu()
    subprocess.run(command, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    seconds, cpu_seconds = time.perf_counter() - start, _children_cpu() - cpu_start
    metrics = json.loads((out / "metrics.json").read_text())
    train = json.loads((out / "config.json").read_text())["train"]
    candidates = qat_candidates(out)
    return {
        "options": extra,
        "epochs": train["epochs"],
        "qat_epochs": train["qat_epochs"],
        "float_top1": metrics.get("float_top1"),
        "qat_top1": metrics.get("qat_top1"),
        "int8_top1": metrics.get("int8_top1"),
        "exported": metrics.get("exported"),
        # which validation images the .tflite classifies unlike the QAT model (export vs runtime)
        "int8_vs_qat": metrics.get("int8_vs_qat"),
        # the same run's QAT candidates: what --pick int8 chose from, and what --pick fake-quant
        # (the earlier behaviour; training is the same either way) would have exported
        "qat_candidates": candidates,
        "fake_quant_pick": fake_quant_pick(candidates),
        "pick_seconds": metrics.get("pick_seconds"),
        "pick_cpu_seconds": metrics.get("pick_cpu_seconds"),
        "seconds": round(seconds, 1),
        # Wall time grows with other load on a shared machine; CPU time (user + system of the run
        # and its loader workers) much less so.
        "cpu_seconds": round(cpu_seconds, 1),
        "train_seconds": metrics.get("train_seconds"),
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="float epochs (default: the command's)")
    parser.add_argument("--qat-epochs", type=int, help="QAT epochs (default: the command's)")
    parser.add_argument("--code", default="", help="the code measured, e.g. 'recipe 1a2b3c4'")
    parser.add_argument("--work", type=Path, default=Path("runs") / "digits-recipe")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--recipe", action="append", choices=sorted(RECIPES), help="run only these (repeatable)"
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (--seed of qat)")
    parser.add_argument("extra", nargs="*", help="more qat options for every run, after --")
    parser.add_argument("--check-pick-margin", type=float, nargs="+", metavar="POINTS",
                        help="train nothing: replay --pick-margin POINTS on the recorded runs whose "
                        "candidates were all scored (int8 exported: '=' as scoring every one)")  # fmt: skip
    args = parser.parse_args()
    if args.check_pick_margin:
        check_pick_margin(args.out, args.check_pick_margin)
        return

    data = args.work / "data"
    if not data.exists():
        train, val = export_digits(data)
        print(f"exported {train} train / {val} val digit images to {data}", flush=True)
    rows = {}
    for name, extra in RECIPES.items():
        if args.recipe and name not in args.recipe:
            continue
        epochs = [] if args.epochs is None else ["--epochs", str(args.epochs)]
        epochs += [] if args.qat_epochs is None else ["--qat-epochs", str(args.qat_epochs)]
        out = args.work / f"{name.replace(' ', '-')}-e{args.epochs}q{args.qat_epochs}-seed{args.seed}"
        rows[name] = run_recipe(data, out, [*extra, *epochs, "--seed", str(args.seed), *args.extra])
    print(f"{'recipe':<10} {'float':>7} {'QAT':>7} {'int8':>7} {'time':>7} {'CPU':>7}")
    for name, row in rows.items():
        pct = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        print(f"{name:<10} {pct(row['float_top1']):>7} {pct(row['qat_top1']):>7} {pct(row['int8_top1']):>7} "
              f"{row['seconds']:>6.0f}s {row['cpu_seconds']:>6.0f}s")  # fmt: skip
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    results = json.loads(args.out.read_text()) if args.out.exists() else {"runs": []}
    for name, row in rows.items():
        results["runs"].append({"recipe": name, "code": args.code, **row})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
