"""Where TFLite Micro's end-to-end drift from the QCDQ ONNX model comes from: its double rounding.

    .venv/bin/python benchmarks/rounding_drift.py [RUN_FOLDER]      (default: runs/latest)

On the run folder's validation samples it runs the export check (``check_export``) again and
shows its three end-to-end rows against onnxruntime on ``model.onnx``:

- TFLite Micro itself (the tflite-micro interpreter) on ``model.tflite``: double rounding,
  gemmlowp's ``SaturatingRoundingDoublingHighMul`` then ``RoundingDivideByPOT``;
- the host simulator (bit-exact with TFLite Micro) in ``mcu_effnet.sim.requantize.rounding("single")``:
  every ``MultiplyByQuantizedMultiplier`` rounds the exact product once, as TFLite Micro built
  with ``TFLITE_SINGLE_ROUNDING`` does;
- LiteRT, the desktop interpreter, on the same file.

If the second row agrees with ONNX where the first does not, the file holds the trained scales and
the drift is the runtime's rounding mode. Prints a table and writes
``benchmarks/results/rounding_drift.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcu_effnet.graph import load_tflite  # noqa: E402
from mcu_effnet.quant.onnx_graph import load_onnx_graph  # noqa: E402
from mcu_effnet.quant.qcdq_lower import lower_qcdq  # noqa: E402
from mcu_effnet.quant.tflite_check import check_export  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default=str(ROOT / "runs" / "latest"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rounding_drift.json")
    args = parser.parse_args()
    run = Path(args.run)
    onnx_path, tflite_path = run / "model.onnx", run / "model.tflite"
    samples = np.load(run / "val_samples.npz")["x"]  # uint8 NCHW, as the export check uses them
    x = samples.astype(np.float32) / np.float32(255)

    data = tflite_path.read_bytes()
    check = check_export(str(onnx_path), data, lower_qcdq(load_onnx_graph(onnx_path)), x)
    rows = {
        "TFLite Micro (interpreter)": check.tflm,
        "simulator, single rounding": check.single_rounding,
        "LiteRT": check.litert,
    }

    results = []
    print(
        f"{run.resolve().name}: {check.tflm.samples} validation images, {len(load_tflite(data).ops)} ops, vs onnxruntime"
    )
    print(f"{'runtime':32} {'exact':>7} {'within 1 LSB':>13} {'max LSB':>8} {'same top-1':>11}")
    for name, a in rows.items():
        if a is None:
            print(f"{name:32} could not run")
            continue
        results.append({"runtime": name, **a.__dict__})
        print(f"{name:32} {a.exact:7.1%} {a.within_1lsb:13.1%} {a.max_abs_lsb:8d} {a.top1:11.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"run": run.resolve().name, "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
