"""``mcu-effnet scale``: the compound-scaled (and board-fitted) network, stage by stage."""

from __future__ import annotations

import argparse
import json

from mcu_effnet.cli.spec_options import add_spec_options, spec_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "scale",
        help="show the compound-scaled EfficientNet for a phi, fitted to a board",
        description="Compound-scale EfficientNet-B0 (d=alpha^phi, w=beta^phi, r=gamma^phi), then fit "
        "resolution and width to the board's SRAM and flash (--board none skips fitting).",
    )
    add_spec_options(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mcu_effnet.arch import make_spec
    from mcu_effnet.arch.scale_report import format_scale_table, scale_report

    spec = spec_from_args(args)
    if args.json:
        print(json.dumps(scale_report(spec), indent=2))
        return 0
    unfitted = None
    if spec.fit is not None:
        unfitted = make_spec(
            spec.phi,
            alpha=spec.alpha,
            beta=spec.beta,
            gamma=spec.gamma,
            variant=spec.variant,
            classes=spec.classes,
            resolution=spec.resolution if "resolution" in spec.overrides else None,
            width=spec.width_mult if "width" in spec.overrides else None,
            depth=spec.depth_mult if "depth" in spec.overrides else None,
            board=None,
        )
    print(format_scale_table(spec, unfitted))
    return 0
