"""``mcu-effnet compare MODEL --board B``: native vs TFLite Micro reference vs TFLite Micro + CMSIS-NN."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mcu_effnet.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="native engine vs TFLite Micro (reference, CMSIS-NN) in QEMU: RAM, flash, speed, exactness",
        description=(
            "Builds three firmwares for the same model and board (the native engine, TFLite Micro "
            "with reference kernels, TFLite Micro with CMSIS-NN), runs each in QEMU on the same "
            "inputs and prints one table: model RAM, flash (text + data), instructions per "
            "inference, bit-exact with the host simulator. Writes compare.json, compare.md and "
            "compare.png beside the three project folders. A firmware whose model does not fit the "
            "board is reported as such. Exits 1 when a firmware that ran is not bit-exact."
        ),
    )
    p.add_argument("model", help="MODEL.tflite or RUN_DIR")
    p.add_argument("--board", default="stm32", help="board name or alias (mcu-effnet boards); default stm32")
    p.add_argument("--out", help="output folder (default compare/<MODEL>-<BOARD as given>)")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--inputs",
        action="append",
        help="X.npy: int8 inputs (int16 for a 16x8 model) with a leading batch axis; "
        "once per model input, in the model's order",
    )
    source.add_argument(
        "--samples",
        type=int,
        default=4,
        help="seeded random inputs (int8, int16 for a 16x8 model) when no --inputs (default 4)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument(
        "--tflm-dir",
        help="TensorFlow Lite Micro tree (default: TFLM_DIR, then shared/tflm beside the repository)",
    )
    p.add_argument("--force", action="store_true", help="replace an --out folder not made by mcu-effnet")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds each QEMU run may take")
    p.add_argument("--json", action="store_true", help="print compare.json instead of the table")
    p.add_argument(
        "--profile",
        action="store_true",
        help="profiling builds: adds instructions per op type for every runtime side by side",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from mcu_effnet.boards import get_board
    from mcu_effnet.cli.codegen import resolve_model
    from mcu_effnet.cli.run import _load_all_inputs
    from mcu_effnet.codegen import io_ports
    from mcu_effnet.codegen.compare import compare, format_table, op_types_table
    from mcu_effnet.graph import load_tflite

    board = get_board(args.board)
    model_path = resolve_model(args.model)
    if args.samples < 1:
        raise UserError(f"--samples {args.samples}: needs at least 1")
    data = model_path.read_bytes()
    graph = load_tflite(data)
    graph.source = str(model_path)
    inputs, _ = io_ports.check_ports(graph, str(model_path))
    x = _load_all_inputs(args.inputs, inputs, flag="--inputs") if args.inputs else None
    out = (
        Path(args.out)
        if args.out
        else Path("compare") / f"{model_path.stem}-{str(args.board).strip().lower()}"
    )

    def progress(msg: str) -> None:
        print(f"mcu-effnet: {msg}", file=sys.stderr, flush=True)

    result = compare(
        graph,
        data,
        board,
        out,
        inputs=x,
        samples=args.samples,
        seed=args.seed,
        tflm_dir=args.tflm_dir,
        force=args.force,
        model_source=str(model_path),
        timeout=args.timeout,
        progress=progress,
        profile=args.profile,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['model']} on {board.name} (QEMU {board.emulator.machine}), "
            f"{result['samples']} input sample(s) + the embedded test vector"
        )
        print(format_table(result))
        r = result["ratios"]
        if r:
            fmt = lambda v: "-" if v is None else f"{v:.2f}×"  # noqa: E731
            print(
                f"native vs TFLM + CMSIS-NN: instructions {fmt(r['instructions_native_vs_cmsis_nn'])}, "
                f"model RAM vs its arena used {fmt(r['model_ram_native_vs_tflm_arena_used'])}, "
                f"flash {fmt(r['flash_native_vs_cmsis_nn'])}"
            )
        if args.profile:
            print(op_types_table(result), end="")
            print("(profiling builds: each instruction count above includes its counter reads)")
        print(f"wrote {out}/compare.json, compare.md, compare.png and the three projects")
    ran = [row for row in result["rows"] if row["flash_bytes"] is not None]
    return 0 if all(row["bit_exact"] for row in ran) else 1
