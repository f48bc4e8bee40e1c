"""Instructions per MAC of every convolution and FULLY_CONNECTED layer of the public models, native engine.

    .venv/bin/python benchmarks/public_layers.py [--board qemu-m4] [--before FILE.json]

The three public architectures of ``tests/public_models.py`` (ResNet-8, MobileNetV1-0.25 for
visual wake words, DS-CNN for keyword spotting; random int8 weights) and ``efficientnet_dw``
(EfficientNet-B0's depthwise shapes at 112x112 input: 3x3 and 5x5, stride 1 and 2, between 1x1
expansions and projections) are generated with
``codegen --profile`` for the board and run in QEMU (``run --profile``, bit-exact with the
simulator or the script fails); each layer's row of ``report.json`` gives its instructions
(counter reads taken off), MACs and the DSP kernel it called. ``--before`` adds the figures of
an earlier run of this script (its JSON) as a column. Writes
``benchmarks/results/public_layers-<board>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

RESULTS = ROOT / "benchmarks" / "results"
MODELS = ("resnet8", "mobilenet_v1_025", "ds_cnn", "efficientnet_dw")
KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")

# EfficientNet-B0's MBConv stages at a 112x112 input (the 224 model's sizes halved): expanded
# channels, depthwise kernel, stride, output channels.
EFFICIENTNET_BLOCKS = (
    (96, 3, 2, 24),
    (144, 5, 2, 40),
    (240, 5, 1, 40),
    (240, 3, 2, 80),
    (480, 3, 1, 80),
    (480, 5, 1, 112),
)


def efficientnet_dw(seed: int = 0) -> bytes:
    """EfficientNet-B0's MBConv blocks (1x1 expand, depthwise, 1x1 project) with its depthwise
    shapes at a 112x112 input, from its 56x56x16 stage on; random int8 weights."""
    import numpy as np
    from tflite_builder import ModelBuilder

    b = ModelBuilder(
        np.random.default_rng(seed), description="EfficientNet-B0 depthwise shapes, random weights"
    )
    x = b.input((1, 56, 56, 16))
    for wide, k, stride, c_out in EFFICIENTNET_BLOCKS:
        y = b.conv2d(x, wide, (1, 1), activation="RELU6")
        y = b.depthwise(y, (k, k), (stride, stride), activation="RELU6")
        x = b.conv2d(y, c_out, (1, 1))
    b.outputs = [x]
    return b.build()


def _kernels(model_c: str) -> dict[int, str]:
    """The kernel each op calls in ``model.c`` (``ek_name(&opN_...``), by op index."""
    return {int(n): name for name, n in re.findall(r"(ek_\w+)\(&op(\d+)_", model_c)}


def profile(name: str, data: bytes, board: str, work: Path) -> list[dict]:
    model = work / f"{name}.tflite"
    model.write_bytes(data)
    fw = work / name
    cli = [sys.executable, "-m", "mcu_effnet.cli"]
    subprocess.run([*cli, "codegen", str(model), "--board", board, "--profile", "--out", str(fw)], check=True)
    subprocess.run([*cli, "run", str(fw), "--profile"], check=True, stdout=subprocess.DEVNULL)
    kernels = _kernels((fw / "model" / "model.c").read_text())
    report = json.loads((fw / "report.json").read_text())
    return [
        {
            "model": name,
            "op": row["index"],
            "kind": row["op"],
            "shape": row.get("output_shape"),
            "kernel": kernels.get(row["index"], ""),
            "macs": row["macs"],
            "instructions": row["instructions"],
            "instructions_per_mac": round(row["instructions"] / row["macs"], 3),
        }
        for row in report["layers"]
        if row["op"] in KINDS and row.get("macs")
    ]


def main() -> int:
    import public_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="qemu-m4")
    parser.add_argument("--before", type=Path, help="an earlier run's JSON: its figures as a column")
    args = parser.parse_args()
    before, before_commit = {}, None
    if args.before:
        earlier = json.loads(args.before.read_text())
        before = {(r["model"], r["op"]): r for r in earlier["layers"]}
        before_commit = earlier.get("commit")
    rows = []
    with tempfile.TemporaryDirectory(prefix="public-layers-") as work:
        for name in MODELS:
            build = efficientnet_dw if name == "efficientnet_dw" else getattr(public_models, name)
            rows += profile(name, build(), args.board, Path(work))
    head = "| model | op | kind | output | kernel | MACs | instructions | per MAC |"
    lines = [
        head + (" before |" if before else ""),
        "|---|---:|---|---|---|---:|---:|---:|" + ("---:|" if before else ""),
    ]
    for r in rows:
        line = (
            f"| {r['model']} | {r['op']} | {r['kind']} | {r['shape']} | `{r['kernel']}` | {r['macs']:,} "
            f"| {r['instructions']:,} | {r['instructions_per_mac']:.3f} |"
        )
        if before:
            old = before.get((r["model"], r["op"]))
            line += f" {old['instructions_per_mac']:.3f} |" if old else " - |"
        lines.append(line)
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"public_layers-{args.board}"
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    record = {"board": args.board, "commit": commit.stdout.strip() or None, "layers": rows}
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    note = (
        f"Native engine, {args.board}, `benchmarks/public_layers.py`: instructions per MAC of each "
        "CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED layer (profiling build, counter reads taken off)."
        + (f" Before: the same run at commit {before_commit}." if before_commit else "")
    )
    stem.with_suffix(".md").write_text(f"{note}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
