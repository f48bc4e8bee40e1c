"""``mcu-effnet export MODEL.onnx --out MODEL.tflite``: the ONNX half of the ``export`` verb.

Not a verb of its own: ``mcu_effnet.cli.export`` adds these options to its parser and hands
over when its argument is an ``.onnx`` file (a run folder goes to ``export_run``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mcu_effnet.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "exporting a quantized .onnx file (Brevitas QCDQ or onnxruntime QDQ) to int8 .tflite"
    )
    group.add_argument("--out", metavar="MODEL.tflite", help="output file (default: beside the .onnx)")
    group.add_argument(
        "--labels", metavar="FILE", help="class names, one per line, stored in the model metadata"
    )
    group.add_argument(
        "--inputs",
        metavar="X.npy",
        help="check images: uint8 NHWC/NCHW or float NCHW pixel/255 (default: random inputs)",
    )
    group.add_argument("--samples", type=int, default=64, metavar="N", help="check samples (default 64)")
    group.add_argument(
        "--strict",
        action="store_true",
        help="also require the end-to-end figures (99%% of outputs within 1 LSB of onnxruntime, 99%% same "
        "top-1), not only every op alone; TFLite Micro's double rounding drifts past them on deep models",
    )
    group.add_argument("--json", action="store_true", help="print the export report as JSON")


def _read_labels(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read labels ({exc})") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise UserError(f"{path}: no labels in the file")
    return labels


def _read_images(path: str):
    import numpy as np

    try:
        return np.load(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable .npy array ({exc})") from None


def is_onnx_path(path: str) -> bool:
    """True when the ``export`` argument names an ONNX file rather than a run folder."""
    return Path(path).suffix.lower() == ".onnx"


def options_given(args: argparse.Namespace) -> list[str]:
    """The ONNX-only options a user passed (an error with a run folder)."""
    flags = {"out": "--out", "labels": "--labels", "inputs": "--inputs", "strict": "--strict"}
    return [flag for key, flag in flags.items() if getattr(args, key, None)]


def run(args: argparse.Namespace, path: str) -> int:
    """Exports ``path`` (a QCDQ or QDQ ``.onnx``) and prints the report; UserError on bad input."""
    from mcu_effnet.quant.tflite_export import export_tflite

    onnx_path = Path(path)
    if not onnx_path.is_file():
        raise UserError(f"{onnx_path}: no such file")
    if args.samples < 1:
        raise UserError(f"--samples must be at least 1, got {args.samples}")
    out = Path(args.out) if args.out else onnx_path.with_suffix(".tflite")
    labels = _read_labels(args.labels) if args.labels else None
    inputs = _read_images(args.inputs) if args.inputs else None
    report = export_tflite(
        onnx_path, out, labels=labels, inputs=inputs, samples=args.samples, strict=args.strict
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(report.summary_lines()))
    return 0
