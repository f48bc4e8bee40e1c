"""Fitting a compound-scaled spec to a board with the engine's own numbers (docs/ARCHITECTURE.md).

The budgets are the board's largest SRAM region and its flash, less what the application
reserves (``reserve_ram`` / ``reserve_flash``); a latency budget (``max_ms``) adds a time limit
at the board's clock. A candidate fits when its ``footprint`` (planned RAM, engine flash,
estimated instructions) is within all of them.

1. The resolution drops, at the compound-scaled width, to the largest that fits the SRAM and
   time budgets: the compound-scaled value, else a multiple of ``RESOLUTION_STEP`` px (the
   stride-2 stages halve those evenly), down to 16 px.
2. The width multiplier drops on a grid of ``WIDTH_STEP`` to the largest that fits every budget.
3. A narrower network has smaller activations and runs faster, so the resolution given up in
   step 1 is taken back as far as SRAM and time allow (never above the compound-scaled value),
   and the width lowered again if the flash needs it there (the test vector grows with the
   resolution); a few rounds, resolution first.

Depth is never touched; an explicit resolution or width is kept as given. RAM, flash and time
grow with resolution and width (nearly: channels rounded to multiples of 8 make RAM step
unevenly with the width, so the search can settle on a local choice), so each step searches its grid from a guess (the analytic
estimates of ``arch.estimate``, scaled to the last footprint measured) by galloping and
bisection: a few footprints per step, each a plan of the whole graph.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from mcu_effnet.arch.scaling import MIN_RESOLUTION, compound_scale
from mcu_effnet.arch.spec import ArchSpec, FitInfo
from mcu_effnet.boards import Board
from mcu_effnet.boards.costs import DEFAULT_RESERVE_FLASH_BYTES, DEFAULT_RESERVE_RAM_BYTES, board_costs
from mcu_effnet.codegen.project_plan import CODE_ESTIMATE_SLACK_BYTES
from mcu_effnet.errors import UserError
from mcu_effnet.fitting.footprint import Footprint, firmware_flash_bytes, footprint

RESOLUTION_STEP = 8  # px
WIDTH_STEP = 0.01  # width multiplier

T = TypeVar("T")
# Planned RAM over the analytic peak before anything is measured (SiLU fused, ops in place).
_PRIOR = (0.6, 1.0, None)
_MAX_ROUNDS = 4  # of taking resolution back, then width (each round only raises one, lowers the other)


@dataclass(frozen=True)
class Budgets:
    sram_bytes: int  # the largest SRAM region less the RAM reserve
    flash_bytes: int  # flash less the flash reserve
    max_ms: float | None

    def fits(self, fp: Footprint, board: Board) -> bool:
        if fp.ram_bytes > self.sram_bytes or fp.flash_bytes + CODE_ESTIMATE_SLACK_BYTES > self.flash_bytes:
            return False
        ms = fp.latency_ms(board)
        return self.max_ms is None or ms is None or ms <= self.max_ms


def budgets(
    board: Board,
    reserve_ram: int = DEFAULT_RESERVE_RAM_BYTES,
    reserve_flash: int = DEFAULT_RESERVE_FLASH_BYTES,
    max_ms: float | None = None,
) -> Budgets:
    """The room a model may use on ``board``; a reserve the board cannot hold is refused."""
    region = board.largest_sram_region
    for name, value, has, what in (
        (
            "reserve_ram",
            reserve_ram,
            region.size,
            f"largest SRAM region ({region.name}, {region.size} bytes)",
        ),
        ("reserve_flash", reserve_flash, board.flash[0].size, f"flash ({board.flash[0].size} bytes)"),
    ):
        if value < 0:
            raise UserError(f"{name} must be 0 or more bytes (got {value})", options=(name,))
        if value >= has:
            raise UserError(
                f"{name} {value} bytes leaves nothing of board {board.name}'s {what}", options=(name,)
            )
    if max_ms is not None and not (max_ms > 0 and math.isfinite(max_ms)):
        raise UserError(
            f"max_ms must be a positive number of milliseconds (got {max_ms})", options=("max_ms",)
        )
    if max_ms is not None and board_costs(board.name) is None:
        raise UserError(
            f"max_ms: board {board.name} has no measured instructions per op kind "
            "(run benchmarks/board_costs.py --board for it)",
            options=("max_ms",),
        )
    return Budgets(region.size - reserve_ram, board.flash[0].size - reserve_flash, max_ms)


def _first_fitting(candidates: Sequence[T], fits: Callable[[T], bool], guess: int = 0) -> T | None:
    """The first candidate (most wanted first) that fits, every later one fitting too: from
    ``guess``, steps of 1, 2, 4 ... until the answer is bracketed, then bisection. A good guess
    costs two or three footprints."""
    n = len(candidates)
    if n == 0:
        return None
    at = min(max(guess, 0), n - 1)
    if fits(candidates[at]):
        hi, step = at, 1  # hi fits: look for an earlier one that fits too
        while hi > 0:
            probe = max(0, hi - step)
            if not fits(candidates[probe]):
                lo = probe
                break
            hi, step = probe, step * 2
        else:
            return candidates[0]
    else:
        lo, step = at, 1  # lo does not fit: look later
        while True:
            if lo == n - 1:
                return None
            probe = min(n - 1, lo + step)
            if fits(candidates[probe]):
                hi = probe
                break
            lo, step = probe, step * 2
    return candidates[_bisect(lo, hi, lambda i: fits(candidates[i]))]


def _bisect(lo: int, hi: int, fits_at: Callable[[int], bool]) -> int:
    """The first index in (lo, hi] that fits, given that ``hi`` fits, ``lo`` does not and fitting
    is monotone along the indices (lo may be -1: nothing before the first)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits_at(mid):
            hi = mid
        else:
            lo = mid
    return hi


