"""Per-layer profile of the native engine against TFLite Micro (reference, CMSIS-NN) in QEMU.

    .venv/bin/python benchmarks/layer_profile.py [--board qemu-m4] [MODEL.tflite ...]

Default model: a ResNet-8 of MLPerf Tiny's image-classification shape (32×32×3, a 3×3 stem of 16
channels, three residual stages of 16/32/64 channels, global average pool, 10 classes; 12.5 M
MACs) built with the tests' model builder and random weights (the arithmetic does not care).
``compare --profile`` builds the three profiling firmwares; this prints instructions per op type
side by side and, per runtime, the layers whose instructions per MAC are highest, and writes
``benchmarks/results/layer_profile.json`` and ``layer_profile.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

RESULTS = ROOT / "benchmarks" / "results"
TOP = 5  # layers listed per runtime


def resnet8(seed: int = 0) -> bytes:
    """MLPerf Tiny IC's ResNet-8 shape: a stem conv, three stages of two 3×3 convs with a
    residual ADD (a strided 1×1 projection where the shape changes), pool, FC, softmax."""
    import numpy as np
    from tflite_builder import ModelBuilder

    b = ModelBuilder(np.random.default_rng(seed))
    h = b.conv2d(b.input((1, 32, 32, 3)), 16, (3, 3), (1, 1), "SAME", activation="RELU")
    for channels, stride in ((16, 1), (32, 2), (64, 2)):
        y = b.conv2d(h, channels, (3, 3), (stride, stride), "SAME", activation="RELU")
        y = b.conv2d(y, channels, (3, 3), (1, 1), "SAME")
        same = stride == 1 and b.info[h].shape[-1] == channels
        shortcut = h if same else b.conv2d(h, channels, (1, 1), (stride, stride), "SAME")
        h = b.add(y, shortcut, activation="RELU")
    _, height, width, channels = b.info[h].shape
    pooled = b.pool("AVERAGE_POOL_2D", h, (height, width), (1, 1), "VALID")
    logits = b.fully_connected(b.reshape(pooled, (1, channels)), 10)
    b.outputs = [b.softmax(logits)]
    return b.build()


def top_layers(folder: Path) -> list[dict]:
    """The profiled project's layers with MACs, highest instructions per MAC first."""
    report = json.loads((folder / "report.json").read_text())
    rows = [r for r in report["layers"] if r.get("macs")]
    return sorted(rows, key=lambda r: -r["instructions_per_mac"])[:TOP]


def main() -> int:
    from mcu_effnet.codegen.compare import compare, format_table, op_types_table
    from mcu_effnet.graph import load_tflite

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="*", help="MODEL.tflite files (default: the ResNet-8)")
    parser.add_argument("--board", default="qemu-m4")
    args = parser.parse_args()
    models = [(Path(m).stem, Path(m).read_bytes()) for m in args.models] or [("resnet8", resnet8())]
    results, md = [], []
    with tempfile.TemporaryDirectory(prefix="layer-profile-") as work:
        for name, data in models:
            graph = load_tflite(data)
            graph.source = f"{name}.tflite"
            out = Path(work) / name
            result = compare(
                graph, data, args.board, out, samples=1, profile=True, model_source=f"{name}.tflite"
            )
            result["top_layers"] = {fw: top_layers(out / fw) for fw in ("native", "tflm-cmsis-nn")}
            results.append(result)
            md.append(f"## {name} on {args.board}\n\n{format_table(result)}\n{op_types_table(result)}")
            for fw, rows in result["top_layers"].items():
                md.append(f"\nHighest instructions per MAC, {fw}:\n")
                md += [
                    f"- step {r['step'] if 'step' in r else r['index']} {r['op']} {r['output_shape']}: "
                    f"{r['instructions']:,} instructions, {r['macs']:,} MACs, {r['instructions_per_mac']:.2f}/MAC"
                    for r in rows
                ]
            md.append("")
    text = "\n".join(md)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "layer_profile.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "layer_profile.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
