"""A spec's RAM, flash and time on a board, as the code generator will lay it out.

The spec's int8 graph (``spec_graph``) goes through what ``codegen`` does to a trained model:
SiLU fusion, the searched op order and the arena planner, the engine's weight layout for the
board's core. RAM is the firmware's SRAM as ``codegen.project_plan`` counts it (arena, I/O
buffers, stack, runtime); flash is the engine's const arrays plus code per op kind and the test
vector, from the board's measured costs (``boards.costs``); time is instructions per op kind
from the same costs, at the board's clock (instructions, not cycles).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mcu_effnet.arch.spec import ArchSpec
from mcu_effnet.boards import Board
from mcu_effnet.boards.costs import board_costs
from mcu_effnet.codegen.engine import EngineSize, engine_size, plan_engine
from mcu_effnet.codegen.fuse import fuse_silu
from mcu_effnet.codegen.project_plan import (
    DEFAULT_STACK_BYTES,
    engine_code_bytes,
    native_flash_bytes,
    ram_budget,
    widen_budget,
)
from mcu_effnet.fitting.spec_graph import spec_graph
from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.graph.op_order import plan_memory
from mcu_effnet.graph.tiling import DEFAULT_MAX_RECOMPUTE
from mcu_effnet.ops.registry import op_macs


@dataclass(frozen=True)
class Footprint:
    """One spec on one board, before any weights exist."""

    arena_bytes: int  # the planned arena (in-place ops, SiLU fused, searched order)
    ram_bytes: int  # the firmware's SRAM: arena, I/O buffers, stack, runtime
    code_bytes: int  # everything in flash but the weights and the test vector
    weights_bytes: int  # the engine's const arrays, weights at their narrowest layout
    flash_bytes: int  # code + narrow weights + test vector: what must fit
    instructions: int | None  # per inference, from the board's measured costs (None: never measured)
    size: EngineSize  # the narrow engine, for the widening a firmware adds

    def latency_ms(self, board: Board) -> float | None:
        return None if self.instructions is None else self.instructions / board.clock_hz * 1e3


def op_units(graph: Graph, op: Op) -> int:
    """The work an op's instructions grow with: MACs, else output elements (input for MEAN)."""
    macs = int(op_macs(graph, op))
    if macs:
        return macs
    t_in, t_out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    return max(int(np.prod(t_out.shape)), int(np.prod(t_in.shape)) if op.kind == "MEAN" else 0)


def graph_instructions(graph: Graph, board: Board) -> int | None:
    """Instructions per inference of the native engine running ``graph`` (SiLU already fused)."""
    costs = board_costs(board.name)
    if costs is None:
        return None
    total = costs.invoke_instructions + sum(
        costs.op_instructions(op.kind, op_units(graph, op)) for op in graph.ops
    )
    return round(total)


def footprint(
    spec: ArchSpec,
    board: Board,
    same_width: EngineSize | None = None,
    stack_bytes: int = DEFAULT_STACK_BYTES,
    max_recompute: float | None = DEFAULT_MAX_RECOMPUTE,
    exact: bool = True,
) -> Footprint:
    """``same_width``: the engine of this spec at another resolution, if one was sized. The
    const arrays and the calls depend on the channels alone, so only the plan is made again.
    The plan is the code generator's own (``plan_engine``: SiLU pairs, chunked modes and the
    tiled first layers within ``max_recompute``), so the RAM predicted is the RAM linked;
    ``exact=False``: the plain liveness plan instead, an upper bound of that arena."""
    graph = spec_graph(spec)
    fused, _ = fuse_silu(graph)
    planned = (
        plan_engine(graph, max_recompute=max_recompute) if exact else plan_engine(fused, plan_memory(fused))
    )
    plan = planned.plan
    if same_width is None:
        size = engine_size(
            graph, dsp=board.has_dsp, widen_budget=0 if board.has_dsp else None, planned=planned
        )
    else:
        io = sum(fused.tensors[t].nbytes for t in (*fused.inputs, *fused.outputs))
        model_ram = plan.arena_bytes + (0 if plan.io_in_arena else io)
        size = dataclasses.replace(
            same_width, arena_bytes=plan.arena_bytes, model_ram_bytes=model_ram, io_bytes=io
        )
    ram = sum(ram_budget(size.arena_bytes, size.io_bytes, stack_bytes).values())
    return Footprint(
        arena_bytes=size.arena_bytes,
        ram_bytes=ram,
        code_bytes=engine_code_bytes(board, size.calls),
        weights_bytes=size.weights_bytes,
        flash_bytes=native_flash_bytes(board, size),
        instructions=graph_instructions(fused, board),
        size=size,
    )


def firmware_flash_bytes(spec: ArchSpec, board: Board, fp: Footprint, reserve_flash: int) -> int:
    """The flash a firmware generated from ``spec`` will link to: on a DSP core, codegen widens
    weights within what the reserve leaves (``project_plan.widen_budget``), so count that too."""
    if not board.has_dsp:
        return fp.flash_bytes
    budget = widen_budget(board, fp.size, reserve_flash)
    fused, _ = fuse_silu(spec_graph(spec))
    return native_flash_bytes(board, engine_size(fused, dsp=True, widen_budget=budget))
