"""``mcu-effnet validate MODEL.tflite``: the simulator against TFLite Micro, LiteRT and (optionally) ONNX."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="compare the simulator with TFLite Micro (must be bit-exact), LiteRT and the QCDQ ONNX model",
        description="Run the same int8 inputs through the host simulator, TFLite Micro, LiteRT and, with "
        "--onnx, the QCDQ ONNX model; print one table. Exit status 1 when the simulator and "
        "TFLite Micro differ in any element.",
    )
    parser.add_argument("model", metavar="MODEL.tflite")
    parser.add_argument("--onnx", metavar="MODEL.onnx", help="also compare with this QCDQ ONNX model")
    parser.add_argument("--samples", type=int, default=100, help="number of inputs (default 100)")
    parser.add_argument(
        "--data", metavar="PATH", help="a folder of images or an .npz with x_test (default: random int8)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from mcu_effnet.sim.crosscheck import format_table, validate

    report = validate(args.model, onnx_path=args.onnx, samples=args.samples, data=args.data, seed=args.seed)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(format_table(report))
    return 0 if report.bit_exact else 1
