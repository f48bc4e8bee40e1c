"""LOOKUP_TABLE: the engine's own op, a 256-entry int8 -> int8 table standing for a fused
elementwise pair (SiLU, ``mcu_effnet.codegen.fuse``). No loaded model has one: no checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op

LOOKUP = "LOOKUP_TABLE"


@dataclass(frozen=True)
class LookupParams:
    table: np.ndarray  # int8, the output for input value v at index v + 128
    fused_ops: tuple[int, ...]  # the indices of the ops the table replaces


def prepare(graph: Graph, op: Op) -> LookupParams:
    return LookupParams(np.asarray(op.attrs["table"]), tuple(op.attrs["fused_ops"]))


PREPARE = {LOOKUP: prepare}
