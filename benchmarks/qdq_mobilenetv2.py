"""A PyTorch MobileNetV2 quantized by onnxruntime (QDQ) → int8 ``.tflite``: how close it stays.

    .venv/bin/python benchmarks/qdq_mobilenetv2.py [--steps 300] [--samples 256]

The tests' MobileNetV2-style network (``tests/torch_models.py``, 32x32, width 0.35, 10
classes) is measured twice: untrained with randomized batch-norm statistics (the tests'
network: near-tied logits, so top-1 flips on a 1-LSB difference), and trained for
``--steps`` Adam steps on a synthetic 10-class stripe set (frequency x orientation, random
phase, tint and noise), so its logits separate as a real classifier's do. Each is exported
with ``torch.onnx.export(dynamo=False)``, quantized with ``quantize_static`` (QDQ,
per-channel int8 weights, int8 activations, 32 calibration images) and written with
``export_tflite`` on ``--samples`` held-out images from the calibration distribution.

Prints per model: the ops, the per-op gate (each op alone in TFLite Micro on onnxruntime's
int8 inputs), end-to-end agreement with onnxruntime (TFLite Micro, LiteRT, the simulator with
single rounding) and top-1 accuracy of the float, QDQ and int8 models on the labels. Writes
``benchmarks/results/qdq_mobilenetv2.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from torch_models import MobileNetV2Small, randomize_batch_norm  # noqa: E402

from mcu_effnet.quant.tflite_check import int8_top1  # noqa: E402
from mcu_effnet.quant.tflite_export import export_tflite  # noqa: E402

SIZE = 32
CLASSES = 10


def stripes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Float NCHW images in [0, 1] and labels: class k is stripes of frequency k % 5 + 1 cycles,
    horizontal for k < 5 and vertical otherwise, with random phase, tint and noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    t = np.arange(SIZE, dtype=np.float32) / SIZE
    freq = (labels % 5 + 1)[:, None]
    phase = rng.random((n, 1)) * 2 * np.pi
    wave = np.sin(2 * np.pi * freq * t[None] + phase).astype(np.float32)  # (n, SIZE)
    grid = np.where(
        (labels < 5)[:, None, None], wave[:, :, None].repeat(SIZE, 2), wave[:, None, :].repeat(SIZE, 1)
    )
    tint = rng.uniform(0.5, 1.0, (n, 3, 1, 1)).astype(np.float32)
    x = 0.5 + 0.35 * tint * grid[:, None] + 0.15 * rng.standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)
    return np.clip(x, 0, 1).astype(np.float32), labels


def train(model: nn.Module, steps: int, seed: int = 0) -> nn.Module:
    x, y = stripes(4096, seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    model.train()
    for _ in range(steps):
        i = torch.randint(0, len(x), (64,), generator=gen)
        loss = nn.functional.cross_entropy(model(xt[i]), yt[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # settle the batch-norm statistics on the final weights
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average
        for k in range(0, 1024, 128):
            model(xt[k : k + 128])
    return model.eval()


def quantize(model: nn.Module, calibration: np.ndarray, out: Path) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Images(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"input": x[None]} for x in calibration])

        def get_next(self):
            return next(self.batches, None)

    float_path = out.with_name(out.stem + ".float.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            torch.rand(1, 3, SIZE, SIZE),
            str(float_path),
            dynamo=False,
            opset_version=13,
            input_names=["input"],
            output_names=["logits"],
        )
    logging.getLogger().setLevel(logging.ERROR)
    quantize_static(
        str(float_path),
        str(out),
        Images(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
    return out


def onnx_top1(path: Path, x: np.ndarray, labels: np.ndarray) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # onnxruntime lists every initializer it drops
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    logits = np.concatenate([session.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))])
    return float(np.mean(np.argmax(logits, 1) == labels))


def measure(name: str, model: nn.Module, samples: int, work: Path) -> dict:
    calibration, _ = stripes(32, seed=1)
    held_out, labels = stripes(samples, seed=2)
    onnx_path = quantize(model, calibration, work / f"{name}.onnx")
    tflite_path = work / f"{name}.tflite"
    report = export_tflite(onnx_path, tflite_path, inputs=held_out, samples=samples)
    with torch.no_grad():
        float_top1 = float(np.mean(model(torch.from_numpy(held_out)).argmax(1).numpy() == labels))
    c = report.check
    assert c is not None
    worst = report.worst_op
    assert worst is not None
    return {
        "model": name,
        "ops": report.op_counts,
        "ops_total": sum(report.op_counts.values()),
        "ops_checked": len(report.per_op),
        "per_op_worst": {
            "op": worst.output,
            "kind": worst.kind,
            "within_1lsb": worst.within_1lsb,
            "exact": worst.exact,
        },
        "per_op_min_exact": min(a.exact for a in report.per_op),
        "tflm": vars(c.tflm),
        "litert": vars(c.litert) if c.litert else None,
        "single_rounding": vars(c.single_rounding) if c.single_rounding else None,
        "top1_float": float_top1,
        "top1_qdq_onnx": onnx_top1(onnx_path, held_out, labels),
        "top1_int8_tflm": int8_top1(tflite_path.read_bytes(), held_out, labels),
        "tflite_bytes": report.tflite_bytes,
        "notes": report.notes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps for the trained row")
    parser.add_argument("--samples", type=int, default=256, help="held-out images for the check")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "qdq_mobilenetv2.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        untrained = randomize_batch_norm(MobileNetV2Small()).eval()
        rows.append(measure("untrained", untrained, args.samples, Path(tmp)))
        start = time.perf_counter()
        trained = train(MobileNetV2Small(), args.steps)
        print(f"trained {args.steps} steps in {time.perf_counter() - start:.0f} s")
        rows.append(measure(f"trained-{args.steps}", trained, args.samples, Path(tmp)))

    for r in rows:
        ops = ", ".join(f"{k} x{v}" for k, v in sorted(r["ops"].items()))
        w = r["per_op_worst"]
        print(f"\n{r['model']}: {r['ops_total']} ops ({ops}), {r['tflite_bytes']} bytes")
        print(
            f"  per-op gate: {r['ops_checked']} ops alone, worst {w['kind']} '{w['op']}' "
            f"{100 * w['within_1lsb']:.2f}% within 1 LSB; lowest exact {100 * r['per_op_min_exact']:.2f}%"
        )
        for label in ("tflm", "litert", "single_rounding"):
            a = r[label]
            if a:
                print(
                    f"  {label:16} vs onnxruntime: {100 * a['within_1lsb']:6.2f}% within 1 LSB "
                    f"({100 * a['exact']:.2f}% exact, max {a['max_abs_lsb']}), same top-1 {100 * a['top1']:.1f}%"
                )
        print(
            f"  top-1 on labels: float {100 * r['top1_float']:.1f}%, QDQ ONNX {100 * r['top1_qdq_onnx']:.1f}%, "
            f"int8 .tflite in TFLite Micro {100 * r['top1_int8_tflm']:.1f}%"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"samples": args.samples, "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
