"""One model, three firmwares: the native engine, TFLite Micro's reference kernels and TFLite Micro
with CMSIS-NN, built for the same board and run in QEMU on the same inputs.

``compare(graph, model_bytes, board, out_dir)`` writes ``native/``, ``tflm-ref/`` and
``tflm-cmsis-nn/`` project folders (``write_project``; each gets the firmware's ``outputs.npy``), builds each one's emulator image, runs it
(``toolchain.run_qemu``, ``-icount shift=0``) and checks every output against the host simulator.
Each row has:

- model RAM: native: the engine's arena and any buffer outside it; TFLite Micro: the arena bytes
  the interpreter used on the target (``arena_used_bytes()``) plus the interpreter and op
  resolver objects (static, sized from the ELF's symbols). The arena reserved is kept apart.
- flash: text + data of the linked emulator image (code, weights, the .tflite for TFLite Micro).
- instructions per inference (QEMU's instruction count, one inference of the test vector).
- bit-exact: the embedded test vector and every input sample equal the simulator's output.

A firmware whose model does not fit the board gets a row that says so (TFLite Micro's arena is
often the one that does not); ``compare`` fails only for firmwares that ran and differ.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcu_effnet.boards import Board, get_board
from mcu_effnet.codegen import io_ports
from mcu_effnet.codegen.project_plan import simulate_outputs, test_vector_samples
from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph

MARKER = ".mcu-effnet-compare"
RESULT_FILES = ("compare.json", "compare.md", "compare.png")
KiB = 1024


@dataclass(frozen=True)
class Firmware:
    """One of the compared firmwares: its folder name, label, runtime and TFLite Micro kernels."""

    name: str
    label: str
    runtime: str
    kernels: str


FIRMWARES = (
    Firmware("native", "native", "native", "reference"),
    Firmware("tflm-ref", "TFLM reference", "tflm", "reference"),
    Firmware("tflm-cmsis-nn", "TFLM + CMSIS-NN", "tflm", "cmsis-nn"),
)
# Static objects of the TFLite Micro firmware the model needs beside the arena (main.cc.j2).
_TFLM_OBJECTS = ("interpreter_storage", "resolver_storage")


@dataclass
class Row:
    """One firmware's figures; None where it could not be built or run (``error`` says why)."""

    firmware: str
    label: str
    model_ram_bytes: int | None
    arena_bytes: int | None  # reserved (native: the planned arena; TFLite Micro: recorded + margin)
    arena_used_bytes: int | None  # TFLite Micro's arena_used_bytes() on the target
    flash_bytes: int | None
    ram_bytes: int | None  # data + bss of the whole image (stack, I/O buffers, console included)
    instructions_per_inference: int | None
    bit_exact: bool
    samples: int
    samples_bit_exact: int
    seconds: float
    error: str | None = None
    # compare --profile: instructions per op type (codegen/profile.py), the outside-ops row last
    op_types: dict[str, int] | None = None


def _object_bytes(elf: Path, names: tuple[str, ...]) -> int:
    """Sizes of the named static objects in the ELF (their mangled names contain ``names``)."""
    proc = subprocess.run(
        ["arm-none-eabi-nm", "-S", "-C", str(elf)], capture_output=True, text=True, timeout=60
    )
    total = 0
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and any(n in " ".join(parts[3:]) for n in names):
            total += int(parts[1], 16)
    return total


