"""What goes into a firmware project: the runtime's model (engine or TFLite Micro), its RAM and
flash against the board's, and the test vector with the host simulator's expected output.

Everything here is decided before a file is written, so a model that cannot fit is refused
before anything touches the disk (``DoesNotFit``; ``compare`` reports it as a result).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mcu_effnet.boards import Board
from mcu_effnet.boards.costs import DEFAULT_RESERVE_FLASH_BYTES, board_costs
from mcu_effnet.codegen import io_ports
from mcu_effnet.codegen.templates import kib
from mcu_effnet.codegen.tflm import TFLM_KERNELS
from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph, Tensor
from mcu_effnet.graph.tiling import DEFAULT_MAX_RECOMPUTE

if TYPE_CHECKING:
    from mcu_effnet.codegen.engine import EngineSize

DEFAULT_STACK_BYTES = 8 * 1024
# RAM of the platform layer beside the model's buffers: console line, counters, .data of newlib.
RUNTIME_RAM_BYTES = 1024
# Flash of everything but the weights, for the fit check before linking (the linker has the
# final word): platform + kernels for native, the interpreter and its kernels for TFLite Micro.
CODE_FLASH_BYTES = {"native": 48 * 1024, "tflm": 96 * 1024}
RUNTIMES = ("native", "tflm")


class DoesNotFit(UserError):
    """The model's RAM or flash exceeds the board's (``compare`` reports it as a result)."""


@dataclass
class ProjectPlan:
    """One project, decided before a file is written."""

    board: Board
    runtime: str
    kernels: str
    label: str  # where the model came from, as the user named it
    model_name: str
    input: Tensor
    output: Tensor
    stack_bytes: int
    seed: int
    model_bytes: bytes | None
    engine: Any = None  # EngineSources (native runtime)
    tflm: Any = None  # TflmPlan (tflm runtime)
    report: dict[str, Any] = field(default_factory=dict)  # report.json but the linked sizes
    inputs: list[io_ports.Port] = field(default_factory=list)
    outputs: list[io_ports.Port] = field(default_factory=list)
    # the test vector: one sample's inputs and the simulator's outputs, packed as bytes
    test_input: np.ndarray | None = None
    test_expected: np.ndarray | None = None
    # Profiling build: counter readings per inference (0: none, the marks compile out).
    profile: bool = False
    profile_marks: int = 0


def check_choices(runtime: str, kernels: str) -> None:
    if kernels not in TFLM_KERNELS:
        raise UserError(f"--kernels: unknown kernels {kernels!r}; choose one of {', '.join(TFLM_KERNELS)}")
    if kernels != "reference" and runtime != "tflm":
        raise UserError("--kernels chooses TFLite Micro's kernels: it needs --runtime tflm")
    if runtime not in RUNTIMES:
        raise UserError(f"--runtime: unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")


def ram_budget(arena: int, io_bytes: int, stack: int) -> dict[str, int]:
    """SRAM the firmware needs, by part (all in the board's largest contiguous region)."""
    return {"arena": arena, "I/O buffers": io_bytes, "stack": stack, "runtime": RUNTIME_RAM_BYTES}


def weights_flash_room(board: Board, runtime: str) -> int:
    """Flash left for the model's constants once the runtime's code is counted (the fits rule)."""
    return board.flash[0].size - CODE_FLASH_BYTES[runtime]


def engine_code_bytes(board: Board, calls: dict[str, int]) -> int:
    """Flash of the native firmware but its weights and test vector, from the board's measured
    costs (``boards.costs``): the base, each op kind's kernels once, each op's struct and call.
    A board never measured gets the fixed allowance of the fits rule."""
    costs = board_costs(board.name)
    if costs is None:
        return CODE_FLASH_BYTES["native"]
    kinds = sum(costs.code_bytes(kind) for kind in calls)
    per_op = sum(costs.op_struct_bytes(kind) * n for kind, n in calls.items())
    return costs.base_flash_bytes + kinds + per_op


def native_flash_bytes(board: Board, size: EngineSize) -> int:
    """The linked flash of a native firmware: code, the engine's const arrays, the test vector
    (one input and its expected output)."""
    return engine_code_bytes(board, size.calls) + size.weights_bytes + size.io_bytes


# The code estimate is per op kind, the linker's layout is not: flash a fit or the widening keeps
# unused so that the estimate's error (a few hundred bytes measured) never eats into the reserve.
CODE_ESTIMATE_SLACK_BYTES = 2 * 1024


def widen_budget(board: Board, narrow: EngineSize, reserve_flash: int) -> int:
    """Extra flash the DSP engine may spend widening weights: what is left of the board's flash
    once the firmware with narrow weights, the application's reserve and the slack are counted."""
    room = board.flash[0].size - reserve_flash - CODE_ESTIMATE_SLACK_BYTES
    return max(0, room - native_flash_bytes(board, narrow))


def check_fits(
    board: Board, runtime: str, arena: int, io_bytes: int, stack: int, weights: int, model_label: str
) -> int:
    """Raises UserError (both figures) when the model cannot fit; returns the SRAM needed."""
    parts = ram_budget(arena, io_bytes, stack)
    needed = sum(parts.values())
    region = board.largest_sram_region
    if needed > region.size:
        detail = " + ".join(f"{k} {kib(v)}" for k, v in parts.items())
        has = f"{board.name} has {kib(board.sram_bytes)}"
        if len(board.sram) > 1:
            has += f" in all, at most {kib(region.size)} contiguous ({region.name})"
        raise DoesNotFit(f"{model_label}: needs {kib(needed)} SRAM ({detail}), {has}")
    if weights > weights_flash_room(board, runtime):
        flash_needed, flash_has = weights + CODE_FLASH_BYTES[runtime], board.flash[0].size
        raise DoesNotFit(
            f"{model_label}: needs {kib(flash_needed)} flash (weights {kib(weights)} + code "
            f"{kib(CODE_FLASH_BYTES[runtime])}), {board.name} has {kib(flash_has)}"
        )
    return needed


def _tiling_hint(engine: Any, max_recompute: float) -> str:
    """What tiling did for a model that does not fit (native engine)."""
    plan = getattr(engine, "plan", None)
    if plan is None:
        return ""
    tiled = getattr(plan, "tiling", None)
    if tiled:
        return (
            f", even with its first layers tiled (ops {tiled['ops'][0]}-{tiled['ops'][-1]} in {tiled['tiles']} bands: "
            f"arena {kib(tiled['arena_before'])} -> {kib(plan.arena_bytes)}, "
            f"{tiled['recomputed_percent']:.1f} % of the MACs recomputed, max_recompute {max_recompute:g} %)"
        )
    return f"; tiling its first layers would not lower the arena within max_recompute {max_recompute:g} %"


def _transpose_hint(plan_graph: Graph | None, runtime: str) -> str:
    """The largest TRANSPOSE left as a kernel, for a model that does not fit: its copy is often
    the cause, and a user can move it (or make it absorbable) in the source model."""
    if plan_graph is None:
        return ""
    kept = [op for op in plan_graph.ops if op.kind == "TRANSPOSE"]
    if not kept:
        return ""
    op = max(kept, key=lambda o: plan_graph.tensors[o.outputs[0]].nbytes)
    out = plan_graph.tensors[op.outputs[0]]
    perm = " ".join(str(int(v)) for v in np.asarray(plan_graph.tensors[op.inputs[1]].data).reshape(-1))
    shape = "x".join(str(int(d)) for d in out.shape)
    why = (
        "(only one after the input or before a classifier's flattening RESHAPE is)"
        if runtime == "native"
        else "(TFLite Micro runs every TRANSPOSE as a kernel)"
    )
    return (
        f"; op {op.index} TRANSPOSE (perm {perm}) is not absorbed {why} and holds a "
        f"{shape} {out.dtype} copy of {kib(out.nbytes)} ({out.nbytes} bytes)"
    )


def test_vector_input(
    shape: tuple[int, ...], seed: int = 0, samples: int = 1, dtype: str = "int8"
) -> np.ndarray:
    """The deterministic input embedded in every project (``samples`` on the batch axis): int8,
    or int16 over its whole range for a 16x8 model, random floats for a float32 input."""
    size = (samples, *shape[1:]) if shape else (samples,)
    return _random_values(np.random.default_rng(seed), size, dtype)


def _random_values(rng: np.random.Generator, size: tuple[int, ...], dtype: str) -> np.ndarray:
    """An integer type over its whole range; float32 (an input QUANTIZE reads) as a unit normal
    times 4, which saturates the usual input quantizations (|x| up to ~2.5) at its tails."""
    if dtype == "float32":
        return (rng.standard_normal(size) * 4).astype(np.float32)
    info = np.iinfo(np.dtype(dtype))
    return rng.integers(int(info.min), int(info.max) + 1, size=size, dtype=np.dtype(dtype))


def test_vector_inputs(
    shapes: list[tuple[int, ...]], seed: int = 0, samples: int = 1, dtype: str | list[str] = "int8"
) -> list[np.ndarray]:
    """``test_vector_input`` for each input in turn from one generator (the first input's values
    are the one-input model's); ``dtype``: one for all, or each input's."""
    rng = np.random.default_rng(seed)
    dtypes = [dtype] * len(shapes) if isinstance(dtype, str) else list(dtype)
    out = []
    for shape, dt in zip(shapes, dtypes, strict=True):
        out.append(_random_values(rng, (samples, *shape[1:]), dt))
    return out


def test_vector_samples(inputs: list[io_ports.Port], seed: int = 0, samples: int = 1) -> list[np.ndarray]:
    """The embedded test vector's inputs (or ``samples`` of them), one batch per model input."""
    if len(inputs) == 1:
        return [test_vector_input(inputs[0].shape, seed, samples, dtype=inputs[0].dtype)]
    return test_vector_inputs([p.shape for p in inputs], seed, samples, [p.dtype for p in inputs])


def simulate_outputs(
    graph: Graph, xs: list[np.ndarray], simulate: Callable[[Graph, np.ndarray], np.ndarray] | None = None
) -> list[np.ndarray]:
    """The host simulator's outputs for one batch per input: a list, one batch per output."""
    if simulate is None:
        from mcu_effnet.sim import run as simulate
    out = simulate(graph, xs[0] if len(xs) == 1 else xs)
    return list(out) if isinstance(out, list | tuple) else [out]


def _layer_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in row.items()}


