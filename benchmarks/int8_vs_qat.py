"""Where a run's int8 file parts from its QAT model: image by image, then op kind by op kind.

    .venv/bin/python benchmarks/int8_vs_qat.py RUN_FOLDER [--images N]

1. Image by image on the run's validation split (``mcu_effnet.quant.int8_agreement``, as
   ``export`` records it in ``metrics.json``): top-1 of the Brevitas QAT model, of the
   ``.tflite`` in TFLite Micro's arithmetic (the host simulator, bit-exact with it) and of the
   same file with single-rounding requantization; the images each parts from the QAT model on,
   with the two largest logits of each.
2. Op kind by op kind on the stored validation samples: every op fed the inputs TFLite Micro's
   arithmetic gives it, run once more with single rounding; the share of its outputs that change
   and their mean signed change (double minus single, in output LSBs). A kind whose share stands
   out is where the double rounding enters.
3. Op kind by op kind, end to end: the whole file with one kind switched to single rounding,
   the rest as TFLite Micro; how many images then part from the all-single-rounding run.

Writes ``benchmarks/results/int8_vs_qat.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcu_effnet.graph import load_tflite  # noqa: E402
from mcu_effnet.oracle import top1  # noqa: E402
from mcu_effnet.quant.int8_agreement import compare_with_qat  # noqa: E402
from mcu_effnet.quant.pipeline import load_quant_model  # noqa: E402
from mcu_effnet.quant.run_folder import RunFolder  # noqa: E402
from mcu_effnet.quant.tflite_check import quantize_like_onnx  # noqa: E402
from mcu_effnet.quant.tflite_run import TFLITE, _val_dataset  # noqa: E402
from mcu_effnet.sim import graph_runner  # noqa: E402
from mcu_effnet.sim.requantize import rounding  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "int8_vs_qat.json"


def _codes(graph, images: np.ndarray) -> np.ndarray:
    tin = graph.tensors[graph.inputs[0]]
    pixels = np.transpose(images.astype(np.float32) / np.float32(255.0), (0, 2, 3, 1))
    return quantize_like_onnx(pixels, float(tin.scale[0]), int(tin.zero_point[0]))


def per_op_kind(graph, codes: np.ndarray) -> dict[str, dict]:
    """Each op on TFLite Micro's own inputs, once more with single rounding."""
    values = graph_runner.run(graph, codes, capture=True)
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0])
    for step in graph_runner._plan(graph).steps:
        op = step.op
        args = [
            c if c is not None or i < 0 else values[i] for i, c in zip(op.inputs, step.constants, strict=True)
        ]
        with rounding("single"):
            outs = step.kernel(graph, op, args)
        for index, single in zip(op.outputs, outs, strict=True):
            diff = values[index].astype(np.int64) - single.astype(np.int64)
            t = totals[op.kind]
            t[0] += diff.size
            t[1] += int(np.count_nonzero(diff))
            t[2] += float(diff.sum())
            t[3] = max(t[3], int(np.abs(diff).max()))
    return {
        kind: {
            "ops_outputs": n,
            "changed_pct": round(100 * nz / n, 3),
            "mean_lsb": round(s / n, 4),
            "max_lsb": mx,
        }
        for kind, (n, nz, s, mx) in totals.items()
    }


def one_kind_single(graph, codes: np.ndarray, kind: str) -> np.ndarray:
    """Logits with ``kind`` in single rounding and every other op as TFLite Micro."""
    values = {graph.inputs[0]: codes}
    for step in graph_runner._plan(graph).steps:
        op = step.op
        args = [
            c if c is not None or i < 0 else values[i] for i, c in zip(op.inputs, step.constants, strict=True)
        ]
        with rounding("single" if op.kind == kind else "double"):
            outs = step.kernel(graph, op, args)
        values.update(zip(op.outputs, outs, strict=True))
    return values[graph.outputs[0]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    folder = RunFolder.open(args.run)
    _, model, _ = load_quant_model(folder)
    blob = folder.file(TFLITE).read_bytes()
    graph = load_tflite(blob)
    dataset = _val_dataset(folder)
    agreement = compare_with_qat(model, blob, dataset)
    images = np.stack([np.asarray(dataset[i][0]) for i in range(len(dataset))]).astype(np.uint8)
    codes = _codes(graph, images)
    double = graph_runner.run(graph, codes)
    with rounding("single"):
        single = graph_runner.run(graph, codes)
    with torch.no_grad():
        qat = model(torch.from_numpy(images.astype(np.float32) / 255)).numpy()
    parted = sorted(set(agreement.differ) | set(agreement.differ_single_rounding))
    detail = [
        {
            "image": i,
            "label": int(dataset[i][1]),
            "qat_top2": [round(float(v), 3) for v in np.sort(qat[i])[-2:][::-1]],
            "int8_top2": np.sort(double[i])[-2:][::-1].tolist(),
            "single_rounding_top2": np.sort(single[i])[-2:][::-1].tolist(),
            "classes": {"qat": int(qat[i].argmax()), "int8": int(top1(double[i : i + 1])[0])},
        }
        for i in parted
    ]
    drift = np.abs(double.astype(np.int64) - single.astype(np.int64))
    kinds = per_op_kind(graph, codes[:128])
    ablation = {}
    for kind in kinds:
        logits = one_kind_single(graph, codes, kind)
        ablation[kind] = int(np.sum(top1(logits) != top1(single)))
    result = {
        "run": str(args.run),
        "agreement": agreement.to_dict(),
        "parted_images": detail,
        "logit_drift_lsb": {"exact_pct": round(100 * float(np.mean(drift == 0)), 1), "max": int(drift.max())},
        "per_op_kind_128_images": kinds,
        "images_apart_from_single_rounding_with_only_this_kind_single": ablation,
        "images_apart_from_single_rounding_as_tflm": int(np.sum(top1(double) != top1(single))),
    }
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
