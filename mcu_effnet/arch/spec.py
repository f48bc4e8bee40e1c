"""The frozen description of one network: ``ArchSpec`` with its stages, blocks and fit record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mcu_effnet.arch.rounding import same_output_size
from mcu_effnet.arch.table import ACTIVATION, SE_RATIO


@dataclass(frozen=True)
class StageSpec:
    """One stage (paper numbering 1–9) as built, beside its raw compound-scaled values.

    ``resolution`` is the stage's input resolution; ``channels`` its output channels;
    ``scaled_*`` are the values before rounding and fitting (e.g. 109.07 px, 77.9 channels).
    """

    stage: int
    operator: str
    kernel: int
    stride: int
    expand_ratio: int
    resolution: int
    in_channels: int
    channels: int
    layers: int
    scaled_resolution: float
    scaled_channels: float
    scaled_layers: float

    @property
    def is_mbconv(self) -> bool:
        return self.expand_ratio > 0

    @property
    def out_resolution(self) -> int:
        return same_output_size(self.resolution, self.stride)


@dataclass(frozen=True)
class BlockSpec:
    """One MBConv layer: the first of a stage strides and changes channels, the rest repeat."""

    stage: int
    index: int  # layer index inside the stage
    in_channels: int
    out_channels: int
    mid_channels: int  # channels after the expansion (== in_channels when expand_ratio is 1)
    expand_ratio: int
    kernel: int
    stride: int
    in_resolution: int
    se_channels: int  # 0: no squeeze-excitation

    @property
    def out_resolution(self) -> int:
        return same_output_size(self.in_resolution, self.stride)

    @property
    def has_expand(self) -> bool:
        return self.expand_ratio != 1

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


@dataclass(frozen=True)
class FitInfo:
    """How a spec was fitted to a board, and the budgets it was held against.

    ``sram_bytes`` / ``flash_bytes`` are the budgets (largest SRAM region and flash less the
    application's reserves), not the board's raw sizes. ``peak_activation_bytes`` is the
    analytic estimate (no op in place, nothing fused); ``arena_bytes`` and ``ram_bytes`` are
    what the code generator plans (``mcu_effnet.fitting``), ``weight_bytes`` the engine's const
    arrays at their narrowest, ``firmware_flash_bytes`` the flash a firmware generated from the
    spec will link to (weights widened for the DSP kernels within the reserve).
    """

    board: str
    scaled_resolution: int
    scaled_width_mult: float
    resolution: int
    width_mult: float
    peak_activation_bytes: int
    weight_bytes: int
    sram_bytes: int
    flash_bytes: int
    arena_bytes: int | None = None
    ram_bytes: int | None = None
    code_bytes: int | None = None
    flash_needed_bytes: int | None = None
    firmware_flash_bytes: int | None = None
    reserve_ram_bytes: int | None = None
    reserve_flash_bytes: int | None = None
    instructions: int | None = None  # per inference, estimated from the board's measured costs
    latency_ms: float | None = None  # instructions at the board's clock
    max_ms: float | None = None


@dataclass(frozen=True)
class ArchSpec:
    """A compound-scaled (and possibly board-fitted) EfficientNet.

    ``width_mult``, ``depth_mult`` and ``resolution`` are the values the network is built
    with (after fitting); ``resolution_mult`` is γ^φ. ``fit`` records the compound-scaled
    values and the budgets when the spec was fitted to ``board``.
    """

    phi: float
    alpha: float
    beta: float
    gamma: float
    variant: str
    classes: int
    resolution: int
    width_mult: float
    depth_mult: float
    resolution_mult: float
    stages: tuple[StageSpec, ...]
    board: str | None = None
    fit: FitInfo | None = None
    overrides: tuple[str, ...] = field(default=())  # which of resolution/width/depth were explicit

    @property
    def activation(self) -> str:
        return ACTIVATION[self.variant]

    @property
    def se_ratio(self) -> float:
        return SE_RATIO[self.variant]

    @property
    def stem(self) -> StageSpec:
        return self.stages[0]

    @property
    def head(self) -> StageSpec:
        return self.stages[-1]

    @property
    def mbconv_stages(self) -> tuple[StageSpec, ...]:
        return tuple(s for s in self.stages if s.is_mbconv)

    def blocks(self) -> list[list[BlockSpec]]:
        """The MBConv layers, one list per MBConv stage (stages 2–8)."""
        out: list[list[BlockSpec]] = []
        for st in self.mbconv_stages:
            layers = []
            res, cin = st.resolution, st.in_channels
            for i in range(st.layers):
                stride = st.stride if i == 0 else 1
                se = max(1, int(cin * self.se_ratio)) if self.se_ratio > 0 else 0
                layers.append(
                    BlockSpec(
                        stage=st.stage,
                        index=i,
                        in_channels=cin,
                        out_channels=st.channels,
                        mid_channels=cin * st.expand_ratio,
                        expand_ratio=st.expand_ratio,
                        kernel=st.kernel,
                        stride=stride,
                        in_resolution=res,
                        se_channels=se,
                    )
                )
                res, cin = same_output_size(res, stride), st.channels
            out.append(layers)
        return out

    # Estimates (see mcu_effnet.arch.estimate); imported lazily to keep this module data-only.
    @property
    def params(self) -> int:
        from mcu_effnet.arch.estimate import total_params

        return total_params(self)

    @property
    def macs(self) -> int:
        from mcu_effnet.arch.estimate import total_macs

        return total_macs(self)

    @property
    def weight_bytes(self) -> int:
        from mcu_effnet.arch.estimate import flash_bytes

        return flash_bytes(self)

    @property
    def peak_activation_bytes(self) -> int:
        from mcu_effnet.arch.estimate import peak_activation_bytes

        return peak_activation_bytes(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; ``ArchSpec.from_dict`` gives back an equal spec."""
        d = asdict(self)
        d["stages"] = [asdict(s) for s in self.stages]
        d["overrides"] = list(self.overrides)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchSpec:
        d = dict(d)
        stages = tuple(StageSpec(**s) for s in d.pop("stages"))
        fit = d.pop("fit", None)
        overrides = tuple(d.pop("overrides", ()))
        return cls(stages=stages, fit=FitInfo(**fit) if fit else None, overrides=overrides, **d)
