"""The simulator's kernel registry: op kind -> numpy kernel, from ``KERNELS`` of one module per
op family, named as the family's module in ``mcu_effnet.ops`` (see ``common.Kernel`` for the
calling convention)."""

from __future__ import annotations

from mcu_effnet.ops import registry
from mcu_effnet.sim.kernels.common import Kernel

# Every family but the engine's own LOOKUP_TABLE, which only generated C runs.
FAMILIES: tuple[str, ...] = tuple(f for f in registry.FAMILIES if f != "lookup")
KERNELS: dict[str, Kernel] = registry.merge_tables("mcu_effnet.sim.kernels", FAMILIES, "KERNELS")

__all__ = ["FAMILIES", "KERNELS", "Kernel"]