def plan_project(
    graph: Graph,
    board: Board,
    runtime: str,
    kernels: str,
    model_bytes: bytes | None,
    model_source: str | None,
    stack_bytes: int,
    engine: Any,
    simulate: Callable[[Graph, np.ndarray], np.ndarray] | None,
    seed: int,
    tflm_dir: str | os.PathLike | None,
    profile: bool = False,
    reserve_flash: int = DEFAULT_RESERVE_FLASH_BYTES,
    max_recompute: float | None = DEFAULT_MAX_RECOMPUTE,
) -> ProjectPlan:
    """The runtime's model and sizes (fits checked) and the test vector; writes nothing."""
    label = model_source or graph.source or "model"
    inputs, outputs = io_ports.check_ports(graph, label)
    tin, tout = graph.input_tensors[0], graph.output_tensors[0]
    name = Path(label).stem
    if name == "model" and Path(label).parent.name not in ("", "."):
        name = Path(label).resolve().parent.name  # a run folder's model.tflite: name it by its run
    plan = ProjectPlan(board, runtime, kernels, label, name, tin, tout, stack_bytes, seed, model_bytes)
    plan.inputs, plan.outputs = inputs, outputs
    in_bytes = sum(p.size for p in inputs)
    out_bytes = sum(p.size for p in outputs)
    if runtime == "tflm":
        from mcu_effnet.codegen.tflm import check_index_types

        check_index_types(graph, label)
    memory_plan = None
    if runtime == "native":
        if engine is None:
            from mcu_effnet.codegen.engine import engine_size, generate_engine, plan_engine

            planned = plan_engine(
                graph, max_recompute=max_recompute
            )  # once for both: the chunked modes' choice plans many arenas
            budget = None
            if board.has_dsp:  # the core picks the kernels
                # Widened 1x1 / FC weights (twice the flash) only as far as the board's flash
                # allows once the application's reserve is kept free.
                narrow = engine_size(graph, dsp=True, widen_budget=0, planned=planned)
                budget = widen_budget(board, narrow, reserve_flash)
            engine = generate_engine(graph, dsp=board.has_dsp, widen_budget=budget, planned=planned)
        plan.engine = engine
        arena, weights = int(engine.arena_bytes), int(engine.weights_bytes)
        model_ram = int(getattr(engine, "model_ram_bytes", arena))
        layers = [_layer_row(r) for r in getattr(engine, "layers", [])]
        if getattr(engine, "plan", None) is not None:  # execution order, buffers, in-place ops, peaks
            memory_plan = engine.plan.to_dict(getattr(engine, "graph", None) or graph)
            # SiLU pairs the engine runs as one table lookup
            memory_plan["fused"] = [f.to_dict() for f in getattr(engine, "fusions", [])]
            # TRANSPOSEs folded into the input copy or a classifier's weights
            memory_plan["absorbed"] = [a.to_dict() for a in getattr(engine, "absorbed", [])]
    else:
        if model_bytes is None:
            raise UserError(f"{label}: --runtime tflm needs the .tflite file itself")
        from mcu_effnet.codegen import tflm as tflm_mod

        plan.tflm = tflm_mod.plan(graph, model_bytes, tflm_dir=tflm_dir, kernels=kernels)
        arena = model_ram = plan.tflm.arena_bytes
        weights, layers = len(model_bytes), tflm_mod.layer_rows(graph)
    if profile:
        plan.profile, plan.profile_marks = True, _profile_marks(runtime, plan.engine, graph)
    try:
        sram_needed = check_fits(board, runtime, arena, in_bytes + out_bytes, stack_bytes, weights, label)
    except DoesNotFit as exc:
        hint = _tiling_hint(plan.engine, max_recompute) if runtime == "native" else ""
        # The native engine's graph has its absorbed TRANSPOSEs removed; TFLite Micro runs the model's.
        kept_graph = getattr(plan.engine, "graph", None) if runtime == "native" else graph
        raise DoesNotFit(
            str(exc) + _transpose_hint(kept_graph, runtime) + hint, options=("max_recompute",)
        ) from None

    xs = test_vector_samples(inputs, seed)
    ys = simulate_outputs(graph, xs, simulate)
    for y, p in zip(ys, outputs, strict=True):
        y = np.asarray(y)
        if y.nbytes != p.size or y.dtype != np.dtype(p.dtype):
            raise UserError(
                f"{label}: the simulator returned {y.shape} {y.dtype} for output '{p.name}', expected {p.dtype}"
            )
    # One sample, packed as bytes: the test vector's form.
    plan.test_input, plan.test_expected = io_ports.pack(xs, inputs)[0], io_ports.pack(ys, outputs)[0]
    plan.report = {
        "board": board.name,
        "runtime": runtime,
        "model": plan.model_name,
        "model_source": str(label),
        "emulator": board.emulator.machine,
        "input_shape": list(tin.shape),
        "output_shape": list(tout.shape),  # the first output's (outputs: every one)
        "input_shapes": [list(p.shape) for p in inputs],  # every input, packed in this order
        "inputs": [p.to_dict() for p in inputs],  # name, shape, dtype, bytes; packed in this order
        "outputs": [p.to_dict() for p in outputs],
        "input_bytes": in_bytes,
        "output_bytes": out_bytes,
        "input_dtype": tin.dtype,  # int8, or int16 in a 16x8 model
        "output_dtype": tout.dtype,
        "arena_bytes": arena,
        "model_ram_bytes": model_ram,
        "weights_bytes": weights,
        "stack_bytes": stack_bytes,
        "sram_needed_bytes": sram_needed,
        "board_ram_bytes": board.largest_sram_region.size,
        "board_sram_total_bytes": board.sram_bytes,
        "board_flash_bytes": board.flash[0].size,
        "flash_bytes": None,  # the linked sizes, filled in when the project is built
        "ram_bytes": None,
        "elf": None,
        "instructions_per_inference": None,
        "layers": layers,
        "profile_build": profile,
    }
    if memory_plan is not None:
        plan.report["memory_plan"] = memory_plan
    if plan.tflm is not None:
        plan.report["tflm_kernels"] = kernels
        plan.report["tflm_arena_recorded_bytes"] = plan.tflm.recorded_bytes
        plan.report["tflm_ops"] = plan.tflm.ops
    return plan


def _profile_marks(runtime: str, engine: Any, graph: Graph) -> int:
    from mcu_effnet.codegen import profile as profile_mod

    if runtime == "native":
        return profile_mod.project_marks(runtime, len(engine.layers), engine.files["model.c"])
    return profile_mod.project_marks(runtime, len(graph.ops))
