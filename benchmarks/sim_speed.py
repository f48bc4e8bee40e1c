"""Host simulator vs TFLite Micro's Python interpreter: batch-1 latency and batch-256 throughput.

    .venv/bin/python benchmarks/sim_speed.py [MODEL.tflite ...] [--no-builtin] [--batch 256] [--repeats 30]

It times the test builder's small CNNs (``random_cnn``, ``random_mbconv`` with HARD_SWISH /
squeeze-excitation, and the Lite variant with RELU6), two EfficientNet-shaped models, then
any ``.tflite`` given (our exported EfficientNets, for instance). Both runtimes get
the same random int8 inputs; the outputs are checked to be identical before timing counts.
Prints a table and writes ``benchmarks/results/sim_speed.json``.
"""

from __future__ import annotations

import os

# One BLAS thread unless the caller says otherwise (set OPENBLAS_NUM_THREADS before running):
# TFLite Micro runs on one thread, and on a loaded machine OpenBLAS threads spin against each
# other (measured here: 3-7x slower than one thread at load average 5 on 2 cores).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def efficientnet_like(size: int, seed: int = 0) -> bytes:
    """A small EfficientNet-shaped int8 model: stem conv s2, MBConv blocks (expand, HARD_SWISH,
    depthwise, squeeze-excitation, project, residual), head conv, MEAN, FC, SOFTMAX."""
    from tflite_builder import ModelBuilder

    b = ModelBuilder(np.random.default_rng(seed))
    x = b.conv2d(b.input((1, size, size, 3)), 16, (3, 3), (2, 2), activation="RELU6")
    # (expansion, output channels, stride, kernel)
    for expand, channels, stride, kernel in (
        (1, 16, 1, 3),
        (4, 24, 2, 3),
        (4, 24, 1, 3),
        (4, 40, 2, 5),
        (4, 40, 1, 5),
    ):
        c_in = b.info[x].shape[-1]
        h = b.conv2d(x, c_in * expand, (1, 1)) if expand > 1 else x
        h = b.unary("HARD_SWISH", h, out_scale=b.qparams(h)[0] * 0.7, out_zp=-90)
        h = b.depthwise(h, (kernel, kernel), (stride, stride))
        h = b.unary("HARD_SWISH", h, out_scale=b.qparams(h)[0] * 0.7, out_zp=-90)
        squeezed = b.mean(h, (1, 2), keep_dims=True)
        gate = b.logistic(
            b.conv2d(
                b.conv2d(squeezed, max(4, c_in // 4), (1, 1), activation="RELU"), b.info[h].shape[-1], (1, 1)
            )
        )
        h = b.add(h, gate, kind="MUL")
        h = b.conv2d(h, channels, (1, 1))
        x = b.add(x, h) if stride == 1 and channels == c_in else h
    head = b.conv2d(x, 128, (1, 1))
    pooled = b.mean(head, (1, 2), keep_dims=False)
    b.outputs = [b.softmax(b.fully_connected(pooled, 10))]
    return b.build()


def builtin_models() -> list[tuple[str, bytes]]:
    sys.path.insert(0, str(ROOT / "tests"))
    from tflite_builder import random_cnn, random_mbconv

    return [
        ("random_cnn 16px", random_cnn(np.random.default_rng(0), size=16)),
        ("random_cnn 32px", random_cnn(np.random.default_rng(1), size=32)),
        ("mbconv hswish+SE 12px", random_mbconv(np.random.default_rng(2), size=12, activation="HARD_SWISH")),
        ("mbconv lite 24px", random_mbconv(np.random.default_rng(3), size=24, activation="RELU6")),
        ("effnet-like 64px", efficientnet_like(64)),
        ("effnet-like 96px", efficientnet_like(96)),
    ]


def median_seconds(fn: Callable[[], object], repeats: int, budget_s: float = 5.0) -> float:
    """Median wall time of fn over up to ``repeats`` calls (fewer when one call is slow)."""
    fn()  # warm-up: imports, caches, first allocation
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() - started < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_model(name: str, model: bytes, batch: int, repeats: int, seed: int) -> dict:
    from mcu_effnet.graph import load_tflite
    from mcu_effnet.oracle import TflmRunner
    from mcu_effnet.sim import run

    graph = load_tflite(model)
    tensor = graph.input_tensors[0]
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(batch, *tensor.shape[1:]), dtype=np.int64).astype(np.int8)
    tflm = TflmRunner(model)

    sim_out = run(graph, x)
    sim_out = sim_out[0] if isinstance(sim_out, list) else sim_out
    tflm_out = tflm.run(x)[0]
    exact = bool(np.array_equal(sim_out, tflm_out))

    one = x[:1]
    sim_b1 = median_seconds(lambda: run(graph, one), repeats)
    tflm_b1 = median_seconds(lambda: tflm.run_one(one), repeats)
    sim_batch = median_seconds(lambda: run(graph, x), max(3, repeats // 10))
    tflm_batch = median_seconds(lambda: tflm.run(x), 3)
    return {
        "model": name,
        "input_shape": [int(d) for d in tensor.shape],
        "ops": len(graph.ops),
        "bit_exact": exact,
        "batch": batch,
        "sim_batch1_ms": 1e3 * sim_b1,
        "tflm_batch1_ms": 1e3 * tflm_b1,
        "batch1_speedup": tflm_b1 / sim_b1,
        "sim_batch_ms_per_image": 1e3 * sim_batch / batch,
        "tflm_batch_ms_per_image": 1e3 * tflm_batch / batch,
        "batch_speedup": tflm_batch / sim_batch,
    }


def format_table(rows: list[dict]) -> str:
    header = (
        f"{'model':<24} {'input':<14} {'ops':>3} {'exact':>5} | {'sim b1 ms':>9} {'tflm b1 ms':>10} {'x':>6} | "
        f"{'sim ms/img':>10} {'tflm ms/img':>11} {'x':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        shape = "x".join(str(d) for d in r["input_shape"][1:])
        lines.append(
            f"{r['model']:<24} {shape:<14} {r['ops']:>3} {'yes' if r['bit_exact'] else 'NO':>5} | "
            f"{r['sim_batch1_ms']:>9.3f} {r['tflm_batch1_ms']:>10.3f} {r['batch1_speedup']:>6.2f} | "
            f"{r['sim_batch_ms_per_image']:>10.4f} {r['tflm_batch_ms_per_image']:>11.4f} {r['batch_speedup']:>7.1f}"
        )
    lines.append(
        f"x = TFLite Micro time / simulator time (above 1: the simulator is faster); batch {rows[0]['batch']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", metavar="MODEL.tflite", help="timed after the built-in models")
    parser.add_argument("--no-builtin", action="store_true", help="time only the given models")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30, help="timed calls at batch 1 (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sim_speed.json")
    args = parser.parse_args(argv)

    models = [] if args.no_builtin else builtin_models()
    models += [(Path(p).name, Path(p).read_bytes()) for p in args.models]
    if not models:
        parser.error("--no-builtin needs at least one MODEL.tflite")
    rows = []
    for name, model in models:
        rows.append(bench_model(name, model, args.batch, args.repeats, args.seed))
        print(f"timed {name}", file=sys.stderr)
    print(format_table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
        },
        "blas_threads": os.environ["OPENBLAS_NUM_THREADS"],
        "numpy": np.__version__,
        "results": rows,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
