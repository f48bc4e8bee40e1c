"""``mcu-effnet export RUN_DIR``: re-export a run's QAT model from its checkpoint (QCDQ ONNX and
int8 .tflite, both checked); ``mcu-effnet export MODEL.onnx --out MODEL.tflite``: the int8 .tflite
of any QCDQ (Brevitas) or QDQ (onnxruntime ``quantize_static``) ONNX model
(``mcu_effnet.cli.onnx_to_tflite``)."""

from __future__ import annotations

import argparse

from mcu_effnet.cli import onnx_to_tflite
from mcu_effnet.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="re-export a run folder's QAT model (ONNX and int8 .tflite), or a quantized .onnx as .tflite",
        description="Rebuild the Brevitas model from RUN_DIR/checkpoint.pt and write the checked QCDQ "
        "ONNX model (onnxruntime must agree with Brevitas to 1e-5 on the stored validation images), then "
        "the fully int8 model.tflite with the QAT scales (TFLite Micro within 1 LSB of onnxruntime on 99% "
        "of output elements, same top-1 on 99% of images). Given MODEL.onnx instead, write only the .tflite.",
    )
    p.add_argument(
        "run_dir",
        metavar="RUN_DIR|MODEL.onnx",
        help="a run folder written by mcu-effnet qat, or a quantized .onnx file (Brevitas QCDQ, or "
        "QDQ from onnxruntime's quantize_static with int8 weights)",
    )
    onnx_to_tflite.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if onnx_to_tflite.is_onnx_path(args.run_dir):
        return onnx_to_tflite.run(args, args.run_dir)
    extra = [flag for flag in onnx_to_tflite.options_given(args) if flag != "--strict"]
    if extra:
        raise UserError(f"{', '.join(extra)}: only for a .onnx file, not for the run folder {args.run_dir}")
    from mcu_effnet.quant.pipeline import export_run

    export_run(args.run_dir, strict=args.strict)
    return 0