class _Fitter:
    def __init__(self, spec: ArchSpec, board: Board, limits: Budgets) -> None:
        self.spec, self.board, self.limits = spec, board, limits
        self._specs: dict[tuple[int, float], ArchSpec | None] = {}
        self._footprints: dict[tuple[int, float], Footprint] = {}
        self._upper: dict[tuple[int, float], Footprint] = {}  # arena from the plain liveness plan
        self._last: tuple[Footprint, tuple[int, float]] | None = None
        self._by_width: dict[float, Footprint] = {}  # the engine's arrays depend on the width alone
        self._peaks: dict[tuple[int, float], int] = {}  # analytic peaks, for guesses

    def build(self, resolution: int, width: float) -> ArchSpec | None:
        """The spec at this resolution and width; None below the channel limit."""
        key = (resolution, width)
        if key not in self._specs:
            s = self.spec
            try:
                self._specs[key] = compound_scale(
                    s.phi,
                    alpha=s.alpha,
                    beta=s.beta,
                    gamma=s.gamma,
                    variant=s.variant,
                    classes=s.classes,
                    resolution=resolution,
                    width=width,
                    depth=s.depth_mult,
                )
            except UserError:
                self._specs[key] = None
        return self._specs[key]

    def footprint(self, resolution: int, width: float, exact: bool = True) -> Footprint:
        """``exact``: with the code generator's own plan (chunked modes, tiled first layers),
        else with the plain liveness plan, an upper bound of its arena that is far cheaper to
        make (the chunked modes' choice plans an arena per candidate mode)."""
        key = (resolution, width)
        cache = self._footprints if exact else self._upper
        if key not in cache:
            spec = self.build(resolution, width)
            assert spec is not None
            known = self._by_width.get(width)
            fp = footprint(spec, self.board, known.size if known else None, exact=exact)
            cache[key] = fp
            self._by_width.setdefault(width, fp)
            self._last = fp, key
        return cache[key]

    def fits(self, resolution: int, width: float, ram_and_time_only: bool = False) -> bool:
        """Whether the code generator's plan fits: the upper-bound plan decides when it fits
        already, the exact one only near the limit."""
        for exact in (False, True):
            fp = self.footprint(resolution, width, exact)
            if ram_and_time_only:
                fp = dataclasses.replace(fp, flash_bytes=0)
            if self.limits.fits(fp, self.board):
                return True
        return False

    def guess(self, candidates: Sequence[tuple[int, float]], ram_and_time_only: bool = False) -> int:
        """The index of the first candidate the analytic estimates (``arch.estimate``) say fits,
        scaled by how far they were from the last footprint measured (the first time, from one
        measured where the unscaled estimates point): a starting point only."""
        if self._last is None:
            self.footprint(
                *candidates[self._estimated_index(candidates, ram_and_time_only, _PRIOR)], exact=False
            )
        assert self._last is not None
        fp, (res, width) = self._last
        ref = self.build(res, width)
        assert ref is not None
        ms = fp.latency_ms(self.board)
        scale = (
            fp.ram_bytes / max(self._ram_estimate(ref), 1),
            fp.flash_bytes / max(self._flash_estimate(ref), 1),
            None if ms is None else ms / max(ref.macs, 1),
        )
        return self._estimated_index(candidates, ram_and_time_only, scale)

    def _estimated_index(
        self,
        candidates: Sequence[tuple[int, float]],
        ram_and_time_only: bool,
        scale: tuple[float, float, float | None],
    ) -> int:
        ram_k, flash_k, ms_k = scale

        def fits(candidate: tuple[int, float]) -> bool:
            spec = self.build(*candidate)
            if spec is None:
                return True  # below the channel limit: nothing later to guess
            if self._ram_estimate(spec) * ram_k > self.limits.sram_bytes:
                return False
            if not ram_and_time_only and self._flash_estimate(spec) * flash_k > self.limits.flash_bytes:
                return False
            return self.limits.max_ms is None or ms_k is None or spec.macs * ms_k <= self.limits.max_ms

        # The estimates grow along the candidates too: bisect them (they cost milliseconds each).
        if fits(candidates[0]):
            return 0
        hi = _bisect(0, len(candidates) - 1, lambda i: fits(candidates[i]))
        spec = self.build(*candidates[hi])
        return hi - 1 if spec is None and hi > 0 else hi

    def _ram_estimate(self, spec: ArchSpec) -> int:
        key = (spec.resolution, spec.width_mult)
        if key not in self._peaks:
            self._peaks[key] = spec.peak_activation_bytes
        return self._peaks[key]

    @staticmethod
    def _flash_estimate(spec: ArchSpec) -> int:
        return spec.weight_bytes + 3 * spec.resolution**2  # weights and the test vector's input

    def widest(self, resolution: int, top: float) -> float:
        """The widest width on the grid, at most ``top``, that fits at ``resolution`` (else the narrowest)."""
        widths = [w for w in self.widths(resolution) if w <= top]
        guess = self.guess([(resolution, w) for w in widths])
        return _first_fitting(widths, lambda w: self.fits(resolution, w), guess) or widths[-1]

    def resolutions(self) -> list[int]:
        """The compound-scaled resolution, then the multiples of the step below it, down to 16 px."""
        top = self.spec.resolution
        below = range((top - 1) // RESOLUTION_STEP * RESOLUTION_STEP, MIN_RESOLUTION - 1, -RESOLUTION_STEP)
        return [top, *below]

    def widths(self, resolution: int) -> list[float]:
        """The compound-scaled width, then the ``WIDTH_STEP`` grid below it down to the channel limit."""
        top = self.spec.width_mult
        out = [top]
        k = math.ceil(round(top / WIDTH_STEP, 6)) - 1
        while k > 0:
            w = round(k * WIDTH_STEP, 6)
            if w < top:
                if self.build(resolution, w) is None:
                    break
                out.append(w)
            k -= 1
        return out


def fit_to_board(
    spec: ArchSpec,
    board: Board,
    reserve_ram: int = DEFAULT_RESERVE_RAM_BYTES,
    reserve_flash: int = DEFAULT_RESERVE_FLASH_BYTES,
    max_ms: float | None = None,
) -> ArchSpec:
    """``spec`` (compound-scaled, unfitted) with resolution and width lowered to fit ``board``.

    Raises ``UserError`` (one line, with the numbers) when nothing fits.
    """
    limits = budgets(board, reserve_ram, reserve_flash, max_ms)
    f = _Fitter(spec, board, limits)
    explicit_res, explicit_width = "resolution" in spec.overrides, "width" in spec.overrides
    w0 = spec.width_mult
    resolutions = [spec.resolution] if explicit_res else f.resolutions()

    # With the width given, nothing else can make room in flash: the resolution fits all at once.
    first_only = not explicit_width
    guess = f.guess([(r, w0) for r in resolutions], ram_and_time_only=first_only)
    res = (
        _first_fitting(resolutions, lambda r: f.fits(r, w0, ram_and_time_only=first_only), guess)
        or resolutions[-1]
    )
    width = w0 if explicit_width else f.widest(res, w0)
    # Take resolution back while the narrower network's RAM and time allow, then the width that
    # fits the flash there (the test vector grows with the resolution): resolution comes first.
    for _ in range(_MAX_ROUNDS):
        if explicit_res or width >= w0:
            break
        upward = resolutions[: resolutions.index(res) + 1]
        guess = f.guess([(r, width) for r in upward], ram_and_time_only=True)
        higher = _first_fitting(upward, lambda r, w=width: f.fits(r, w, ram_and_time_only=True), guess) or res
        if higher == res:
            break
        narrower = width if explicit_width else f.widest(higher, width)
        if not f.fits(higher, narrower):
            break
        res, width = higher, narrower

    fp = f.footprint(res, width)
    if not limits.fits(fp, board):
        raise _does_not_fit(f, res, width, fp)
    fitted = f.build(res, width)
    assert fitted is not None
    # Keep the raw compound-scaled values of the unfitted spec beside the fitted ones.
    stages = tuple(
        dataclasses.replace(
            s,
            scaled_resolution=base.scaled_resolution,
            scaled_channels=base.scaled_channels,
            scaled_layers=base.scaled_layers,
        )
        for s, base in zip(fitted.stages, spec.stages, strict=True)
    )
    info = FitInfo(
        board=board.name,
        scaled_resolution=spec.resolution,
        scaled_width_mult=spec.width_mult,
        resolution=res,
        width_mult=width,
        peak_activation_bytes=fitted.peak_activation_bytes,
        weight_bytes=fp.weights_bytes,
        sram_bytes=limits.sram_bytes,
        flash_bytes=limits.flash_bytes,
        arena_bytes=fp.arena_bytes,
        ram_bytes=fp.ram_bytes,
        code_bytes=fp.code_bytes,
        flash_needed_bytes=fp.flash_bytes,
        firmware_flash_bytes=firmware_flash_bytes(fitted, board, fp, reserve_flash),
        reserve_ram_bytes=reserve_ram,
        reserve_flash_bytes=reserve_flash,
        instructions=fp.instructions,
        latency_ms=fp.latency_ms(board),
        max_ms=max_ms,
    )
    return dataclasses.replace(fitted, stages=stages, board=board.name, fit=info, overrides=spec.overrides)


def _does_not_fit(f: _Fitter, res: int, width: float, fp: Footprint) -> UserError:
    board, limits = f.board, f.limits
    where = f"at {res} px and width x{width:.2f}"
    if fp.ram_bytes > limits.sram_bytes:
        return UserError(
            f"board {board.name}: the firmware needs {fp.ram_bytes} bytes of SRAM {where} (arena "
            f"{fp.arena_bytes}), the budget is {limits.sram_bytes} bytes (largest region "
            f"{board.largest_sram_region.size} minus reserve_ram {board.largest_sram_region.size - limits.sram_bytes})",
            options=("board", "reserve_ram"),
        )
    if fp.flash_bytes + CODE_ESTIMATE_SLACK_BYTES > limits.flash_bytes:
        return UserError(
            f"board {board.name}: the firmware needs {fp.flash_bytes} bytes of flash {where} (weights "
            f"{fp.weights_bytes}, code {fp.code_bytes}), the budget is {limits.flash_bytes} bytes "
            f"({board.flash[0].size} minus reserve_flash {board.flash[0].size - limits.flash_bytes})",
            options=("board", "reserve_flash"),
        )
    # Only the latency budget is missed: name the fastest spec there is and its time.
    res_min = f.resolutions()[-1] if "resolution" not in f.spec.overrides else res
    w_min = f.widths(res_min)[-1] if "width" not in f.spec.overrides else width
    fastest = f.footprint(res_min, w_min).latency_ms(board)
    return UserError(
        f"max_ms {limits.max_ms:g}: no spec meets it on board {board.name} at {board.clock_hz / 1e6:g} MHz; "
        f"the fastest, {res_min} px at width x{w_min:.2f}, takes {fastest:.1f} ms",
        options=("max_ms", "board"),
    )
