"""Compound scaling: d = α^φ, w = β^φ, r = γ^φ applied to the B0 table, with the limits
below which a network stops making sense.
"""

from __future__ import annotations

import math
import numbers

from mcu_effnet.arch.rounding import (
    CHANNEL_DIVISOR,
    round_channels,
    round_layers,
    round_resolution,
    same_output_size,
)
from mcu_effnet.arch.spec import ArchSpec, StageSpec
from mcu_effnet.arch.table import (
    B0_STAGES,
    BASE_RESOLUTION,
    FIXED_REPEATS_LITE,
    FIXED_STAGES_LITE,
    VARIANTS,
)
from mcu_effnet.errors import UserError

MIN_RESOLUTION = 16  # px; below this the 32x downsampling leaves nothing to pool
# A stage whose raw scaled channels fall below this is refused: rounding lifts every stage to
# at least CHANNEL_DIVISOR (8), so below 4 raw channels rounding would more than double the
# stage and the network is no longer the scaled B0. phi = -8 (stage 2 at 7.5) still passes.
MIN_SCALED_CHANNELS = CHANNEL_DIVISOR / 2


def validate_coefficients(alpha: float, beta: float, gamma: float) -> None:
    for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 1:
            raise UserError(f"{name} must be greater than 1 (got {value})", options=(name,))


def validate_classes(classes: object) -> int:
    if isinstance(classes, bool) or not isinstance(classes, numbers.Real) or not float(classes).is_integer():
        raise UserError(f"classes must be an integer of at least 2 (got {classes!r})", options=("classes",))
    if int(classes) < 2:
        raise UserError(
            f"classes must be an integer of at least 2 (got {int(classes)})", options=("classes",)
        )
    return int(classes)


def _positive(name: str, value: float) -> float:
    if not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise UserError(f"{name} must be a positive number (got {value})", options=(name,))
    return float(value)


def compound_scale(
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
) -> ArchSpec:
    """The compound-scaled network, not fitted to any board.

    ``resolution`` (px), ``width`` and ``depth`` (multipliers) replace the values φ gives.
    Raises ``UserError`` for α/β/γ ≤ 1, a class count that is not an integer ≥ 2, an input
    below ``MIN_RESOLUTION`` px, or a stage whose raw scaled channels fall below
    ``MIN_SCALED_CHANNELS`` (where rounding to 8 would more than double it).
    """
    if not isinstance(phi, numbers.Real) or not math.isfinite(phi):
        raise UserError(f"phi must be a finite number (got {phi})", options=("phi",))
    validate_coefficients(alpha, beta, gamma)
    classes = validate_classes(classes)
    if variant not in VARIANTS:
        raise UserError(
            f"variant must be one of {', '.join(VARIANTS)} (got {variant!r})", options=("variant",)
        )

    d = alpha**phi if depth is None else _positive("depth", depth)
    w = beta**phi if width is None else _positive("width", width)
    r = gamma**phi
    overrides = tuple(
        n for n, v in (("resolution", resolution), ("width", width), ("depth", depth)) if v is not None
    )

    if resolution is None:
        res = round_resolution(BASE_RESOLUTION * r)
        if res < MIN_RESOLUTION:
            raise UserError(
                f"phi {phi:g} scales the input to {res} px (gamma^phi = {r:.3f}); "
                f"the minimum is {MIN_RESOLUTION} px",
                options=("phi",),
            )
    else:
        if isinstance(resolution, bool) or not float(resolution).is_integer():
            raise UserError(
                f"resolution must be an integer number of pixels (got {resolution})", options=("resolution",)
            )
        res = int(resolution)
        if res < MIN_RESOLUTION:
            raise UserError(
                f"resolution {res} is below the minimum of {MIN_RESOLUTION} px", options=("resolution",)
            )
    r_eff = r if resolution is None else res / BASE_RESOLUTION

    stages = _scaled_stages(res, r_eff, w, d, variant, phi, width is not None)
    return ArchSpec(
        phi=float(phi),
        alpha=float(alpha),
        beta=float(beta),
        gamma=float(gamma),
        variant=variant,
        classes=classes,
        resolution=res,
        width_mult=w,
        depth_mult=d,
        resolution_mult=r,
        stages=stages,
        overrides=overrides,
    )


def _scaled_stages(
    res: int, r: float, w: float, d: float, variant: str, phi: float, explicit_width: bool
) -> tuple[StageSpec, ...]:
    stages: list[StageSpec] = []
    in_res, in_ch = res, 3
    for base in B0_STAGES:
        fixed_ch = variant == "lite" and base.stage in FIXED_STAGES_LITE
        raw_ch = float(base.channels) if fixed_ch else base.channels * w
        if raw_ch < MIN_SCALED_CHANNELS:
            arg = f"width {w:g}" if explicit_width else f"phi {phi:g} (width {w:.3f})"
            raise UserError(
                f"{arg} scales stage {base.stage} to {raw_ch:.2f} channels; the minimum is "
                f"{MIN_SCALED_CHANNELS:g} raw channels (rounding to a multiple of {CHANNEL_DIVISOR} "
                f"would more than double the stage)",
                options=("width",) if explicit_width else ("phi",),
            )
        channels = base.channels if fixed_ch else round_channels(raw_ch)
        if not base.is_mbconv:
            raw_layers, layers = 1.0, 1  # stem and head are single layers, never repeated
        elif variant == "lite" and base.stage in FIXED_REPEATS_LITE:
            raw_layers, layers = float(base.layers), base.layers
        else:
            raw_layers = base.layers * d
            layers = round_layers(raw_layers)
        stages.append(
            StageSpec(
                stage=base.stage,
                operator=base.operator,
                kernel=base.kernel,
                stride=base.stride,
                expand_ratio=base.expand_ratio,
                resolution=in_res,
                in_channels=in_ch,
                channels=channels,
                layers=layers,
                scaled_resolution=base.resolution * r,
                scaled_channels=raw_ch,
                scaled_layers=raw_layers,
            )
        )
        in_res, in_ch = same_output_size(in_res, base.stride), channels
    return tuple(stages)
