"""``mcu-effnet codegen [MODEL.tflite|RUN_DIR] --board BOARD --out DIR [--runtime native|tflm]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mcu_effnet.cli.spec_options import add_reserve_options, byte_count
from mcu_effnet.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "codegen",
        help="generate a firmware project (C engine or TFLite Micro) for a board",
        description=(
            "Generates a firmware project for BOARD from an int8 .tflite (or a run folder's "
            "model.tflite; with no model, the newest run under runs/): startup, linker script, "
            "the model, a test vector checked against the host simulator, Makefile and README. "
            "Builds it when arm-none-eabi-gcc is installed and writes report.json, report.html and "
            "memory.png."
        ),
    )
    p.add_argument("model", nargs="?", help="MODEL.tflite or RUN_DIR (default: newest run under runs/)")
    p.add_argument("--board", default="stm32", help="board name or alias (mcu-effnet boards); default stm32")
    p.add_argument("--out", help="project folder (default firmware/<BOARD as given>, e.g. firmware/stm32)")
    p.add_argument("--runtime", default="native", choices=("native", "tflm"), help="default native")
    p.add_argument("--force", action="store_true", help="replace an --out folder not made by mcu-effnet")
    p.add_argument("--stack", type=int, default=None, metavar="BYTES", help="stack size (default 8192)")
    p.add_argument("--seed", type=int, default=0, help="seed of the embedded test vector's input")
    p.add_argument(
        "--tflm-dir",
        help="TensorFlow Lite Micro tree for --runtime tflm (default: TFLM_DIR, then shared/tflm beside the repository)",
    )
    p.add_argument(
        "--kernels",
        default="reference",
        choices=("reference", "cmsis-nn"),
        help="TFLite Micro's kernels for --runtime tflm (default reference)",
    )
    p.add_argument("--no-build", action="store_true", help="write the project without building it")
    add_reserve_options(p, ram=False)  # DSP weights are widened only within what it leaves
    p.add_argument(
        "--max-recompute",
        type=float,
        default=None,
        metavar="PCT",
        help="the native engine may run its first layers tile by tile (MCUNetV2) where that lowers the "
        "arena, computing again at most PCT %% of the model's MACs (default 10; 0: no recomputation)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="profiling build: the firmware reads its counter around every op; mcu-effnet run then "
        "writes per-layer instructions into report.json and report.html (--profile prints them)",
    )
    p.set_defaults(func=main)


def resolve_model(arg: str | None, runs_dir: str | Path = "runs") -> Path:
    """MODEL.tflite, RUN_DIR/model.tflite, or the newest runs/*/model.tflite."""
    if arg is None:
        runs = Path(runs_dir)
        candidates = (
            sorted(runs.glob("*/model.tflite"), key=lambda p: p.stat().st_mtime) if runs.is_dir() else []
        )
        if not candidates:
            raise UserError(
                f"no model given and no run under {runs}/ has a model.tflite; "
                "pass MODEL.tflite or train one with: mcu-effnet qat --phi -1"
            )
        return candidates[-1]
    path = Path(arg)
    if path.is_dir():
        model = path / "model.tflite"
        if not model.is_file():
            raise UserError(
                f"{path}: a folder without model.tflite (expected a run folder or a .tflite file)"
            )
        return model
    if not path.exists():
        raise UserError(f"{path}: no such file")
    return path


