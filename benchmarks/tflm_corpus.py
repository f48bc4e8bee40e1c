"""Coverage of TensorFlow Lite Micro's own model corpus: how many models mcu-effnet runs, how many
it refuses, and why.

    .venv/bin/python benchmarks/tflm_corpus.py [--corpus DIR]

The corpus is found as ``tests/tflm_corpus.py`` finds it (``MCU_EFFNET_TFLM_MODELS``, else
``shared/models/tflm`` beside the repository). Every model that loads is also run in the
simulator and compared with TFLite Micro (and the golden output where the corpus ships one); the
test ``tests/test_tflm_corpus.py`` holds the same line on every file. Every model that runs is
also built as the native C engine for the host (gcc, ASan/UBSan, ``tests/host_engine.py``; the
inputs of a several-input model packed as ``model_invoke()`` takes them) and compared the same way. Prints the table and writes
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

from tflite_builder import run_tflm  # noqa: E402
from tflm_corpus import corpus_dir, corpus_inputs, corpus_models, csv_tensor, golden_files, survey_model  # noqa: E402

from mcu_effnet.codegen.engine import generate_engine  # noqa: E402
from mcu_effnet.sim import run  # noqa: E402


def _bit_exact(row, host) -> tuple[bool, bool | None]:
    """(simulator, host-built engine) each equal to TFLite Micro and the golden output; the
    engine's is None for a model it does not take (more than one output)."""
    graph = row.graph
    batches = corpus_inputs(graph, row.path)
    _, golden = golden_files(row.path)
    expected = run_tflm(row.path.read_bytes(), batches)
    if golden is not None:
        expected_flat = csv_tensor(golden, expected.dtype)
        if not np.array_equal(expected[0].reshape(-1), expected_flat):
            return False, None
    ours = run(graph, batches)
    engine = None
    if len(graph.outputs) == 1:
        got = host.run_engine(generate_engine(graph), batches)
        engine = bool(np.array_equal(got, expected.reshape(expected.shape[0], -1)))
    return bool(np.array_equal(ours, expected)), engine


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
            entry["bit_exact_with_tflm"], entry["host_engine_bit_exact"] = _bit_exact(row, host)
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
    lines += [f"| refused: {reason} | {n} |" for reason, n in reasons.most_common()]
    lines.append(f"| total | {len(rows)} |")
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"models": rows}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()
