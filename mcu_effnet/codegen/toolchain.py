"""Builds a firmware project with make and runs it in QEMU with semihosting and ``-icount``.

The firmware's console lines (``MCU-EFFNET <KEYWORD> ...``, see
``firmware_templates/platform/harness.c``) are parsed into a ``RunResult``; inputs go in through
``inputs.bin`` and outputs come back through ``outputs.bin`` in a fresh folder QEMU runs in.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcu_effnet.boards import Board
from mcu_effnet.codegen import io_ports
from mcu_effnet.errors import UserError

APT_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm"
PREFIX = "arm-none-eabi-"
DEFAULT_TIMEOUT = 600.0
# make of a TFLite Micro project whose core has no prebuilt library: the library build comes first.
LIBRARY_BUILD_TIMEOUT = 3600.0


def missing_tools(need_qemu: bool = True, need_cxx: bool = False) -> list[str]:
    tools = ["make", f"{PREFIX}gcc", f"{PREFIX}size", f"{PREFIX}objcopy"]
    if need_cxx:
        tools.append(f"{PREFIX}g++")
    if need_qemu:
        tools.append("qemu-system-arm")
    return [t for t in tools if shutil.which(t) is None]


def require_tools(need_qemu: bool = True, need_cxx: bool = False) -> None:
    missing = missing_tools(need_qemu, need_cxx)
    if missing:
        raise UserError(
            f"{', '.join(missing)} not found; install the toolchain with: sudo apt-get install -y "
            f"{APT_PACKAGES}" + (" make" if "make" in missing else "")
        )


def _first_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for pattern in ("overflowed", "undefined reference", "error:", "error", "No such file", "*** "):
        for ln in lines:
            if pattern in ln and not ln.startswith(("collect2", "make:", "make[")):
                # A Makefile's own $(error ...): "Makefile:38: *** message.  Stop." -> the message.
                m = re.match(r"^\S*Makefile:\d+: \*\*\* (.*?)\.?  Stop\.$", ln)
                return m.group(1) if m else ln
    return (lines or ["(no output)"])[-1]


def make(
    project: str | os.PathLike,
    target: str = "all",
    timeout: float = DEFAULT_TIMEOUT,
    label: str | None = None,
) -> Path:
    """Runs ``make <target>`` in the project; returns the ELF it produced."""
    project = Path(project)
    label = label or str(project)
    require_tools(need_qemu=False, need_cxx=(project / "main.cc").exists())
    jobs = str(min(2, os.cpu_count() or 1))
    try:
        proc = subprocess.run(
            ["make", "-C", str(project), f"-j{jobs}", target],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"{label}: make {target} did not finish in {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise UserError(f"{label}: make {target} failed: {_first_error(proc.stderr + proc.stdout)}")
    variant = "board" if target == "all" and (project / "platform" / "board.ld").exists() else "qemu"
    elf = project / "build" / variant / "firmware.elf"
    if not elf.exists():
        raise UserError(f"{label}: make {target} produced no {elf.relative_to(project)}")
    return elf


def elf_size(elf: str | os.PathLike) -> dict[str, int]:
    """``arm-none-eabi-size`` (Berkeley): flash = text + data, RAM = data + bss (incl. stack, arena)."""
    proc = subprocess.run([f"{PREFIX}size", str(elf)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"{elf}: arm-none-eabi-size failed: {proc.stderr.strip()}")
    fields = proc.stdout.splitlines()[1].split()
    text, data, bss = (int(v) for v in fields[:3])
    return {"text": text, "data": data, "bss": bss, "flash_bytes": text + data, "ram_bytes": data + bss}


@dataclass
class RunResult:
    status: int  # QEMU's exit status (the firmware's)
    stdout: str
    machine: str
    lines: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    output: np.ndarray | None = None  # the test vector's output as printed
    check_ok: bool = False
    mismatches: int | None = None
    instructions: int | None = None
    ticks: int | None = None
    counter_hz: int | None = None
    file_samples: int = 0
    stack_used: int | None = None  # deepest stack use (bytes), from the painted stack
    outputs: np.ndarray | None = None  # outputs.bin, one row per input sample
    # with the model's output ports given: the test vector's and outputs.bin's values per output
    test_outputs: list[np.ndarray] | None = None
    file_outputs: list[np.ndarray] | None = None

    @property
    def error(self) -> str | None:
        rows = self.lines.get("ERROR") or self.lines.get("FAULT")
        if rows:
            return " ".join(f"{k}={v}" if v is not None else k for k, v in rows[0].items())
        return None


_LINE = re.compile(r"^MCU-EFFNET ([A-Z]+)(.*)$")


def parse_output(text: str) -> dict[str, list[dict[str, str]]]:
    """``MCU-EFFNET KEY a=1 b c=2`` lines → {"KEY": [{"a": "1", "b": None, "c": "2"}]}.

    OUTPUT lines keep their values in order under the key ``"values"``.
    """
    parsed: dict[str, list[dict]] = {}
    for raw in text.splitlines():
        m = _LINE.match(raw.strip())
        if not m:
            continue
        key, rest = m.group(1), m.group(2).split()
        if key == "OUTPUT":
            parsed.setdefault(key, []).append({"values": rest})
            continue
        row: dict = {}
        for tok in rest:
            name, eq, value = tok.partition("=")
            row[name] = value if eq else None
        parsed.setdefault(key, []).append(row)
    return parsed


def qemu_command(board: Board, elf: str | os.PathLike) -> list[str]:
    em = board.emulator
    return [
        "qemu-system-arm",
        "-M",
        em.machine,
        "-cpu",
        em.cpu,
        "-icount",
        "shift=0",
        "-semihosting",
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-kernel",
        str(Path(elf).resolve()),
    ]


def run_qemu(
    board: Board,
    elf: str | os.PathLike,
    inputs: np.ndarray | None = None,
    output_bytes: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    output_dtype: str = "int8",
    ports: list[io_ports.Port] | None = None,
) -> RunResult:
    """Runs the emulator image; ``inputs`` (N × input values, int8 or int16, or N rows of packed
    bytes as uint8) go through inputs.bin; outputs are read back as ``output_dtype`` (int16 for
    a 16x8 model). ``ports``: the model's outputs; each is then also decoded on its own
    (``test_outputs``, ``file_outputs``)."""
    require_tools(need_qemu=True)
    with tempfile.TemporaryDirectory(prefix="mcu-effnet-qemu-") as work:
        work_path = Path(work)
        if inputs is not None:
            dtype = np.asarray(inputs).dtype
            dtype = dtype if dtype in (np.int16, np.uint8) else np.int8
            np.ascontiguousarray(inputs, dtype=dtype).tofile(work_path / "inputs.bin")
        try:
            proc = subprocess.run(
                qemu_command(board, elf), cwd=work, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise UserError(
                f"{elf}: QEMU {board.emulator.machine} did not finish in {timeout:.0f} s"
            ) from None
        result = RunResult(
            status=proc.returncode, stdout=proc.stdout + proc.stderr, machine=board.emulator.machine
        )
        result.lines = parse_output(result.stdout)
        out_file = work_path / "outputs.bin"
        if inputs is not None and out_file.exists() and ports:
            data = np.fromfile(out_file, dtype=np.uint8)
            size = sum(p.size for p in ports)
            result.file_outputs = io_ports.unpack(data[: len(data) // size * size].reshape(-1, size), ports)
        if inputs is not None and out_file.exists() and output_bytes and len(ports or [0]) == 1:
            data = np.fromfile(out_file, dtype=output_dtype)
            per_row = output_bytes // np.dtype(output_dtype).itemsize
            rows = len(data) // per_row
            result.outputs = data[: rows * per_row].reshape(rows, per_row)
    lines = result.lines
    if lines.get("OUTPUT") and ports:
        result.test_outputs = io_ports.from_printed(lines["OUTPUT"][0]["values"], ports)
    if lines.get("OUTPUT") and len(ports or [0]) == 1:
        values = [int(v) for v in lines["OUTPUT"][0]["values"]]
        # A float32 output is printed as its bits (harness.c), so it comes back exact.
        result.output = (
            np.array(values, dtype=np.uint32).view(np.float32)
            if output_dtype == "float32"
            else np.array(values, dtype=output_dtype)
        )
    if lines.get("CHECK"):
        row = lines["CHECK"][0]
        result.check_ok = "ok" in row
        result.mismatches = int(row.get("mismatches") or 0)
    if lines.get("TICKS"):
        result.ticks = int(lines["TICKS"][0]["ticks"])
        result.counter_hz = int(lines["TICKS"][0]["hz"])
    if lines.get("INSTRUCTIONS"):
        result.instructions = int(lines["INSTRUCTIONS"][0]["per_inference"])
    if lines.get("STACK"):
        result.stack_used = int(lines["STACK"][0].get("used") or 0)
    if lines.get("FILES"):
        result.file_samples = int(lines["FILES"][0].get("samples") or 0)
    return result
