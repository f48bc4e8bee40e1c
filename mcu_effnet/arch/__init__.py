"""mcu_effnet.arch: EfficientNet-B0 as data, compound scaling, estimates, board fitting.

``make_spec(phi, ...)`` is the entry point every later stage uses.
"""

from __future__ import annotations

from mcu_effnet.arch.estimate import (
    activation_schedule,
    flash_bytes,
    peak_activation_bytes,
    stage_costs,
    total_macs,
    total_params,
)
from mcu_effnet.arch.fit import budgets, fit_to_board
from mcu_effnet.arch.scaling import MIN_RESOLUTION, MIN_SCALED_CHANNELS, compound_scale
from mcu_effnet.arch.spec import ArchSpec, BlockSpec, FitInfo, StageSpec
from mcu_effnet.arch.table import B0_STAGES, BASE_RESOLUTION, VARIANTS

__all__ = [
    "ArchSpec",
    "B0_STAGES",
    "BASE_RESOLUTION",
    "BlockSpec",
    "FitInfo",
    "MIN_RESOLUTION",
    "MIN_SCALED_CHANNELS",
    "StageSpec",
    "VARIANTS",
    "activation_schedule",
    "budgets",
    "compound_scale",
    "fit_to_board",
    "flash_bytes",
    "make_spec",
    "peak_activation_bytes",
    "stage_costs",
    "total_macs",
    "total_params",
]


def make_spec(
    phi: float,
    *,
    alpha: float = 1.2,
    beta: float = 1.1,
    gamma: float = 1.15,
    variant: str = "full",
    classes: int = 1000,
    resolution: int | None = None,
    width: float | None = None,
    depth: float | None = None,
    board: str | None = "stm32",
) -> ArchSpec:
    """Compound-scaled EfficientNet (d=α^φ, w=β^φ, r=γ^φ), then fitted to ``board``.

    ``board=None`` (or ``"none"``) skips fitting. ``resolution`` / ``width`` / ``depth``
    override what φ gives; an explicit resolution or width is kept and only the other one
    is fitted. Bad arguments raise ``mcu_effnet.errors.UserError``.
    """
    spec = compound_scale(
        phi,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        variant=variant,
        classes=classes,
        resolution=resolution,
        width=width,
        depth=depth,
    )
    if board is None or str(board).strip().lower() == "none":
        return spec
    from mcu_effnet.boards import get_board

    return fit_to_board(spec, get_board(board))
