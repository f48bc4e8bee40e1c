"""The options that describe an ``ArchSpec``, shared by ``scale`` and ``qat``.

Values are parsed here rather than by argparse types so a bad value gives one error line
(``UserError``) naming the option, not argparse's usage dump.
"""

from __future__ import annotations

import argparse
import math
import re

from mcu_effnet.errors import UserError


def add_spec_options(parser: argparse.ArgumentParser, board_default: str = "stm32") -> None:
    g = parser.add_argument_group("network (compound scaling)")
    g.add_argument("--phi", metavar="PHI", help="compound coefficient; negative shrinks B0 (required)")
    g.add_argument("--alpha", metavar="A", default="1.2", help="depth base, d = alpha^phi (default 1.2)")
    g.add_argument("--beta", metavar="B", default="1.1", help="width base, w = beta^phi (default 1.1)")
    g.add_argument(
        "--gamma", metavar="G", default="1.15", help="resolution base, r = gamma^phi (default 1.15)"
    )
    g.add_argument("--variant", default="full", help="full (swish, SE) or lite (ReLU6, no SE); default full")
    g.add_argument(
        "--classes",
        metavar="N",
        default=None,
        help="number of classes (default 1000, or the data's count when training)",
    )
    g.add_argument("--resolution", metavar="PX", default=None, help="input resolution, replaces gamma^phi")
    g.add_argument("--width", metavar="W", default=None, help="width multiplier, replaces beta^phi")
    g.add_argument("--depth", metavar="D", default=None, help="depth multiplier, replaces alpha^phi")
    g.add_argument(
        "--board",
        default=board_default,
        help=f"fit resolution and width to this board's SRAM and flash, or 'none' (default {board_default})",
    )
    add_reserve_options(g, ram=True)
    g.add_argument(
        "--max-ms",
        metavar="MS",
        default=None,
        help="latency budget per inference at the board's clock, from instructions per op kind "
        "measured in QEMU (instructions, not cycles: a floor on the real time)",
    )


def add_reserve_options(group, ram: bool) -> None:
    """--reserve-flash (and --reserve-ram): room the application keeps beside the model."""
    from mcu_effnet.boards.costs import DEFAULT_RESERVE_FLASH_BYTES, DEFAULT_RESERVE_RAM_BYTES

    if ram:
        group.add_argument(
            "--reserve-ram",
            metavar="BYTES",
            default=None,
            help=f"SRAM kept free for the application, e.g. 16K (default {DEFAULT_RESERVE_RAM_BYTES // 1024}K)",
        )
    group.add_argument(
        "--reserve-flash",
        metavar="BYTES",
        default=None,
        help=f"flash kept free for the application, e.g. 64K (default {DEFAULT_RESERVE_FLASH_BYTES // 1024}K)",
    )


_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2}


def byte_count(option: str, text: str | None) -> int | None:
    """``65536``, ``64K``, ``64KiB`` or ``1M`` as bytes (K = 1024)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = _UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None:
        raise UserError(f"{option} must be a number of bytes such as 65536, 64K or 1M (got {text!r})")
    return int(float(m.group(1)) * unit)


def _number(option: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UserError(f"{option} must be a number (got {text!r})") from None
    if not math.isfinite(value):
        raise UserError(f"{option} must be a finite number (got {text!r})")
    return value


def _integer(option: str, text: str | None, what: str) -> int | None:
    value = _number(option, text)
    if value is None:
        return None
    if not value.is_integer():
        raise UserError(f"{option} must be an integer {what} (got {text!r})")
    return int(value)


def spec_from_args(args: argparse.Namespace, classes: int | None = None):
    """The ``ArchSpec`` the options describe.

    ``classes`` (the count found in the data, from ``qat``) is used when given; an explicit
    ``--classes`` that disagrees with it is refused.
    """
    from mcu_effnet.arch import make_spec

    phi = _number("--phi", args.phi)
    if phi is None:
        raise UserError("--phi is required (e.g. --phi -1)")
    given = _integer("--classes", args.classes, "of at least 2") if args.classes is not None else None
    if classes is not None and given is not None and given != classes:
        raise UserError(f"--classes {given} disagrees with the {classes} classes found in the data")
    if classes is None:
        classes = given if given is not None else 1000
    board = None if str(args.board).strip().lower() == "none" else args.board
    return make_spec(
        phi,
        alpha=_number("--alpha", args.alpha),
        beta=_number("--beta", args.beta),
        gamma=_number("--gamma", args.gamma),
        variant=args.variant,
        classes=classes,
        resolution=_integer("--resolution", args.resolution, "number of pixels"),
        width=_number("--width", args.width),
        depth=_number("--depth", args.depth),
        board=board,
        reserve_ram=byte_count("--reserve-ram", args.reserve_ram),
        reserve_flash=byte_count("--reserve-flash", args.reserve_flash),
        max_ms=_number("--max-ms", args.max_ms),
    )