def _check_out(out: Path, force: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if (out / MARKER).exists() or force or not any(out.iterdir()):
        return
    raise UserError(
        f"{out}: folder exists and was not made by mcu-effnet compare (no {MARKER}); "
        "pass force to replace it",
        options=("force",),
    )


def _check_tflm(graph: Graph, board: Board, tflm_dir: str | os.PathLike | None, kernels: str) -> None:
    from mcu_effnet.codegen import tflm

    found = tflm.require_tree(*tflm.find_tflm_dir(tflm_dir))
    ops = tflm.model_ops(graph, "compare needs a model TFLite Micro can run")
    tflm.check_index_types(graph, graph.source or "model")
    tflm.check_tree(found, board, tflm.TFLM_KERNELS[kernels], ops)


def measure(
    graph: Graph,
    model_bytes: bytes,
    board: Board,
    fw: Firmware,
    folder: Path,
    inputs: np.ndarray,
    expected: list[np.ndarray],
    *,
    model_source: str,
    tflm_dir: str | os.PathLike | None = None,
    timeout: float = 600.0,
    profile: bool = False,
) -> Row:
    """Writes, builds and runs one firmware; compares its outputs with ``expected`` (one batch
    per model output). ``inputs``: one row of packed bytes per sample (``io_ports.pack``)."""
    from mcu_effnet.codegen import toolchain
    from mcu_effnet.codegen.project import write_project

    t0 = time.perf_counter()
    project = write_project(
        graph,
        board,
        folder,
        runtime=fw.runtime,
        force=True,
        model_bytes=model_bytes,
        model_source=model_source,
        build=False,
        tflm_dir=tflm_dir,
        kernels=fw.kernels,
        profile=profile,
    )
    # TFLite Micro may first build its library into the cache (cores without a prebuilt one).
    timeout = toolchain.LIBRARY_BUILD_TIMEOUT if fw.runtime == "tflm" else toolchain.DEFAULT_TIMEOUT
    elf = toolchain.make(folder, "qemu", timeout=timeout, label=str(folder))
    sizes = toolchain.elf_size(elf)
    n = inputs.shape[0]
    report = project.report
    outputs = io_ports.from_report(report["outputs"])
    result = toolchain.run_qemu(
        board,
        elf,
        inputs=inputs.reshape(n, -1),
        output_bytes=report["output_bytes"],
        timeout=timeout,
        output_dtype=outputs[0].dtype,
        ports=outputs,
    )
    got = result.file_outputs
    exact_rows = 0
    if got is not None and got[0].shape[0] == n:
        exact_rows = sum(
            all(
                np.array_equal(g[i], np.asarray(e)[i].reshape(g[i].shape))
                for g, e in zip(got, expected, strict=True)
            )
            for i in range(n)
        )
        # The firmware's outputs, shaped as the model's, for anyone to check again.
        for k, g in enumerate(got):
            np.save(folder / ("outputs.npy" if len(got) == 1 else f"outputs{k}.npy"), g)
    exact = bool(result.status == 0 and result.check_ok and exact_rows == n)
    used = None
    if result.lines.get("TFLM"):
        used = int(result.lines["TFLM"][0].get("arena_used") or 0)
    if fw.runtime == "native":
        model_ram = int(report["model_ram_bytes"])
    else:
        model_ram = (used if used is not None else int(report["arena_bytes"])) + _object_bytes(
            elf, _TFLM_OBJECTS
        )
    row = Row(
        firmware=fw.name,
        label=fw.label,
        model_ram_bytes=model_ram,
        arena_bytes=int(report["arena_bytes"]),
        arena_used_bytes=used,
        flash_bytes=sizes["flash_bytes"],
        ram_bytes=sizes["ram_bytes"],
        instructions_per_inference=result.instructions,
        bit_exact=exact,
        samples=n,
        samples_bit_exact=int(exact_rows),
        seconds=round(time.perf_counter() - t0, 2),
        error=result.error if result.status != 0 else None,
    )
    # The project's report keeps what was measured, as `mcu-effnet run` would.
    report.update(
        instructions_per_inference=result.instructions,
        qemu_flash_bytes=sizes["flash_bytes"],
        qemu_ram_bytes=sizes["ram_bytes"],
        bit_exact=exact,
    )
    if used is not None:
        report["tflm_arena_used_bytes"] = used
    if profile and result.instructions is not None:
        row.op_types = _profile(report, result)
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    from mcu_effnet.codegen import report_html

    report_html.write(folder / "report.html", report, folder)
    return row


def _profile(report: dict[str, Any], result: Any) -> dict[str, int]:
    """A profiling build's per-layer counts into the project's report; its per-op-type totals."""
    from mcu_effnet.codegen import profile

    prof = profile.from_run(
        result.lines, report["runtime"], profile.execution_layers(report), result.instructions
    )
    profile.merge_into_report(report, prof)
    return prof.op_type_totals()


def compare(
    graph: Graph,
    model_bytes: bytes,
    board: Board | str,
    out_dir: str | os.PathLike,
    *,
    inputs: np.ndarray | list[np.ndarray] | None = None,
    samples: int = 4,
    seed: int = 0,
    tflm_dir: str | os.PathLike | None = None,
    force: bool = False,
    model_source: str | None = None,
    timeout: float = 600.0,
    progress: Callable[[str], None] | None = None,
    profile: bool = False,
) -> dict[str, Any]:
    """Builds and runs the three firmwares; writes compare.json and compare.png into ``out_dir``.

    The TFLite Micro tree is checked before anything is built, so a bad tree costs no native build.
    ``profile``: profiling builds (``codegen --profile``); the result gets per-op-type
    instructions of every runtime (``op_types``), and each count includes its counter reads.
    """
    from mcu_effnet.codegen import toolchain

    board = get_board(board) if isinstance(board, str) else board
    label = model_source or graph.source or "model"
    in_ports, _ = io_ports.check_ports(graph, label)
    out = Path(out_dir)
    _check_out(out, force)
    toolchain.require_tools(need_qemu=True, need_cxx=True)
    say = progress or (lambda _msg: None)
    for fw in FIRMWARES:
        if fw.runtime == "tflm":
            _check_tflm(graph, board, tflm_dir, fw.kernels)
    if inputs is None:
        xs = test_vector_samples(in_ports, seed, samples)
    else:
        xs = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
    expected = simulate_outputs(graph, xs)
    x = io_ports.pack(xs, in_ports)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"tool": "mcu-effnet", "verb": "compare"}) + "\n")
    for name in RESULT_FILES:  # a previous run's results must not sit beside new projects
        (out / name).unlink(missing_ok=True)
    try:
        rows = _measure_all(
            graph, model_bytes, board, out, x, expected, label, tflm_dir, timeout, say, profile=profile
        )
    except BaseException:
        if created:  # no half-written output folder
            shutil.rmtree(out, ignore_errors=True)
        raise
    result = {
        "model": Path(label).stem,
        "model_source": str(label),
        "board": board.name,
        "machine": board.emulator.machine,
        "samples": int(x.shape[0]),
        "rows": [asdict(r) for r in rows],
        "ratios": ratios(rows),
    }
    if profile:
        result["op_types"] = {r.label: r.op_types for r in rows if r.op_types is not None}
    (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    write_png(out / "compare.png", result)
    (out / "compare.md").write_text(format_table(result) + "\n" + op_types_table(result))
    return result


def _measure_all(
    graph: Graph,
    model_bytes: bytes,
    board: Board,
    out: Path,
    x: np.ndarray,
    expected: list[np.ndarray],
    label: str,
    tflm_dir: str | os.PathLike | None,
    timeout: float,
    say: Callable[[str], None],
    profile: bool = False,
) -> list[Row]:
    from mcu_effnet.codegen.project_plan import DoesNotFit

    rows = []
    for fw in FIRMWARES:
        say(f"{fw.label}: building and running on {board.emulator.machine}")
        t0 = time.perf_counter()
        try:
            row = measure(
                graph,
                model_bytes,
                board,
                fw,
                out / fw.name,
                x,
                expected,
                model_source=label,
                tflm_dir=tflm_dir,
                timeout=timeout,
                profile=profile,
            )
        except DoesNotFit as exc:
            # A runtime whose model does not fit the board is a result, not the end of the
            # comparison: its row says so (other errors stop with their one line).
            say(f"{fw.label}: does not fit: {exc}")
            row = Row(
                fw.name, fw.label, None, None, None, None, None, None, False, int(x.shape[0]), 0,
                round(time.perf_counter() - t0, 2), error=f"does not fit: {exc}",
            )  # fmt: skip
        rows.append(row)
    return rows


def ratios(rows: list[Row]) -> dict[str, float | None]:
    """Native against TFLite Micro + CMSIS-NN (the ratios the README reports): < 1 means native is smaller."""
    by = {r.firmware: r for r in rows}
    native, nn = by.get("native"), by.get("tflm-cmsis-nn")
    if native is None or nn is None:
        return {}

    def ratio(a: int | None, b: int | None) -> float | None:
        return round(a / b, 3) if a and b else None

    return {
        "instructions_native_vs_cmsis_nn": ratio(
            native.instructions_per_inference, nn.instructions_per_inference
        ),
        "model_ram_native_vs_tflm_arena_used": ratio(native.model_ram_bytes, nn.arena_used_bytes),
        "flash_native_vs_cmsis_nn": ratio(native.flash_bytes, nn.flash_bytes),
    }


def _kb(n: int | None) -> str:
    return "-" if n is None else f"{n / KiB:.1f} KB"


def format_table(result: dict[str, Any]) -> str:
    """A markdown table, one line per firmware."""
    head = (
        "| runtime | model RAM | arena used (TFLM) | flash (text+data) | instructions / inference "
        "| bit-exact |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        instr = r["instructions_per_inference"]
        exact = "yes" if r["bit_exact"] else f"NO ({r['samples_bit_exact']}/{r['samples']})"
        if r.get("error") and r["flash_bytes"] is None:
            exact = f"not run, {r['error']}"
        lines.append(
            f"| {r['label']} | {_kb(r['model_ram_bytes'])} | {_kb(r['arena_used_bytes'])} "
            f"| {_kb(r['flash_bytes'])} | {'-' if instr is None else f'{instr:,}'} | {exact} |"
        )
    return "\n".join(lines)


def op_types_table(result: dict[str, Any]) -> str:
    """compare --profile: instructions per op type, one column per runtime (markdown); "" without."""
    from mcu_effnet.codegen.profile import format_op_types

    columns = result.get("op_types")
    if not columns:
        return ""
    return (
        "\nInstructions per op type (profiling builds, counter reads taken off):\n\n"
        + format_op_types(columns)
        + "\n"
    )


def write_png(path: Path, result: dict[str, Any]) -> None:
    """Three bar panels: model RAM, flash, instructions per inference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    labels = [r["label"] for r in rows]
    colors = ["#4477aa", "#ee6677", "#228833"][: len(rows)]
    panels = (
        ("model RAM (KB)", [(r["model_ram_bytes"] or 0) / KiB for r in rows]),
        ("flash (KB)", [(r["flash_bytes"] or 0) / KiB for r in rows]),
        ("instructions / inference (M)", [(r["instructions_per_inference"] or 0) / 1e6 for r in rows]),
    )
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), dpi=100)
    for ax, (title, values) in zip(axes, panels, strict=True):
        ax.bar(range(len(values)), values, color=colors)
        ax.set_xticks(range(len(values)), labels, rotation=15, fontsize=8)
        ax.set_title(title, fontsize=10)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.3g}" if v else "n/a", ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"{result['model']} on {result['board']} ({result['machine']} in QEMU)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
