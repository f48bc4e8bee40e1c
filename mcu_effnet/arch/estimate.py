"""Analytic cost of a spec: parameters, MACs, flash and peak activation memory.

Parameters count the float model as built by ``mcu_effnet.models.build_float`` (conv weights
without bias, two BatchNorm parameters per channel, SE convs and the classifier with bias), so
they equal ``sum(p.numel() for p in model.parameters())``. MACs count the multiply-accumulates
of every convolution and the classifier (the usual "FLOPs" of the EfficientNet paper).
"""

from __future__ import annotations

from dataclasses import dataclass

from mcu_effnet.arch.spec import ArchSpec, BlockSpec

# Flash per output channel of every conv / FC after BN folding: the int32 bias (4 bytes) and the
# per-channel requantization constants, an int32 multiplier and an int32 shift (8 bytes).
BIAS_BYTES = 4
REQUANT_BYTES_PER_CHANNEL = 8


@dataclass(frozen=True)
class Layer:
    """One conv / FC: enough to count it. ``groups == cin`` is depthwise."""

    name: str
    cin: int
    cout: int
    kernel: int
    out_pixels: int  # output H*W (1 for SE convs and the classifier)
    groups: int = 1
    bias: bool = False  # a bias in the float model (SE convs, classifier)
    bn: bool = True  # followed by BatchNorm in the float model

    @property
    def weights(self) -> int:
        return self.cout * (self.cin // self.groups) * self.kernel * self.kernel

    @property
    def params(self) -> int:
        return self.weights + (self.cout if self.bias else 0) + (2 * self.cout if self.bn else 0)

    @property
    def macs(self) -> int:
        return self.weights * self.out_pixels

    @property
    def flash_bytes(self) -> int:
        # int8 weights; after folding every layer has an int32 bias and per-channel requant.
        return self.weights + self.cout * (BIAS_BYTES + REQUANT_BYTES_PER_CHANNEL)


def block_layers(b: BlockSpec, prefix: str) -> list[Layer]:
    out_px = b.out_resolution**2
    layers = []
    if b.has_expand:
        layers.append(Layer(f"{prefix}.expand", b.in_channels, b.mid_channels, 1, b.in_resolution**2))
    layers.append(
        Layer(f"{prefix}.dw", b.mid_channels, b.mid_channels, b.kernel, out_px, groups=b.mid_channels)
    )
    if b.se_channels:
        layers.append(Layer(f"{prefix}.se.reduce", b.mid_channels, b.se_channels, 1, 1, bias=True, bn=False))
        layers.append(Layer(f"{prefix}.se.expand", b.se_channels, b.mid_channels, 1, 1, bias=True, bn=False))
    layers.append(Layer(f"{prefix}.project", b.mid_channels, b.out_channels, 1, out_px))
    return layers


def stage_layers(spec: ArchSpec) -> dict[int, list[Layer]]:
    """Every conv / FC of the network, grouped by paper stage (1–9)."""
    stem, head = spec.stem, spec.head
    out: dict[int, list[Layer]] = {
        stem.stage: [Layer("stem", 3, stem.channels, stem.kernel, stem.out_resolution**2)]
    }
    for i, stage_blocks in enumerate(spec.blocks()):
        for b in stage_blocks:
            out.setdefault(b.stage, []).extend(block_layers(b, f"blocks.{i}.{b.index}"))
    out[head.stage] = [
        Layer("head", head.in_channels, head.channels, 1, head.resolution**2),
        Layer("classifier", head.channels, spec.classes, 1, 1, bias=True, bn=False),
    ]
    return out


@dataclass(frozen=True)
class StageCost:
    stage: int
    params: int
    macs: int
    weight_bytes: int


def stage_costs(spec: ArchSpec) -> list[StageCost]:
    return [
        StageCost(
            stage,
            sum(layer.params for layer in layers),
            sum(layer.macs for layer in layers),
            sum(layer.flash_bytes for layer in layers),
        )
        for stage, layers in stage_layers(spec).items()
    ]


def total_params(spec: ArchSpec) -> int:
    return sum(c.params for c in stage_costs(spec))


def total_macs(spec: ArchSpec) -> int:
    return sum(c.macs for c in stage_costs(spec))


def flash_bytes(spec: ArchSpec) -> int:
    """int8 weights + int32 biases + 8 bytes of requantization constants per output channel."""
    return sum(c.weight_bytes for c in stage_costs(spec))


# --- activation memory --------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One op of the int8 graph: the tensors it reads and the one it writes."""

    op: str
    inputs: tuple[str, ...]
    output: str


@dataclass(frozen=True)
class Schedule:
    """The int8 graph's activations in execution order: tensor sizes (bytes) and the op list."""

    sizes: dict[str, int]
    steps: tuple[Step, ...]
    graph_input: str

    def live_sets(self) -> list[tuple[str, ...]]:
        """The tensors live during each step (see ``peak_activation_bytes``)."""
        produced = {self.graph_input: -1}
        last_use = {self.graph_input: -1}
        for i, s in enumerate(self.steps):
            produced[s.output] = i
            last_use[s.output] = i
            for t in s.inputs:
                last_use[t] = i
        last_use[self.steps[-1].output] = len(self.steps)  # the logits stay until read out
        return [
            tuple(t for t in self.sizes if produced[t] <= i <= last_use[t] and last_use[t] >= 0)
            for i in range(len(self.steps))
        ]

    def live_bytes(self) -> list[int]:
        return [sum(self.sizes[t] for t in live) for live in self.live_sets()]


class _Builder:
    def __init__(self, graph_input: str, size: int) -> None:
        self.sizes = {graph_input: size}
        self.steps: list[Step] = []
        self.graph_input = graph_input

    def op(self, name: str, inputs: tuple[str, ...], size: int) -> str:
        self.sizes[name] = size
        self.steps.append(Step(name, inputs, name))
        return name


def _act(g: _Builder, name: str, x: str, size: int, activation: str) -> str:
    """Swish is LOGISTIC then MUL in int8 (three tensors live at the MUL); ReLU6 is fused."""
    if activation == "swish":
        s = g.op(f"{name}.sigmoid", (x,), size)
        return g.op(f"{name}.mul", (x, s), size)
    return x


def activation_schedule(spec: ArchSpec) -> Schedule:
    """The int8 graph the exporter produces, as tensors and ops, batch 1, one byte per element.

    Ops: every conv (its SAME padding is part of the op, no separate padded tensor; a fused
    ReLU6 writes the conv's output), swish as LOGISTIC + MUL, SE as MEAN → conv → act → conv →
    LOGISTIC → MUL, residual ADD, global MEAN, FULLY_CONNECTED.
    """
    act = spec.activation
    r = spec.resolution
    g = _Builder("input", 3 * r * r)
    stem = spec.stem
    px = stem.out_resolution**2
    x = g.op("stem.conv", ("input",), stem.channels * px)
    x = _act(g, "stem.act", x, stem.channels * px, act)
    for i, stage_blocks in enumerate(spec.blocks()):
        for b in stage_blocks:
            p = f"blocks.{i}.{b.index}"
            block_in, h = x, x
            in_px, out_px = b.in_resolution**2, b.out_resolution**2
            if b.has_expand:
                h = g.op(f"{p}.expand.conv", (h,), b.mid_channels * in_px)
                h = _act(g, f"{p}.expand.act", h, b.mid_channels * in_px, act)
            h = g.op(f"{p}.dw.conv", (h,), b.mid_channels * out_px)
            h = _act(g, f"{p}.dw.act", h, b.mid_channels * out_px, act)
            if b.se_channels:
                s = g.op(f"{p}.se.pool", (h,), b.mid_channels)
                s = g.op(f"{p}.se.reduce", (s,), b.se_channels)
                s = _act(g, f"{p}.se.act", s, b.se_channels, act)
                s = g.op(f"{p}.se.expand", (s,), b.mid_channels)
                s = g.op(f"{p}.se.gate", (s,), b.mid_channels)
                h = g.op(f"{p}.se.mul", (h, s), b.mid_channels * out_px)
            h = g.op(f"{p}.project.conv", (h,), b.out_channels * out_px)
            if b.residual:
                h = g.op(f"{p}.add", (block_in, h), b.out_channels * out_px)
            x = h
    head = spec.head
    hpx = head.resolution**2
    x = g.op("head.conv", (x,), head.channels * hpx)
    x = _act(g, "head.act", x, head.channels * hpx, act)
    x = g.op("pool", (x,), head.channels)
    g.op("classifier", (x,), spec.classes)
    return Schedule(dict(g.sizes), tuple(g.steps), g.graph_input)


def peak_activation_bytes(spec: ArchSpec) -> int:
    """Largest int8 live set, for a planner that frees each tensor after its last use.

    During op i the live tensors are: its inputs, its output, and every earlier tensor still
    needed by a later op (a block's input kept for the residual ADD, the activation kept for
    the SE MUL, the conv output kept for swish's MUL). The graph input is live until its last
    use; the logits until the end. No op works in place.
    """
    return max(activation_schedule(spec).live_bytes())


def peak_step(spec: ArchSpec) -> tuple[str, int]:
    """The op where the peak occurs and the bytes live then."""
    sched = activation_schedule(spec)
    live = sched.live_bytes()
    i = max(range(len(live)), key=live.__getitem__)
    return sched.steps[i].op, live[i]
