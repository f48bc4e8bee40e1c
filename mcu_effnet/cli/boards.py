"""``mcu-effnet boards``: the board catalog."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("boards", help="list the supported boards", description="The board catalog.")
    p.add_argument("--json", action="store_true", help="print the catalog as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mcu_effnet.boards.catalog_report import catalog_dicts, format_catalog

    print(json.dumps(catalog_dicts(), indent=2) if args.json else format_catalog())
    return 0
