"""Builds generated engines for the host and runs them (shared by the engine and kernel tests).

The runtime kernels are compiled once per session into objects (gcc with AddressSanitizer and
UndefinedBehaviorSanitizer, ``-Wall -Wextra -Werror -std=c99``); each model then only compiles
its own ``model.c`` / ``model_data.c`` and the harness (``tests/engine_harness.c``), which runs
a file of int8 inputs through ``model_invoke``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from mcu_effnet.codegen import io_ports
from mcu_effnet.codegen.engine import (
    DSP_RUNTIME_FILES,
    RUNTIME_FILES,
    EngineSources,
    generate_engine,
    runtime_sources,
)
from mcu_effnet.graph import load_tflite

HERE = Path(__file__).resolve().parent
CFLAGS = [
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-O1",
    "-g",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
]
ARM_M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
ARM_FLAGS = ["-Wall", "-Wextra", "-Werror", "-std=c99", "-O2", "-c"]


# The DSP kernels on the host: tests/acle_emulation.h stands in for arm_acle.h.
DSP_EMULATION = ["-DEK_ACLE_EMULATION", f"-I{HERE}"]


class HostRuntime:
    """The runtime kernels compiled once; ``run(model_bytes, x)`` builds and runs one model.

    ``dsp``: also the DSP-extension kernels (portable ACLE emulation), for engines generated
    with ``dsp=True``.
    """

    def __init__(self, workdir: Path, dsp: bool = False):
        self.dsp = dsp
        self.extra = DSP_EMULATION if dsp else []
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count()
        self.runtime_dir = compiled_runtime(dsp)
        names = RUNTIME_FILES + (DSP_RUNTIME_FILES if dsp else ())
        self.objects = [self.runtime_dir / (name[:-2] + ".o") for name in names if name.endswith(".c")]

    def build(self, engine: EngineSources, defines: tuple[str, ...] = ()) -> Path:
        d = self.workdir / f"model{next(self._counter)}"
        d.mkdir()
        for rel, text in engine.files.items():
            (d / rel).write_text(text)
        exe = d / "harness"
        _cc(
            [
                "gcc",
                *CFLAGS,
                *self.extra,
                *(f"-D{name}" for name in defines),
                f"-I{d}",
                str(d / "model.c"),
                str(d / "model_data.c"),
                str(HERE / "engine_harness.c"),
                *map(str, self.objects),
                "-o",
                str(exe),
            ]
        )
        return exe

    def run_engine(
        self, engine: EngineSources, x: np.ndarray | list[np.ndarray], defines: tuple[str, ...] = ()
    ) -> np.ndarray:
        """``x``: a batch for the one input, or one batch per input (packed sample by sample,
        the form model_invoke() takes). Returns the outputs, one row per sample: an array for
        one output, a list of them for several."""
        exe = self.build(engine, defines)
        graph = engine.graph
        x = pack_inputs(graph, x)
        (exe.parent / "in.bin").write_bytes(x.tobytes())
        proc = subprocess.run(
            [str(exe), str(exe.parent / "in.bin"), str(exe.parent / "out.bin")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs = io_ports.ports(graph.output_tensors)
        rows = np.frombuffer((exe.parent / "out.bin").read_bytes(), np.uint8).reshape(x.shape[0], -1)
        shutil.rmtree(exe.parent, ignore_errors=True)
        ys = [y.reshape(x.shape[0], -1) for y in io_ports.unpack(rows, outputs)]
        return ys[0] if len(ys) == 1 else ys

    def run(self, model_bytes: bytes, x: np.ndarray) -> np.ndarray:
        return self.run_engine(generate_engine(load_tflite(model_bytes), dsp=self.dsp), x)


def compiled_runtime(dsp: bool) -> Path:
    """The runtime's sources and objects, compiled once per content: a folder named by the hash
    of the sources, the flags and the compiler, shared by every test module and xdist worker
    (each of ~20 modules compiled its own copy, 4-13 s of CPU apiece)."""
    sample = runtime_sources(dsp)
    names = RUNTIME_FILES + (DSP_RUNTIME_FILES if dsp else ())
    extra = DSP_EMULATION if dsp else []
    compiler = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(repr((compiler, CFLAGS, extra, [(n, sample[n]) for n in names])).encode())
    root = Path(tempfile.gettempdir()) / f"mcu-effnet-host-runtime-{os.getuid()}"
    final = root / key.hexdigest()[:24]
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=".staged-", dir=root))
    for name in names:
        (staged / name).write_text(sample[name])
    for name in names:
        if name.endswith(".c"):
            src, obj = staged / name, staged / (name[:-2] + ".o")
            _cc(
                [
                    "gcc",
                    *CFLAGS,
                    *extra,
                    f"-fdebug-prefix-map={staged}={final}",
                    "-c",
                    str(src),
                    "-o",
                    str(obj),
                ]
            )
    try:
        staged.rename(final)  # whole or not at all; another worker may have got there first
    except OSError:
        shutil.rmtree(staged, ignore_errors=True)
    return final


def pack_inputs(graph, x: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """Each sample's inputs back to back as bytes (each in its own type), one row per sample."""
    xs = [x] if isinstance(x, np.ndarray) else list(x)
    assert len(xs) == len(graph.inputs), (len(xs), len(graph.inputs))
    return io_ports.pack(xs, io_ports.ports(graph.input_tensors))


def _cc(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")


def compile_for_arm(files: dict[str, str], workdir: Path, cpu_flags: list[str] = ARM_M4) -> None:
    """Compiles every .c of an engine with arm-none-eabi-gcc, warnings as errors."""
    workdir.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (workdir / rel).write_text(text)
    sources = [str(workdir / rel) for rel in files if rel.endswith(".c")]
    for src in sources:
        _cc(["arm-none-eabi-gcc", *cpu_flags, *ARM_FLAGS, f"-I{workdir}", src, "-o", src[:-2] + ".o"])
