"""Instructions per MAC of single layers in the native engine, in QEMU.

    .venv/bin/python benchmarks/layer_speed.py [--board qemu-m4] [--only SUBSTRING,...]

Each layer kind (3x3 / 1x1 convolutions, depthwise 3x3 / 5x5, fully connected: the shapes of
the public benchmark models' layers, tests/public_models.py) is built with the test builder's
random int8 weights twice: one layer, and two identical layers in a chain. The difference of
the two firmwares' instruction counts (QEMU -icount) is one layer without the firmware's fixed
costs; divided by the layer's MACs it gives instructions per MAC. Both firmwares are checked
bit-exact against the host simulator.

Prints a markdown table and writes ``benchmarks/results/layer_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

RESULTS = ROOT / "benchmarks" / "results"


def _conv(k: int, c: int, size: int) -> Callable:
    return lambda b, x: b.conv2d(x, c, (k, k), activation="RELU")


def _depthwise(k: int) -> Callable:
    return lambda b, x: b.depthwise(x, (k, k), activation="RELU6")


# (name, input shape, layer, MACs of one layer)
LAYERS = (
    ("conv 3x3 16->16 32x32", (1, 32, 32, 16), _conv(3, 16, 32), 32 * 32 * 16 * 9 * 16),
    ("conv 3x3 32->32 16x16", (1, 16, 16, 32), _conv(3, 32, 16), 16 * 16 * 32 * 9 * 32),
    ("conv 3x3 64->64 8x8", (1, 8, 8, 64), _conv(3, 64, 8), 8 * 8 * 64 * 9 * 64),
    ("conv 1x1 64->64 25x5", (1, 25, 5, 64), _conv(1, 64, 25), 25 * 5 * 64 * 64),
    ("conv 1x1 128->128 6x6", (1, 6, 6, 128), _conv(1, 128, 6), 6 * 6 * 128 * 128),
    ("depthwise 3x3 64 25x5", (1, 25, 5, 64), _depthwise(3), 25 * 5 * 64 * 9),
    ("depthwise 3x3 32 24x24", (1, 24, 24, 32), _depthwise(3), 24 * 24 * 32 * 9),
    ("depthwise 5x5 32 12x12", (1, 12, 12, 32), _depthwise(5), 12 * 12 * 32 * 25),
    ("fully connected 128->128", (1, 128), lambda b, x: b.fully_connected(x, 128), 128 * 128),
    ("fully connected 256->256", (1, 256), lambda b, x: b.fully_connected(x, 256), 256 * 256),
)


def chain(shape: tuple[int, ...], layer: Callable, count: int) -> bytes:
    from tflite_builder import ModelBuilder

    b = ModelBuilder(np.random.default_rng(0))
    x = b.input(shape)
    for _ in range(count):
        x = layer(b, x)
    b.outputs = [x]
    return b.build()


def instructions(model: bytes, board: str, work: Path) -> int:
    from mcu_effnet.codegen import toolchain
    from mcu_effnet.codegen.project import write_project
    from mcu_effnet.graph import load_tflite
    from mcu_effnet.sim import run as simulate

    graph = load_tflite(model)
    out = work / str(len(list(work.iterdir())))
    project = write_project(graph, board, out, model_bytes=model)
    elf = toolchain.make(out, "qemu")
    shape = graph.input_tensors[0].shape
    x = np.random.default_rng(1).integers(-128, 128, size=(1, *shape[1:]), dtype=np.int8)
    result = toolchain.run_qemu(
        project.board, elf, inputs=x.reshape(1, -1), output_bytes=project.report["output_bytes"]
    )
    expected = np.asarray(simulate(graph, x)).reshape(1, -1)
    if not (result.status == 0 and result.check_ok and np.array_equal(result.outputs, expected)):
        raise SystemExit(f"not bit-exact on {board}")
    return int(result.instructions)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="qemu-m4")
    parser.add_argument("--only", default="", help="comma-separated substrings: keep matching layers")
    args = parser.parse_args()
    wanted = [s for s in args.only.split(",") if s]
    rows = []
    print("| layer | MACs | instructions | instructions / MAC |\n|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="mcu-effnet-layers-") as tmp:
        for name, shape, layer, macs in LAYERS:
            if wanted and not any(w in name for w in wanted):
                continue
            one = instructions(chain(shape, layer, 1), args.board, Path(tmp))
            two = instructions(chain(shape, layer, 2), args.board, Path(tmp))
            rows.append(dict(layer=name, board=args.board, macs=macs, instructions=two - one,
                             instructions_per_mac=round((two - one) / macs, 3)))  # fmt: skip
            print(f"| {name} | {macs:,} | {two - one:,} | {(two - one) / macs:.2f} |", flush=True)
    if not wanted:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "layer_speed.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