def main(args: argparse.Namespace) -> int:
    from mcu_effnet.boards import get_board
    from mcu_effnet.codegen.project import DEFAULT_STACK_BYTES, write_project
    from mcu_effnet.codegen.tile_plan import check_max_recompute
    from mcu_effnet.graph import load_tflite
    from mcu_effnet.graph.tiling import DEFAULT_MAX_RECOMPUTE

    board = get_board(args.board)
    model_path = resolve_model(args.model)
    # The folder is named as the board was asked for: --board stm32 -> firmware/stm32.
    out = Path(args.out) if args.out else Path("firmware") / str(args.board).strip().lower()
    stack = args.stack if args.stack is not None else DEFAULT_STACK_BYTES
    if stack < 1024 or stack % 8:
        raise UserError(f"--stack {stack}: needs a multiple of 8 bytes, at least 1024")
    reserve_flash = byte_count("--reserve-flash", args.reserve_flash)
    if reserve_flash is not None and reserve_flash >= board.flash[0].size:
        raise UserError(
            f"--reserve-flash {reserve_flash} bytes leaves nothing of {board.name}'s flash ({board.flash[0].size} bytes)"
        )
    max_recompute = DEFAULT_MAX_RECOMPUTE if args.max_recompute is None else args.max_recompute
    check_max_recompute(max_recompute)
    data = model_path.read_bytes()
    graph = load_tflite(data)
    graph.source = str(model_path)

    def progress(msg: str) -> None:
        print(f"mcu-effnet: {msg}", file=sys.stderr)

    project = write_project(
        graph,
        board,
        out,
        runtime=args.runtime,
        force=args.force,
        model_bytes=data,
        model_source=str(model_path),
        stack_bytes=stack,
        seed=args.seed,
        build=not args.no_build,
        tflm_dir=args.tflm_dir,
        kernels=args.kernels,
        progress=progress,
        profile=args.profile,
        max_recompute=max_recompute,
        **({} if reserve_flash is None else {"reserve_flash": reserve_flash}),
    )
    r = project.report
    kib = lambda n: f"{n / 1024:.1f} KB" if n is not None else "-"  # noqa: E731
    print(f"wrote {out}/ for {board.name} ({r['runtime']} runtime, {board.emulator.machine} under QEMU)")
    print(
        f"  arena {kib(r['arena_bytes'])}, model RAM {kib(r['model_ram_bytes'])}, weights {kib(r['weights_bytes'])}"
    )
    print(
        f"  SRAM needed {kib(r['sram_needed_bytes'])} of {kib(r['board_ram_bytes'])}; "
        f"linked flash {kib(r['flash_bytes'])} of {kib(r['board_flash_bytes'])}, RAM {kib(r['ram_bytes'])}"
    )
    plan = r.get("memory_plan")
    if plan:
        print(f"  {plan_summary(plan)}")
        for a in plan.get("absorbed", []):
            print(f"  {a['note']}")
        for op, mode in (plan.get("modes") or {}).items():  # the chunked modes the planner chose
            print(f"    op {op}: {mode}")
        if plan.get("tiling"):
            print(f"  {tiling_summary(plan)}")
    if args.profile:
        print("  profiling build: the counter is read around every op")
    print(
        f"  next: mcu-effnet run {out}{' --profile' if args.profile else ''}    (or: cd {out} && make && make run)"
    )
    return 0


def tiling_summary(plan: dict) -> str:
    """One line about the tiled segment of report.json's memory plan."""
    t = plan["tiling"]
    return (
        f"tiled: ops {t['ops'][0]}-{t['ops'][-1]} in {t['tiles']} bands, peak {t['peak_before']} -> "
        f"{plan['peak_bytes']} bytes, arena {t['arena_before']} -> {plan['arena_bytes']}, "
        f"{t['recomputed_macs']} MACs recomputed ({t['recomputed_percent']:.1f} % of {t['model_macs']}, "
        f"--max-recompute {t['max_recompute']:g})"
    )


def plan_summary(plan: dict) -> str:
    """One line about the memory plan of report.json (the full table is in model/model.c)."""
    line = f"memory plan: {len(plan['order'])} ops, order {plan['order_method']}"
    if plan.get("reordered"):
        line += (
            f" (peak {plan['stored_order_peak_bytes']} -> {plan['peak_bytes']} bytes,"
            f" arena {plan['stored_order_arena_bytes']} -> {plan['arena_bytes']})"
        )
    line += f"; {len(plan['in_place_ops'])} op(s) in place, {len(plan['aliased_ops'])} reshape(s) aliased"
    kinds = [f["kind"] for f in plan.get("fused") or []]
    silu = sum(k.startswith("SiLU") for k in kinds)
    if silu:
        line += f", {silu} SiLU(s) fused"
    if len(kinds) > silu:
        line += f", {len(kinds) - silu} convolution(s) fused with the next op"
    if plan.get("absorbed"):
        line += f", {len(plan['absorbed'])} TRANSPOSE(s) absorbed"
    return line
