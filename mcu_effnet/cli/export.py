"""``mcu-effnet export RUN_DIR``: re-export a run's QAT model from its checkpoint (QCDQ ONNX, checked)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="re-export a run folder's QAT model from its checkpoint",
        description="Rebuild the Brevitas model from RUN_DIR/checkpoint.pt and write the checked QCDQ "
        "ONNX model (onnxruntime must agree with Brevitas to 1e-5 on the stored validation images).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by mcu-effnet qat")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mcu_effnet.quant.pipeline import export_run

    export_run(args.run_dir)
    return 0
