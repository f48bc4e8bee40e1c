"""Where TFLite Micro's end-to-end drift from the QCDQ ONNX model comes from: its double rounding.

    .venv/bin/python benchmarks/rounding_drift.py [RUN_FOLDER]      (default: runs/latest)

On the run folder's validation samples it compares, against onnxruntime on ``model.onnx``:

- TFLite Micro itself (the tflite-micro interpreter) on ``model.tflite``;
- the host simulator, which is bit-exact with it (double rounding: gemmlowp's
  ``SaturatingRoundingDoublingHighMul`` then ``RoundingDivideByPOT``);
- the same simulator in ``mcu_effnet.sim.requantize.rounding("single")``: every
  ``MultiplyByQuantizedMultiplier`` rounds the exact product once, as TFLite Micro built with
  ``TFLITE_SINGLE_ROUNDING`` does (the export check reports this row too).

If the third row agrees with ONNX where the first does not, the file holds the trained scales and
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
from mcu_effnet.quant import tflite_check  # noqa: E402
from mcu_effnet.quant.onnx_graph import load_onnx_graph  # noqa: E402
from mcu_effnet.quant.qcdq_lower import lower_qcdq  # noqa: E402
from mcu_effnet.sim import run as simulate  # noqa: E402
from mcu_effnet.sim.requantize import rounding  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default=str(ROOT / "runs" / "latest"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rounding_drift.json")
    args = parser.parse_args()
    run = Path(args.run)
    onnx_path, tflite_path = run / "model.onnx", run / "model.tflite"
    samples = np.load(run / "val_samples.npz")["x"]  # uint8 NCHW, as the export check uses them
    x = samples.astype(np.float32) / np.float32(255)

    model = lower_qcdq(load_onnx_graph(onnx_path))
    b = model.inputs[0]
    x_int8 = tflite_check.to_tflite_layout(tflite_check.quantize_like_onnx(x, b.scale, b.zero_point))
    reference = tflite_check.reference_codes(
        model, tflite_check.run_onnx(str(onnx_path), x, model.onnx_outputs)
    )
    data = tflite_path.read_bytes()

    rows = {"TFLite Micro (interpreter)": tflite_check.run_tflm(data, model, x_int8)}
    rows["simulator (bit-exact with it)"] = [simulate(load_tflite(data), x_int8)]
    with rounding("single"):
        rows["simulator, single rounding"] = [simulate(load_tflite(data), x_int8)]

    results = []
    print(
        f"{run.resolve().name}: {len(x)} validation images, {len(load_tflite(data).ops)} ops, vs onnxruntime"
    )
    print(f"{'runtime':32} {'exact':>7} {'within 1 LSB':>13} {'max LSB':>8} {'same top-1':>11}")
    for name, outputs in rows.items():
        a = tflite_check.compare(reference, outputs)
        results.append({"runtime": name, **a.__dict__})
        print(f"{name:32} {a.exact:7.1%} {a.within_1lsb:13.1%} {a.max_abs_lsb:8d} {a.top1:11.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"run": run.resolve().name, "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
