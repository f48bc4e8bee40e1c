"""mcu_effnet.arch: EfficientNet-B0 as data, compound scaling, estimates, board fitting.

``make_spec(phi, ...)`` is the entry point every later stage uses.
"""

from __future__ import annotations

from functools import lru_cache

from mcu_effnet.arch.estimate import (
    activation_schedule,
    flash_bytes,
    peak_activation_bytes,
    stage_costs,
    total_macs,
    total_params,
)
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
    "compound_scale",
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
    reserve_ram: int | None = None,
    reserve_flash: int | None = None,
    max_ms: float | None = None,
) -> ArchSpec:
    """Compound-scaled EfficientNet (d=α^φ, w=β^φ, r=γ^φ), then fitted to ``board``.

    ``board=None`` (or ``"none"``) skips fitting. ``resolution`` / ``width`` / ``depth``
    override what φ gives; an explicit resolution or width is kept and only the other one
    is fitted. Fitting (``mcu_effnet.fitting``) sizes the spec as the code generator will and
    keeps ``reserve_ram`` / ``reserve_flash`` bytes free for the application (default
    ``DEFAULT_RESERVE_*_BYTES`` of ``codegen.project_plan``); ``max_ms`` adds a latency budget.
    Bad arguments raise ``mcu_effnet.errors.UserError``.
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
    from mcu_effnet.boards.costs import DEFAULT_RESERVE_FLASH_BYTES, DEFAULT_RESERVE_RAM_BYTES

    return _fitted(
        spec,
        get_board(board).name,
        DEFAULT_RESERVE_RAM_BYTES if reserve_ram is None else reserve_ram,
        DEFAULT_RESERVE_FLASH_BYTES if reserve_flash is None else reserve_flash,
        max_ms,
    )


@lru_cache(maxsize=64)
def _fitted(
    spec: ArchSpec, board: str, reserve_ram: int, reserve_flash: int, max_ms: float | None
) -> ArchSpec:
    """A fit takes seconds (a dozen memory plans); specs are frozen, so each is fitted once.

    Fitting needs the code generator's plan, which sits above this package: imported here, the
    one place arch reaches up (docs/ARCHITECTURE.md, "Layers")."""
    from mcu_effnet.boards import get_board
    from mcu_effnet.fitting.search import fit_to_board

    return fit_to_board(spec, get_board(board), reserve_ram, reserve_flash, max_ms)
