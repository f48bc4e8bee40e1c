"""Op kind -> its checks, its Prepare and its MAC count, merged from one module per family.

Each family module exposes ``CHECKS`` (kind -> ``check(graph, op) -> str | None``) and may
expose ``PREPARE`` (kind -> ``prepare(graph, op) -> Params``) and ``MACS`` (kind ->
``macs(graph, op) -> int``; ops absent count 0). The families are imported on first use, so
the graph package (whose loader validates with ``check_op``) can import this module while the
families import the graph's IR.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcu_effnet.graph.ir import Graph, Op

FAMILIES: tuple[str, ...] = tuple(
    "conv fully_connected elementwise pooling shape activations mean logistic softmax hard_swish lookup".split()
) + (
    "arithmetic",
    "unary_math",
    "reduce",
    "transpose_conv",
    "data_movement",
    "resize",
    "dequantize",
    "argmax",
)


def merge_tables(package: str, families: tuple[str, ...], name: str) -> dict[str, Callable[..., Any]]:
    """kind -> function, from the table ``name`` of each family module of ``package`` (the
    simulator's kernels are merged the same way); a kind claimed twice is an error."""
    merged: dict[str, Callable[..., Any]] = {}
    for family in families:
        for kind, function in getattr(importlib.import_module(f"{package}.{family}"), name, {}).items():
            if kind in merged:
                raise RuntimeError(f"op {kind} is claimed by two families ({package}, {name})")
            merged[kind] = function
    return merged


@functools.cache
def _table(name: str) -> dict[str, Callable[..., Any]]:
    return merge_tables("mcu_effnet.ops", FAMILIES, name)


def check_op(graph: Graph, op: Op) -> str | None:
    """None if the op is well formed for mcu-effnet, else what is wrong with it."""
    check = _table("CHECKS").get(op.kind)
    return check(graph, op) if check else f"no checks for {op.kind}"


def prepare(graph: Graph, op: Op) -> Any:
    """The op's parameters as TFLite Micro's Prepare computes them (None for ops that have none:
    RESHAPE, CONCATENATION). Raises ``UserError`` for an op Prepare refuses."""
    function = _table("PREPARE").get(op.kind)
    return function(graph, op) if function else None


def op_macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates of one run of the op (convolutions, FULLY_CONNECTED, MUL; others 0)."""
    function = _table("MACS").get(op.kind)
    return int(function(graph, op)) if function else 0


def checked_kinds() -> frozenset[str]:
    return frozenset(_table("CHECKS"))
