"""``mcu-effnet run DIR [--input X.npy --output Y.npy]``: make + QEMU + compare with the simulator."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mcu_effnet.codegen import io_ports
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
    p.add_argument(
        "--output",
        action="append",
        help="Y.npy: where to write the firmware's outputs (one row per sample); "
        "once per model output, in the model's order",
    )
    p.add_argument("--timeout", type=float, default=600.0, help="seconds QEMU may run (default 600)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="print the layers by cost (a project generated with codegen --profile)",
    )
    p.set_defaults(func=main)


def _load_inputs(path: str, port: io_ports.Port, several: bool, flag: str = "--input") -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{flag} {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{flag} {path}: not a readable .npy file ({exc})") from None
    shape = port.shape
    if (
        x.dtype != np.dtype(port.dtype)
        or x.ndim != len(shape)
        or list(x.shape[1:]) != list(shape[1:])
        or x.shape[0] < 1
    ):
        which = f"input {port.k} ('{port.name}')" if several else "the model"
        raise UserError(
            f"{flag} {path}: has shape {list(x.shape)} {x.dtype}; {which} expects "
            f"[N, {', '.join(map(str, shape[1:]))}] {port.dtype} (a leading batch axis N)"
        )
    return x


def _load_all_inputs(paths: list[str], ports: list[io_ports.Port], flag: str = "--input") -> list[np.ndarray]:
    """One X.npy per model input, each checked against its input, all with the same batch."""
    if len(paths) != len(ports):
        raise UserError(
            f"{flag} given {len(paths)} times; the model has {len(ports)} input"
            f"{'s' if len(ports) != 1 else ''} (one {flag} X.npy each, in order)"
        )
    xs = [_load_inputs(path, port, len(ports) > 1, flag) for path, port in zip(paths, ports, strict=True)]
    if len({x.shape[0] for x in xs}) > 1:
        raise UserError(
            f"{flag}: the files hold {', '.join(str(x.shape[0]) for x in xs)} samples; every input needs as many"
        )
    return xs


def _ports(report: dict) -> tuple[list[io_ports.Port], list[io_ports.Port]]:
    """The model's inputs and outputs as report.json lists them (older reports: one output)."""
    if "inputs" in report and "outputs" in report:
        return io_ports.from_report(report["inputs"]), io_ports.from_report(report["outputs"])
    dtype = report.get("input_dtype", "int8")
    shapes = report.get("input_shapes", [report["input_shape"]])
    rows = [
        {"name": f"input{k}", "shape": s, "dtype": dtype, "bytes": int(np.prod(s)) * np.dtype(dtype).itemsize}
        for k, s in enumerate(shapes)
    ]
    out = {
        "name": "output",
        "shape": report["output_shape"],
        "dtype": report.get("output_dtype", "int8"),
        "bytes": report["output_bytes"],
    }
    return io_ports.from_report(rows), io_ports.from_report([out])


def _label(port: io_ports.Port, several: bool) -> str:
    return f"output {port.k} ('{port.name}')" if several else "output"


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
    from mcu_effnet.codegen.project_plan import simulate_outputs, test_vector_samples

    folder = Path(args.project)
    marker = load_marker(folder)
    board = get_board(marker["board"])
    report_path = folder / "report.json"
    report = json.loads(report_path.read_text())
    if args.profile:
        from mcu_effnet.codegen.profile import require_profiling

        require_profiling(folder, marker, report)
    inputs, outputs = _ports(report)
    several = len(outputs) > 1
    xs = _load_all_inputs(args.input, inputs) if args.input else None
    x = None if xs is None else io_ports.pack(xs, inputs)
    if args.output and x is None:
        raise UserError("--output needs --input (the samples whose outputs to write)")
    if args.output and len(args.output) != len(outputs):
        raise UserError(
            f"--output given {len(args.output)} times; the model has {len(outputs)} output"
            f"{'s' if len(outputs) != 1 else ''} (one --output Y.npy each, in order)"
        )
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
        output_dtype=outputs[0].dtype,
        ports=outputs,
    )
    if result.test_outputs is None:
        detail = result.error or (result.stdout.strip().splitlines() or ["no output"])[-1]
        print(result.stdout, end="")
        print(f"firmware did not complete (exit status {result.status}): {detail}")
        return 1

    for port, y in zip(outputs, result.test_outputs, strict=True):
        print(f"{_label(port, several)}:", " ".join(str(v.item()) for v in y))
    print(f"instructions per inference: {result.instructions}")
    if result.stack_used is not None:
        print(f"stack used: {result.stack_used} of {report.get('stack_bytes')} bytes")
    failures = []
    exact = [True] * len(outputs)  # per output, on the test vector and every --input sample

    # The embedded test vector: checked in the firmware against codegen's simulator output, and
    # here against the simulator again, now.
    if not result.check_ok:
        failures.append(f"test vector: {result.mismatches} of {report['output_bytes']} outputs differ")
    model_file = folder / "model.tflite"
    graph = None
    if model_file.exists():
        from mcu_effnet.graph import load_tflite

        graph = load_tflite(model_file)
        seed = int(marker.get("seed", 0))
        expected = simulate_outputs(graph, test_vector_samples(inputs, seed))
        for port, want, got in zip(outputs, expected, result.test_outputs, strict=True):
            if not np.array_equal(np.asarray(want).reshape(-1), got):
                exact[port.k] = False
                failures.append(
                    f"test vector: firmware {_label(port, several)} differs from the host simulator"
                )
    # Without the model only the firmware's own check against codegen's embedded output is left.
    checked = (
        "bit-exact with the simulator" if graph is not None else "matches the output embedded at codegen"
    )
    print(f"test vector: {checked if not failures else 'MISMATCH'}")

    samples_exact = None
    if x is not None:
        got_rows = 0 if result.file_outputs is None else result.file_outputs[0].shape[0]
        if got_rows != x.shape[0]:
            failures.append(
                f"--input: firmware returned {got_rows} of {x.shape[0]} outputs ({result.error or 'no error line'})"
            )
        else:
            ys = result.file_outputs
            for path, y in zip(args.output or [], ys, strict=False):
                np.save(path, y)
                print(f"wrote {path} ({y.shape[0]} samples)")
            if graph is not None:
                refs = simulate_outputs(graph, xs)
                samples_exact = True
                for port, ref, y in zip(outputs, refs, ys, strict=True):
                    ref = np.asarray(ref).reshape(y.shape)
                    bad = [i for i in range(x.shape[0]) if not np.array_equal(ref[i], y[i])]
                    where = f"{_label(port, several)}: " if several else ""
                    print(
                        f"--input: {where}{x.shape[0] - len(bad)} of {x.shape[0]} samples bit-exact with the simulator"
                    )
                    if bad:
                        exact[port.k] = samples_exact = False
                        failures.append(f"--input: {where}samples {bad[:10]} differ from the simulator")
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
    if graph is not None and "outputs" in report:
        for row, ok in zip(report["outputs"], exact, strict=True):
            row["bit_exact"] = ok and result.check_ok
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
