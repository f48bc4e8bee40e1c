"""mcu_effnet.fitting: a spec fitted with the code generator's plan, the engine's flash, the
application's reserves and a latency budget. Against built firmware: tests/test_fit_firmware.py."""

from __future__ import annotations

import json

import pytest

from mcu_effnet.arch import ArchSpec, make_spec
from mcu_effnet.boards import get_board
from mcu_effnet.boards.costs import DEFAULT_RESERVE_FLASH_BYTES, DEFAULT_RESERVE_RAM_BYTES, board_costs
from mcu_effnet.codegen.engine import engine_size, generate_engine
from mcu_effnet.codegen.project_plan import CODE_ESTIMATE_SLACK_BYTES
from mcu_effnet.errors import UserError
from mcu_effnet.fitting.footprint import footprint
from mcu_effnet.fitting.search import budgets
from mcu_effnet.fitting.spec_graph import spec_graph


def _at(spec: ArchSpec, resolution: int, width: float) -> ArchSpec:
    return make_spec(
        spec.phi, variant=spec.variant, classes=spec.classes, resolution=resolution, width=width, board=None
    )


def test_stm32_fits_more_than_the_analytic_88_px_with_the_default_reserves():
    spec = make_spec(-1, classes=10, board="stm32")
    board, fit = get_board("stm32"), spec.fit
    assert spec.resolution > 88  # the analytic fit's answer before the engine's own numbers
    assert fit.sram_bytes == board.largest_sram_region.size - DEFAULT_RESERVE_RAM_BYTES
    assert fit.flash_bytes == board.flash[0].size - DEFAULT_RESERVE_FLASH_BYTES
    assert fit.ram_bytes <= fit.sram_bytes
    assert fit.flash_needed_bytes + CODE_ESTIMATE_SLACK_BYTES <= fit.flash_bytes
    assert fit.firmware_flash_bytes <= fit.flash_bytes
    # planned RAM below the analytic estimate: SiLU fused, element-wise ops in place
    assert fit.arena_bytes < fit.peak_activation_bytes


def test_fit_is_tight_on_width_then_resolution():
    """One width step more at the fitted resolution no longer fits, nor 8 px more at the fitted width."""
    board = get_board("stm32f405")
    spec = make_spec(-1, classes=10, board=board.name)
    limits = budgets(board)
    assert limits.fits(footprint(_at(spec, spec.resolution, spec.width_mult), board), board)
    wider = footprint(_at(spec, spec.resolution, round(spec.width_mult + 0.01, 2)), board)
    assert not limits.fits(wider, board)
    sharper = footprint(_at(spec, spec.resolution + 8, spec.width_mult), board)
    assert not limits.fits(sharper, board)


def test_footprint_is_the_engines_plan_and_arrays():
    board = get_board("stm32")
    spec = make_spec(-4, classes=10, resolution=64, width=0.4, board=None)
    fp = footprint(spec, board)
    size = engine_size(spec_graph(spec), dsp=True, widen_budget=0)
    assert (fp.arena_bytes, fp.weights_bytes) == (size.arena_bytes, size.weights_bytes)
    for budget in (0, 4096, None):  # sizing without rendering gives what the C holds
        engine = generate_engine(spec_graph(spec), dsp=True, widen_budget=budget)
        sized = engine_size(spec_graph(spec), dsp=True, widen_budget=budget)
        assert (sized.arena_bytes, sized.weights_bytes) == (engine.arena_bytes, engine.weights_bytes)
    assert sum(sized.calls.values()) == engine.files["model.c"].count("(&op")
    assert fp.flash_bytes == fp.code_bytes + size.weights_bytes + size.io_bytes
    costs = board_costs(board.name)
    assert costs is not None and fp.code_bytes > costs.base_flash_bytes


def test_bigger_reserves_give_a_smaller_spec():
    loose = make_spec(-1, classes=10, board="stm32", reserve_ram=0, reserve_flash=0)
    tight = make_spec(-1, classes=10, board="stm32", reserve_ram=96 * 1024, reserve_flash=256 * 1024)
    assert tight.fit.flash_bytes == 768 * 1024 and tight.fit.firmware_flash_bytes <= 768 * 1024
    assert (tight.resolution, tight.width_mult) < (loose.resolution, loose.width_mult)
    assert tight.weight_bytes < loose.weight_bytes


def test_latency_budget_is_met():
    free = make_spec(-1, classes=10, board="stm32")
    budget = free.fit.latency_ms / 2
    fast = make_spec(-1, classes=10, board="stm32", max_ms=budget)
    assert fast.fit.latency_ms <= budget and fast.fit.max_ms == budget
    assert fast.macs < free.macs


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(reserve_ram=320 * 1024), r"reserve_ram 327680 bytes leaves nothing of board stm32f746g-disco"),
        (dict(reserve_flash=2 * 1024 * 1024), r"reserve_flash 2097152 bytes leaves nothing"),
        (dict(reserve_ram=-1), r"reserve_ram must be 0 or more"),
        (
            dict(max_ms=0.01),
            r"max_ms 0.01: no spec meets it .* the fastest, 16 px at width x0\.\d+, takes [\d.]+ ms",
        ),
        (dict(max_ms=-5), r"max_ms must be a positive number"),
    ],
)
def test_bad_budgets_raise_user_error(kwargs, needle):
    with pytest.raises(UserError, match=needle) as info:
        make_spec(-1, classes=10, board="stm32", **kwargs)
    assert "\n" not in str(info.value)


def test_fit_round_trips_through_json():
    spec = make_spec(-4, classes=10, board="nrf52840dk")
    assert spec.fit.instructions and spec.fit.latency_ms
    assert ArchSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
