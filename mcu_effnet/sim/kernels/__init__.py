"""The simulator's kernel registry: op kind -> numpy kernel, merged from one module per family.

Each family module exposes ``KERNELS: dict[str, Kernel]`` (see ``common.Kernel`` for the
calling convention). To add a family, write the module and add its name to ``FAMILIES``.
"""

from __future__ import annotations

import importlib

from mcu_effnet.sim.kernels.common import Kernel

FAMILIES: tuple[str, ...] = (
    "conv",
    "fully_connected",
    "elementwise",
    "pooling",
    "shape",
    "activations",
    "quantize",
    "mean",
    "logistic",
    "softmax",
    "hard_swish",
)


def _merge() -> dict[str, Kernel]:
    merged: dict[str, Kernel] = {}
    for family in FAMILIES:
        module = importlib.import_module(f"mcu_effnet.sim.kernels.{family}")
        for kind, kernel in module.KERNELS.items():
            if kind in merged:
                raise RuntimeError(f"op {kind} is claimed by two kernel families")
            merged[kind] = kernel
    return merged


KERNELS: dict[str, Kernel] = _merge()

__all__ = ["FAMILIES", "KERNELS", "Kernel"]
