"""``mcu-effnet run DIR [--input X.npy --output Y.npy]``: make + QEMU + compare with the simulator."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mcu_effnet.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="build a firmware project, run it in QEMU, compare with the host simulator",
        description=(
            "Builds the project's emulator image with make, runs it in QEMU with -icount shift=0 "
            "and semihosting, prints its output and instructions per inference, and compares the "
            "embedded test vector (and every sample of --input) with the host int8 simulator. "
            "Exits 1 on any difference."
        ),
    )
    p.add_argument("project", metavar="DIR", help="a folder made by mcu-effnet codegen")
    p.add_argument(
        "--input",
        action="append",
        help="X.npy: int8 inputs (int16 for a 16x8 model) with a leading batch axis; "
        "once per model input, in the model's order",
    )
    p.add_argument("--output", help="Y.npy: where to write the firmware's outputs (one row per sample)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds QEMU may run (default 600)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="print the layers by cost (a project generated with codegen --profile)",
    )
    p.set_defaults(func=main)


def _load_inputs(path: str, shape: list[int], dtype: str = "int8") -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"--input {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"--input {path}: not a readable .npy file ({exc})") from None
    if (
        x.dtype != np.dtype(dtype)
        or x.ndim != len(shape)
        or list(x.shape[1:]) != list(shape[1:])
        or x.shape[0] < 1
    ):
        raise UserError(
            f"--input {path}: has shape {list(x.shape)} {x.dtype}; the model expects "
            f"[N, {', '.join(map(str, shape[1:]))}] {dtype} (a leading batch axis N)"
        )
    return x


def _load_all_inputs(paths: list[str], shapes: list[list[int]], dtype: str) -> list[np.ndarray]:
    """One X.npy per model input, each checked against its input, all with the same batch."""
    if len(paths) != len(shapes):
        raise UserError(
            f"--input given {len(paths)} times; the model has {len(shapes)} input"
            f"{'s' if len(shapes) != 1 else ''} (one --input X.npy each, in order)"
        )
    xs = [_load_inputs(path, shape, dtype) for path, shape in zip(paths, shapes, strict=True)]
    if len({x.shape[0] for x in xs}) > 1:
        raise UserError(
            f"--input: the files hold {', '.join(str(x.shape[0]) for x in xs)} samples; every input needs as many"
        )
    return xs


def _check_tflm_tree(folder: Path, board, marker: dict) -> None:
    """The tree the Makefile will use (its TFLM_DIR, the environment's if set) can serve the
    project: the same checks as codegen, as the tree may have changed since."""
    import subprocess

    from mcu_effnet.codegen import tflm
    from mcu_effnet.graph import load_tflite

    proc = subprocess.run(
        ["make", "-s", "--no-print-directory", "-C", str(folder), "print-tflm-dir"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    tree = proc.stdout.strip() if proc.returncode == 0 else ""
    model = folder / "model.tflite"
    found = tflm.find_tflm_dir(tree)[0] if tree else None
    if found is None or not model.exists():
        return  # no tree: make says so in one line; no model: nothing to check the resolver with
    ops = list(dict.fromkeys(op.kind for op in load_tflite(model).ops))
    variant = tflm.TFLM_KERNELS.get(marker.get("kernels", "reference"), "ref")
    tflm.check_tree(found, board, variant, ops)


def _add_profile(report: dict, result, show: bool, title: str) -> None:
    """A profiling build's per-layer counts into report.json; printed by cost with ``--profile``."""
    from mcu_effnet.codegen import profile

    if result.instructions is None:
        return
    prof = profile.from_run(
        result.lines, report["runtime"], profile.execution_layers(report), result.instructions
    )
    profile.merge_into_report(report, prof)
    if show:
        print(profile.format_by_cost(prof, title))
    else:
        print("per-layer profile: in report.json and report.html (--profile prints it)")


def main(args: argparse.Namespace) -> int:
    from mcu_effnet.boards import get_board
    from mcu_effnet.codegen import toolchain
    from mcu_effnet.codegen.project import load_marker
    from mcu_effnet.codegen.project_plan import pack_inputs, test_vector_input, test_vector_inputs

    folder = Path(args.project)
    marker = load_marker(folder)
    board = get_board(marker["board"])
    report_path = folder / "report.json"
    report = json.loads(report_path.read_text())
    out_shape = report["output_shape"]
    if args.profile:
        from mcu_effnet.codegen.profile import require_profiling

        require_profiling(folder, marker, report)
    in_dtype, out_dtype = report.get("input_dtype", "int8"), report.get("output_dtype", "int8")
    shapes = report.get("input_shapes", [report["input_shape"]])
    xs = _load_all_inputs(args.input, shapes, in_dtype) if args.input else None
    x = None if xs is None else pack_inputs(xs)
    if args.output and x is None:
        raise UserError("--output needs --input (the samples whose outputs to write)")
    toolchain.require_tools(need_qemu=True, need_cxx=marker.get("runtime") == "tflm")

    # A TFLite Micro project may first build its library (cores without a prebuilt one).
    tflm = marker.get("runtime") == "tflm"
    if tflm:
        _check_tflm_tree(folder, board, marker)
    elf = toolchain.make(
        folder, "qemu", timeout=toolchain.LIBRARY_BUILD_TIMEOUT if tflm else toolchain.DEFAULT_TIMEOUT
    )
    sizes = toolchain.elf_size(elf)
    if not board.flash_tool:
        emulated = board.emulator.machine
    elif board.emulator.machine.startswith("mps2"):
        emulated = f"{board.emulator.machine} (standing in for {board.name}, its memory sizes enforced by the linker)"
    else:
        emulated = f"{board.emulator.machine} (QEMU's own model of the {board.name}'s chip)"
    print(f"running {folder} on QEMU {emulated}")
    result = toolchain.run_qemu(
        board,
        elf,
        inputs=x,
        output_bytes=report["output_bytes"],
        timeout=args.timeout,
        output_dtype=out_dtype,
    )
    if result.output is None:
        detail = result.error or (result.stdout.strip().splitlines() or ["no output"])[-1]
        print(result.stdout, end="")
        print(f"firmware did not complete (exit status {result.status}): {detail}")
        return 1

    print("output:", " ".join(str(v.item()) for v in result.output))
    print(f"instructions per inference: {result.instructions}")
    if result.stack_used is not None:
        print(f"stack used: {result.stack_used} of {report.get('stack_bytes')} bytes")
    failures = []

    # The embedded test vector: checked in the firmware against codegen's simulator output, and
    # here against the simulator again, now.
    if not result.check_ok:
        failures.append(f"test vector: {result.mismatches} of {report['output_bytes']} outputs differ")
    model_file = folder / "model.tflite"
    graph = None
    if model_file.exists():
        from mcu_effnet.graph import load_tflite
        from mcu_effnet.sim import run as simulate

        graph = load_tflite(model_file)
        seed = int(marker.get("seed", 0))
        tv = (
            test_vector_input(tuple(shapes[0]), seed, dtype=in_dtype)
            if len(shapes) == 1
            else test_vector_inputs([tuple(s) for s in shapes], seed, dtype=in_dtype)
        )
        expected = np.asarray(simulate(graph, tv)).reshape(-1)
        if not np.array_equal(expected, result.output):
            failures.append("test vector: firmware output differs from the host simulator")
    # Without the model only the firmware's own check against codegen's embedded output is left.
    checked = (
        "bit-exact with the simulator" if graph is not None else "matches the output embedded at codegen"
    )
    print(f"test vector: {checked if not failures else 'MISMATCH'}")

    samples_exact = None
    if x is not None:
        if result.outputs is None or result.outputs.shape[0] != x.shape[0]:
            got = 0 if result.outputs is None else result.outputs.shape[0]
            failures.append(
                f"--input: firmware returned {got} of {x.shape[0]} outputs ({result.error or 'no error line'})"
            )
        else:
            y = result.outputs.reshape(x.shape[0], *out_shape[1:])
            if args.output:
                np.save(args.output, y)
                print(f"wrote {args.output} ({y.shape[0]} samples)")
            if graph is not None:
                from mcu_effnet.sim import run as simulate

                ref = np.asarray(simulate(graph, xs[0] if len(xs) == 1 else xs)).reshape(y.shape)
                bad = [i for i in range(x.shape[0]) if not np.array_equal(ref[i], y[i])]
                samples_exact = not bad
                print(
                    f"--input: {x.shape[0] - len(bad)} of {x.shape[0]} samples bit-exact with the simulator"
                )
                if bad:
                    failures.append(f"--input: samples {bad[:10]} differ from the simulator")
            else:
                print(f"--input: {x.shape[0]} samples run, not compared (no model.tflite in the folder)")
    if result.status != 0 and not failures:
        failures.append(f"firmware exited with status {result.status}")

    report.update(
        instructions_per_inference=result.instructions,
        qemu_machine=board.emulator.machine,
        qemu_flash_bytes=sizes["flash_bytes"],
        qemu_ram_bytes=sizes["ram_bytes"],
        bit_exact=not failures,
        stack_used_bytes=result.stack_used,
    )
    if samples_exact is not None:
        report["input_samples_bit_exact"] = samples_exact
    if report.get("flash_bytes") is None and not board.flash_tool:
        report.update(
            flash_bytes=sizes["flash_bytes"], ram_bytes=sizes["ram_bytes"], elf=str(elf.relative_to(folder))
        )
    for key in ("TFLM",):
        if result.lines.get(key):
            report["tflm_arena_used_bytes"] = int(result.lines[key][0].get("arena_used") or 0)
    if marker.get("profile"):
        _add_profile(report, result, show=args.profile, title=f"{report['runtime']}, {board.name}")
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    from mcu_effnet.codegen import report_html

    report_html.write(folder / "report.html", report, folder)
    for f in failures:
        print(f"FAIL {f}")
    if failures:
        print("bit-exact: NO")
    elif graph is None:
        print("bit-exact: yes, on the embedded test vector only (no model.tflite in the folder)")
    else:
        print("bit-exact: yes")
    return 0 if not failures else 1
