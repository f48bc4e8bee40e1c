"""Coverage of TensorFlow Lite Micro's own model corpus: how many models mcu-effnet runs, how many
it refuses, and why.

    .venv/bin/python benchmarks/tflm_corpus.py [--corpus DIR]

The corpus is found as ``tests/tflm_corpus.py`` finds it (``MCU_EFFNET_TFLM_MODELS``, else
``shared/models/tflm`` beside the repository). Every model that loads is also run in the
simulator and compared with TFLite Micro and, separately, with the golden output where the corpus
ships one (a few golden files come from a TFLite Micro build that rounds LEAKY_RELU's multipliers
differently from the interpreter); the test ``tests/test_tflm_corpus.py`` holds the same line on
every file. Inputs the simulator cannot batch (an int32 output shape, a bias vector) are pinned to
the corpus's own values (``tests/tflm_corpus.py``, ``pinned_inputs``). Every model that runs
is also built as the native C engine for the host (gcc, ASan/UBSan, ``tests/host_engine.py``; the
inputs of a several-input model packed as ``model_invoke()`` takes them) and compared the same
way (None for a model with several outputs). Prints the table and writes
``benchmarks/results/tflm_corpus.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tflm_corpus import (  # noqa: E402
    corpus_dir,
    corpus_inputs,
    corpus_models,
    csv_tensor,
    golden_files,
    survey_model,
    tflm_outputs,
)

from mcu_effnet.codegen.engine import generate_engine  # noqa: E402
from mcu_effnet.sim import run  # noqa: E402


def _compare(row, host) -> tuple[bool, bool | None, bool | None]:
    """(bit-exact with the TFLite Micro interpreter, equal to the golden CSV or None without one,
    the host-built engine bit-exact or None for a model with several outputs)."""
    batches = corpus_inputs(row.graph, row.path, row.pinned)
    _, golden = golden_files(row.path)
    ours = run(row.graph, batches)
    expected = tflm_outputs(row, batches)
    same = bool(np.array_equal(ours.reshape(np.shape(expected)), expected))
    golden_ok = (
        None if golden is None else bool(np.array_equal(ours[0].reshape(-1), csv_tensor(golden, ours.dtype)))
    )
    engine = None
    if len(row.graph.outputs) == 1:
        got = host.run_engine(generate_engine(row.graph), batches)
        engine = bool(np.array_equal(got, np.asarray(expected).reshape(np.shape(expected)[0], -1)))
    return same, golden_ok, engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tflm_corpus.json")
    args = parser.parse_args()
    root = args.corpus or corpus_dir()
    if root is None:
        sys.exit("error: TensorFlow Lite Micro's model corpus not found (--corpus or MCU_EFFNET_TFLM_MODELS)")
    import tempfile

    from host_engine import HostRuntime

    work = tempfile.TemporaryDirectory(prefix="tflm-corpus-")
    host = HostRuntime(Path(work.name))
    rows = []
    for path in corpus_models(root):
        row = survey_model(path)
        entry = {"model": str(path.relative_to(root)), "status": row.status, "reason": row.reason}
        if row.status == "runs":
            entry["bit_exact_with_tflm"], entry["matches_golden"], entry["host_engine_bit_exact"] = _compare(
                row, host
            )
            if row.pinned:
                entry["pinned_inputs"] = list(row.pinned)
        else:
            entry["message"] = row.message.split(": ", 1)[-1]
        rows.append(entry)
    runs = [r for r in rows if r["status"] == "runs"]
    engine_runs = [r for r in runs if r["host_engine_bit_exact"] is not None]
    reasons = Counter(r["reason"] for r in rows if r["status"] == "refused")
    lines = [
        "| outcome | models |",
        "|---|---|",
        f"| runs, bit-exact with TFLite Micro | {sum(r['bit_exact_with_tflm'] for r in runs)} of {len(runs)} |",
        f"| of which bit-exact in the host-built C engine | "
        f"{sum(bool(r['host_engine_bit_exact']) for r in engine_runs)} of {len(engine_runs)} |",
    ]
    goldens = [r for r in runs if r["matches_golden"] is not None]
    lines.append(
        f"| runs, equal to the corpus's golden output | {sum(r['matches_golden'] for r in goldens)} of {len(goldens)} |"
    )
    pinned = sum(1 for r in runs if r.get("pinned_inputs"))
    if pinned:
        lines.append(f"| runs with an input pinned to the corpus's value | {pinned} |")
    lines += [f"| refused: {reason} | {n} |" for reason, n in reasons.most_common()]
    lines.append(f"| total | {len(rows)} |")
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"models": rows}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()
