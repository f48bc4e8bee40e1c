"""``mcu-effnet inspect MODEL.tflite [--json]``: ops, shapes, quantization, params, MACs, activation bytes."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="list a .tflite model's layers: ops, shapes, scales, params, MACs, activation bytes",
        description="Print one row per op of an int8 .tflite model (output shape, input and output "
        "scale / zero point, parameters, MACs, output bytes and the op's working set of activations) "
        "and the totals.",
    )
    parser.add_argument("model", metavar="MODEL.tflite")
    parser.add_argument("--json", action="store_true", help="print the same figures as JSON")
    parser.set_defaults(func=main)


def _scale_zp(t) -> tuple[float | None, int | None]:
    """A tensor's quantization; None for a float input or output (DEQUANTIZE's, QUANTIZE's)."""
    return (float(t.scale[0]), int(t.zero_point[0])) if t.scale.size else (None, None)


def _quant(scale: float | None, zp: int | None) -> str:
    return "-" if scale is None else f"{scale:.4g}/{zp}"


def _count(n: int) -> str:
    return f"{n:,}"


def main(args: argparse.Namespace) -> int:
    from mcu_effnet.codegen.layout import absorb_transposes
    from mcu_effnet.graph import load_tflite
    from mcu_effnet.graph.stats import graph_stats

    graph = load_tflite(args.model)
    stats = graph_stats(graph)
    absorbed = absorb_transposes(graph).absorbed
    if args.json:
        report = {
            "model": args.model,
            "description": graph.description,
            "metadata": sorted(graph.metadata),
            "inputs": [_tensor_json(graph.tensors[i]) for i in graph.inputs],
            "outputs": [_tensor_json(graph.tensors[i]) for i in graph.outputs],
            **stats.to_dict(),
            "native_engine_absorbs": [a.to_dict() for a in absorbed],
        }
        print(json.dumps(report, indent=2))
        return 0

    print(f"{args.model}: {len(graph.ops)} ops" + (f" — {graph.description}" if graph.description else ""))
    for role, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for i in indices:
            t = graph.tensors[i]
            print(f"  {role} '{t.name}' {list(t.shape)} {t.dtype} scale/zp {_quant(*_scale_zp(t))}")
    headers = (
        "#",
        "op",
        "output shape",
        "in scale/zp",
        "out scale/zp",
        "params",
        "MACs",
        "out bytes",
        "working bytes",
    )
    rows = [
        (
            str(s.index),
            s.kind,
            "x".join(map(str, s.output_shape)),
            _quant(s.input_scale, s.input_zero_point),
            _quant(s.output_scale, s.output_zero_point),
            _count(s.params),
            _count(s.macs),
            _count(s.output_bytes),
            _count(s.working_bytes),
        )
        for s in stats.layers
    ]
    totals = (
        "",
        "total",
        "",
        "",
        "",
        _count(stats.params),
        _count(stats.macs),
        "",
        f"peak {_count(stats.peak_working_bytes)}",
    )
    widths = [max(len(r[k]) for r in [headers, *rows, totals]) for k in range(len(headers))]
    numeric = {0, 5, 6, 7, 8}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if k in numeric else c.ljust(w)
            for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
    print("  ".join("-" * w for w in widths))
    print(line(totals))
    print(
        f"weights {_count(stats.param_bytes)} bytes; largest working set {_count(stats.peak_working_bytes)} bytes "
        f"at op {stats.peak_working_op}; input {_count(stats.input_bytes)} bytes, output {_count(stats.output_bytes)} bytes"
    )
    for a in absorbed:  # TRANSPOSEs the generated engine folds away (mcu_effnet.codegen.layout)
        print(f"native engine: {a.describe()}")
    return 0


def _tensor_json(t) -> dict:
    return {
        "name": t.name,
        "shape": list(t.shape),
        "dtype": t.dtype,
        "scale": [float(s) for s in t.scale],
        "zero_point": [int(z) for z in t.zero_point],
    }
