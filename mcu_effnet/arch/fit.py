"""Fitting a compound-scaled spec to a board's SRAM and flash (see docs/ARCHITECTURE.md).

1. The resolution drops to the next multiple of ``RESOLUTION_STEP`` px, then a step at a time,
   until the peak activation memory fits the SRAM budget (at the compound-scaled width).
2. The width multiplier drops on a grid of ``WIDTH_STEP`` until the weights fit the flash
   budget (and, when the resolution was given explicitly, the peak fits too).
3. A narrower network has smaller activations, so the resolution given up in step 1 is taken
   back a step at a time while the peak still fits (never above the compound-scaled value).

Depth is never touched. An explicit resolution or width is kept as given.
"""

from __future__ import annotations

import dataclasses
import math

from mcu_effnet.arch.estimate import flash_bytes, peak_activation_bytes
from mcu_effnet.arch.scaling import MIN_RESOLUTION, compound_scale
from mcu_effnet.arch.spec import ArchSpec, FitInfo
from mcu_effnet.boards import Board
from mcu_effnet.errors import UserError

KiB = 1024

# --- Margins: the one place that says what besides the model lives in memory --------------
# SRAM: taken from the largest contiguous SRAM region, where the tensor arena lives.
STACK_BYTES = 8 * KiB  # main stack (interrupts, kernel call frames)
RUNTIME_RAM_BYTES = 8 * KiB  # .data/.bss of the runtime and startup, I/O buffers, UART/semihosting
KERNEL_SCRATCH_BYTES = 16 * KiB  # per-op scratch (im2col / int16 buffers of optimized kernels)
SRAM_MARGIN_BYTES = STACK_BYTES + RUNTIME_RAM_BYTES + KERNEL_SCRATCH_BYTES
# Flash: taken from the board's total flash.
CODE_BYTES = 96 * KiB  # kernels, generated model code, startup, newlib (printf, memcpy)
RODATA_MARGIN_BYTES = 32 * KiB  # vector table, string tables, test vectors, alignment padding
FLASH_MARGIN_BYTES = CODE_BYTES + RODATA_MARGIN_BYTES

RESOLUTION_STEP = 8  # px
WIDTH_STEP = 0.01  # width multiplier


def budgets(board: Board) -> tuple[int, int]:
    """(SRAM budget, flash budget) in bytes available to activations and to weights."""
    return (
        board.largest_sram_region.size - SRAM_MARGIN_BYTES,
        board.flash_bytes - FLASH_MARGIN_BYTES,
    )


def fit_to_board(spec: ArchSpec, board: Board) -> ArchSpec:
    """``spec`` (compound-scaled, unfitted) with resolution and width lowered to fit ``board``.

    Raises ``UserError`` with both numbers when no resolution ≥ 16 px or width (down to the
    channel limit) fits.
    """
    sram_budget, flash_budget = budgets(board)
    explicit_res = "resolution" in spec.overrides
    explicit_width = "width" in spec.overrides

    def build(resolution: int, width: float) -> ArchSpec:
        return compound_scale(
            spec.phi,
            alpha=spec.alpha,
            beta=spec.beta,
            gamma=spec.gamma,
            variant=spec.variant,
            classes=spec.classes,
            resolution=resolution,
            width=width,
            depth=spec.depth_mult,
        )

    res, width = spec.resolution, spec.width_mult
    current = spec
    if not explicit_res:
        while peak_activation_bytes(current) > sram_budget:
            # Down to the next multiple of the step, then a step at a time: fitted inputs are
            # multiples of 8, which the stride-2 stages halve evenly.
            lower = (res - 1) // RESOLUTION_STEP * RESOLUTION_STEP
            if lower < MIN_RESOLUTION:
                break
            res = lower
            current = build(res, width)
    if not explicit_width:
        # Candidates on the WIDTH_STEP grid below the compound-scaled width: 0.90, 0.89, ...
        top = math.ceil(round(spec.width_mult / WIDTH_STEP, 6))
        k = 0
        while peak_activation_bytes(current) > sram_budget or flash_bytes(current) > flash_budget:
            k += 1
            candidate = round((top - k) * WIDTH_STEP, 6)
            if candidate <= 0:
                break
            try:
                current = build(res, candidate)
            except UserError:  # below the channel limit: nothing narrower exists
                break
            width = candidate

    if not explicit_res and width < spec.width_mult:
        while res + RESOLUTION_STEP <= spec.resolution:
            candidate_spec = build(res + RESOLUTION_STEP, width)
            if peak_activation_bytes(candidate_spec) > sram_budget:
                break
            res, current = res + RESOLUTION_STEP, candidate_spec

    peak, weights = peak_activation_bytes(current), flash_bytes(current)
    if peak > sram_budget:
        raise UserError(
            f"board {board.name}: peak activation memory {peak} bytes at {res} px exceeds the SRAM "
            f"budget of {sram_budget} bytes (largest region {board.largest_sram_region.size} bytes "
            f"minus {SRAM_MARGIN_BYTES} for stack and runtime)",
            options=("board",),
        )
    if weights > flash_budget:
        raise UserError(
            f"board {board.name}: weights need {weights} bytes of flash at width {width:.2f}, the "
            f"flash budget is {flash_budget} bytes ({board.flash_bytes} minus {FLASH_MARGIN_BYTES} for code)",
            options=("board",),
        )

    # Keep the raw compound-scaled values of the unfitted spec beside the fitted ones.
    stages = tuple(
        dataclasses.replace(
            s,
            scaled_resolution=base.scaled_resolution,
            scaled_channels=base.scaled_channels,
            scaled_layers=base.scaled_layers,
        )
        for s, base in zip(current.stages, spec.stages, strict=True)
    )
    fit = FitInfo(
        board=board.name,
        scaled_resolution=spec.resolution,
        scaled_width_mult=spec.width_mult,
        resolution=res,
        width_mult=width,
        peak_activation_bytes=peak,
        weight_bytes=weights,
        sram_bytes=sram_budget,
        flash_bytes=flash_budget,
    )
    return dataclasses.replace(current, stages=stages, board=board.name, fit=fit, overrides=spec.overrides)
