"""The ``mcu-effnet`` command: parses arguments, calls one public function per verb, prints.

Each verb lives in its own module under ``mcu_effnet.cli`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` to a callable taking the parsed namespace and
returning an exit code. Verb modules import heavy packages (torch, tflite-micro) inside
their functions, so ``mcu-effnet sim`` never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from mcu_effnet import __version__
from mcu_effnet.errors import UserError

# Order is the order of `mcu-effnet --help`. A verb whose module is missing is simply absent.
VERB_MODULES = (
    "scale",
    "boards",
    "qat",
    "export",
    "sim",
    "validate",
    "inspect",
    "codegen",
    "run",
    "compare",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcu-effnet",
        description="Tiny compound-scaled EfficientNets: QAT, int8 TFLite, bit-exact C for Cortex-M.",
    )
    parser.add_argument("--version", action="version", version=f"mcu-effnet {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in VERB_MODULES:
        try:
            module = importlib.import_module(f"mcu_effnet.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mcu_effnet.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def flag_message(exc: UserError) -> str:
    """The error as the command line says it: each parameter it names becomes its flag.

    Only whole words are replaced, never inside a path or a quoted value (``runs/board``).
    """
    message = str(exc)
    for name in exc.options:
        flag = "--" + name.replace("_", "-")
        message = re.sub(rf"(?<![\w\-/.\\'\"]){re.escape(name)}\b(?![/'\"])", flag, message)
    return message


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"mcu-effnet: error: {flag_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mcu-effnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `mcu-effnet inspect m.tflite | head`: the reader left; stop quietly, as Unix tools do.
        # stdout is pointed at devnull so the interpreter's final flush cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def run() -> None:
    sys.exit(main())
