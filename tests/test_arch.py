"""mcu_effnet.arch: scaling, rounding, estimates and fitting against paper / reference numbers,
the torch models and an independent hook-based measurement of live activations."""

from __future__ import annotations

import json

import pytest
import torch

from mcu_effnet.arch import ArchSpec, make_spec
from mcu_effnet.arch.rounding import round_channels, round_layers
from mcu_effnet.errors import UserError
from mcu_effnet.models import build_float, fold_batchnorm

PHIS = range(-8, 2)


def test_worked_example_phi7_gamma11():
    """Paper: phi=7, gamma=1.1 scales stage 4 (56x56, 40 ch, 2 layers) to 109x109, 78 ch, 7 layers."""
    spec = make_spec(7, gamma=1.1, board=None)
    s4 = spec.stages[3]
    assert (s4.stage, s4.operator, s4.kernel) == (4, "MBConv6", 5)
    assert round(s4.scaled_resolution) == 109
    assert round(s4.scaled_channels) == 78
    assert round(s4.scaled_layers) == 7
    # built values: channels to a multiple of 8 (77.9 -> 80), layers ceil(7.17) = 8
    assert (s4.channels, s4.layers) == (80, 8)


def test_b0_reference_params_and_macs():
    spec = make_spec(0, board=None)
    assert spec.resolution == 224
    assert [s.channels for s in spec.stages] == [32, 16, 24, 40, 80, 112, 192, 320, 1280]
    assert [s.layers for s in spec.stages] == [1, 1, 2, 2, 3, 3, 4, 1, 1]
    assert spec.params == 5_288_548  # timm / TF reference efficientnet_b0
    assert 0.38e9 < spec.macs < 0.40e9  # paper: 0.39 B FLOPs
    model = build_float(spec)
    assert sum(p.numel() for p in model.parameters()) == spec.params


def test_b4_and_lite0_reference_configs():
    """Published configs: B4 (w 1.4, d 1.8) and EfficientNet-Lite0 as in the reference code."""
    b4 = make_spec(0, width=1.4, depth=1.8, resolution=380, board=None)
    assert [s.channels for s in b4.stages] == [48, 24, 32, 56, 112, 160, 272, 448, 1792]
    assert [s.layers for s in b4.stages] == [1, 2, 4, 4, 6, 6, 8, 2, 1]
    assert b4.params == 19_341_616  # timm efficientnet_b4
    lite0 = make_spec(0, variant="lite", board=None)
    assert lite0.params == 4_652_008  # timm efficientnet_lite0


def test_lite_keeps_stem_head_and_end_repeats():
    lite = make_spec(1, variant="lite", board=None)
    full = make_spec(1, board=None)
    assert (lite.stem.channels, lite.head.channels) == (32, 1280)
    assert full.stem.channels == round_channels(32 * 1.1) and full.head.channels == round_channels(1280 * 1.1)
    assert (lite.stages[1].layers, lite.stages[7].layers) == (1, 1)
    assert (full.stages[1].layers, full.stages[7].layers) == (2, 2)  # ceil(1.2)
    assert all(b.se_channels == 0 for stage in lite.blocks() for b in stage)
    small = make_spec(-6, variant="lite", board=None)
    assert (small.stem.channels, small.head.channels) == (32, 1280)


def test_rounding_rules():
    assert round_channels(16 * 1.1**-8) == 8  # 7.46 lifted to the divisor
    assert round_channels(30) == 32 and round_channels(27.9) == 24 + 8 * (24 < 0.9 * 27.9)
    assert round_channels(83.0) == 80  # 80 >= 0.9 * 83: rounds down
    assert round_channels(44.0) == 48  # 44 + 4 = 48
    assert round_layers(2.0000000001) == 2 and round_layers(2.1) == 3 and round_layers(0.3) == 1


@pytest.mark.parametrize("variant", ["full", "lite"])
def test_params_and_macs_fall_with_phi(variant):
    specs = [make_spec(phi, variant=variant, board=None) for phi in PHIS]
    for smaller, larger in zip(specs, specs[1:], strict=False):
        assert smaller.params < larger.params
        assert smaller.macs < larger.macs
        assert smaller.resolution < larger.resolution


def _hook_macs(model: torch.nn.Module, res: int) -> int:
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, torch.nn.Conv2d):
            total += out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, torch.nn.Linear):
            total += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.rand(1, 3, res, res))
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("phi,variant", [(-4, "full"), (-1, "lite"), (0, "full")])
def test_analytic_counts_equal_torch(phi, variant):
    spec = make_spec(phi, variant=variant, classes=10, board="stm32")
    model = build_float(spec)
    assert sum(p.numel() for p in model.parameters()) == spec.params
    assert _hook_macs(model, spec.resolution) == spec.macs


def test_json_round_trip():
    spec = make_spec(-1, variant="lite", classes=10)
    again = ArchSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    unfitted = make_spec(-3, board=None)
    assert ArchSpec.from_dict(json.loads(json.dumps(unfitted.to_dict()))) == unfitted


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(phi=-1, alpha=1.0), "alpha must be greater than 1"),
        (dict(phi=-1, beta=0.9), "beta must be greater than 1"),
        (dict(phi=-1, gamma=1), "gamma must be greater than 1"),
        (dict(phi=-1, classes=2.5), "classes must be an integer"),
        (dict(phi=-1, classes=1), "classes must be an integer"),
        (dict(phi=-1, classes=True), "classes must be an integer"),
        (dict(phi=-1, resolution=15), "resolution 15 is below the minimum of 16 px"),
        (dict(phi=-20), "16 px"),
        (dict(phi=-16), "stage 2"),
        (dict(phi=-1, width=0.2), "width 0.2 scales stage"),
        (dict(phi=-1, variant="tiny"), "variant must be one of"),
        (dict(phi=-1, board="esp32"), "board 'esp32' is unknown"),
    ],
)
def test_bad_input_raises_user_error(kwargs, needle):
    with pytest.raises(UserError, match=needle.replace("-", r"\-")):
        make_spec(**{"board": None, **kwargs})


def test_phi_minus_8_is_the_smallest_supported():
    spec = make_spec(-8, board=None)
    assert spec.stages[1].channels == 8 and spec.stages[1].scaled_channels < 8
    assert spec.resolution == round(224 * 1.15**-8)


# --- fitting and the peak-activation estimate ---------------------------------------------


def measured_peak_bytes(model: torch.nn.Module, res: int) -> int:
    """Largest set of live tensors while running ``model`` (batch 1, int8 = 1 byte/element).

    Every leaf module call is an op; a tensor is live from the op that writes it to the last
    op that reads it (the input from the start, the output to the end). Calls whose output is
    their input's storage (Identity, an in-place ReLU6 that the int8 graph fuses) are no op.
    Tensors are told apart by storage address; all of them are kept alive so none is reused.
    """
    ops: list[tuple[list[int], int]] = []
    size: dict[int, int] = {}
    keep: list[torch.Tensor] = []

    def hook(mod, inputs, output):
        ins = [t for t in inputs if torch.is_tensor(t)]
        ptrs = [t.untyped_storage().data_ptr() for t in ins]
        out = output.untyped_storage().data_ptr()
        keep.extend([*ins, output])
        for t, p in zip([*ins, output], [*ptrs, out], strict=True):
            size[p] = t.numel()
        if out not in ptrs:
            ops.append((ptrs, out))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    x = torch.rand(1, 3, res, res)
    with torch.no_grad():
        y = model(x)
    for h in handles:
        h.remove()
    first = {x.untyped_storage().data_ptr(): -1}
    last: dict[int, int] = {}
    for i, (ins, out) in enumerate(ops):
        first.setdefault(out, i)
        for p in ins:
            last[p] = i
        last.setdefault(out, i)
    last[y.untyped_storage().data_ptr()] = len(ops)
    return max(sum(size[p] for p in first if first[p] <= i <= last.get(p, -2)) for i in range(len(ops)))


# Fitting itself (planned RAM, engine flash, reserves, latency) is tested in tests/test_fitting.py
# and against built firmware in tests/test_fit_firmware.py; here the analytic peak, which the
# fit reports as the estimate, against the hooks.
CASES = [(phi, "full", 1000, res) for phi in (-4, -1, 0) for res in (64, 96)] + [(-1, "lite", 10, 88)]


@pytest.mark.parametrize("phi,variant,classes,resolution", CASES)
def test_peak_estimate_matches_hooks(phi, variant, classes, resolution):
    spec = make_spec(phi, variant=variant, classes=classes, resolution=resolution, board=None)
    model = fold_batchnorm(build_float(spec))
    assert measured_peak_bytes(model, spec.resolution) == spec.peak_activation_bytes


def test_fit_keeps_depth_and_the_scaled_values():
    spec = make_spec(-1, classes=10, board="stm32")
    unfitted = make_spec(-1, classes=10, board=None)
    assert spec.resolution <= unfitted.resolution and spec.width_mult <= unfitted.width_mult
    assert spec.resolution == unfitted.resolution or spec.resolution % 8 == 0
    assert spec.depth_mult == unfitted.depth_mult
    # raw scaled values are the compound-scaled ones, not the fitted ones
    assert [s.scaled_channels for s in spec.stages] == [s.scaled_channels for s in unfitted.stages]


def test_explicit_resolution_and_width_are_kept():
    spec = make_spec(-1, classes=10, resolution=48, board="stm32f405")
    assert spec.resolution == 48
    spec = make_spec(-1, classes=10, width=0.35, board="stm32f405")
    assert spec.width_mult == 0.35 and spec.resolution % 8 == 0
    with pytest.raises(UserError, match="flash"):  # an explicit width is not lowered
        make_spec(-1, classes=10, width=0.5, board="stm32f405")


def test_too_big_for_board_names_both_numbers():
    with pytest.raises(UserError, match=r"stm32f746g-disco.*\d+ bytes.*\d+ bytes"):
        make_spec(0, variant="lite", classes=1000, board="stm32")


def test_arch_and_scale_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, mcu_effnet.arch, mcu_effnet.arch.scale_report; "
        "mcu_effnet.arch.make_spec(-1).peak_activation_bytes; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
