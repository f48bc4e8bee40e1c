"""The int8 graph of an ``ArchSpec`` without training and without torch.

Fitting happens before any weights exist, yet it must size the model the way the code generator
will: with the arena planner, SiLU fusion and the searched order, which all work on a ``Graph``.
This module writes that graph directly, op for op and shape for shape as the exporter writes a
trained spec (``quant.tflite_export``; ``tests/test_fit_spec_graph.py`` holds the two side by
side): SAME-padded convolutions, swish as LOGISTIC then MUL, squeeze-excitation as MEAN, two
1x1 convolutions, LOGISTIC and a broadcast MUL, residual ADD, global MEAN and FULLY_CONNECTED.

Weights are seeded random int8 and scales are plausible constants: sizes, the plan and the
engine's layout depend on shapes alone, never on the values.
"""

from __future__ import annotations

import numpy as np

from mcu_effnet.arch.spec import ArchSpec
from mcu_effnet.graph.ir import Graph, Op, Tensor

_INPUT_SCALE, _INPUT_ZP = 1.0 / 255.0, -128  # the trained model's fixed input quantization
_SIGMOID_SCALE, _SIGMOID_ZP = 1.0 / 256.0, -128  # what TFLite Micro's LOGISTIC requires
_ACT_SCALE = 0.02
_WEIGHT_SCALE = 0.004

_CONV_ATTRS = {"padding": "SAME", "dilation_w_factor": 1, "dilation_h_factor": 1, "quantized_bias_type": 0}


class _GraphWriter:
    def __init__(self, seed: int) -> None:
        self.tensors: list[Tensor] = []
        self.ops: list[Op] = []
        self.rng = np.random.default_rng(seed)

    def tensor(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: str = "int8",
        scale: float | np.ndarray | None = _ACT_SCALE,
        zero_point: int = 0,
        data: np.ndarray | None = None,
        axis: int = 0,
    ) -> int:
        if scale is None:
            s, z = np.zeros(0, np.float32), np.zeros(0, np.int64)
        else:
            s = np.atleast_1d(np.asarray(scale, dtype=np.float32))
            z = np.full(s.size, zero_point, dtype=np.int64)
        index = len(self.tensors)
        self.tensors.append(Tensor(index, name, tuple(shape), dtype, s, z, axis, data))
        return index

    def op(self, kind: str, inputs: list[int], outputs: list[int], **attrs: object) -> int:
        self.ops.append(Op(len(self.ops), kind, inputs, outputs, dict(attrs)))
        return outputs[0]

    def _weights(self, name: str, shape: tuple[int, ...], channels: int, axis: int) -> tuple[int, int]:
        scales = np.full(channels, _WEIGHT_SCALE, dtype=np.float32)
        data = self.rng.integers(-127, 128, size=shape, dtype=np.int8)
        w = self.tensor(f"{name}.weight", shape, scale=scales, data=data, axis=axis)
        bias = np.zeros(channels, dtype=np.int32)
        b = self.tensor(f"{name}.bias", (channels,), "int32", scales * np.float32(_ACT_SCALE), data=bias)
        return w, b

    def conv(self, name: str, x: int, cout: int, kernel: int, stride: int, activation: str) -> int:
        n, h, w, cin = self.tensors[x].shape
        oh, ow = -(-h // stride), -(-w // stride)
        wt, bias = self._weights(name, (cout, kernel, kernel, cin), cout, 0)
        y = self.tensor(name, (n, oh, ow, cout))
        fused = "RELU6" if activation == "relu6" else "NONE"
        return self.op(
            "CONV_2D",
            [x, wt, bias],
            [y],
            stride_w=stride,
            stride_h=stride,
            fused_activation_function=fused,
            **_CONV_ATTRS,
        )

    def depthwise(self, name: str, x: int, kernel: int, stride: int, activation: str) -> int:
        n, h, w, c = self.tensors[x].shape
        oh, ow = -(-h // stride), -(-w // stride)
        wt, bias = self._weights(name, (1, kernel, kernel, c), c, 3)
        y = self.tensor(name, (n, oh, ow, c))
        fused = "RELU6" if activation == "relu6" else "NONE"
        attrs = {k: v for k, v in _CONV_ATTRS.items() if k != "quantized_bias_type"}
        return self.op(
            "DEPTHWISE_CONV_2D",
            [x, wt, bias],
            [y],
            stride_w=stride,
            stride_h=stride,
            depth_multiplier=1,
            fused_activation_function=fused,
            **attrs,
        )

    def logistic(self, name: str, x: int) -> int:
        y = self.tensor(name, self.tensors[x].shape, scale=_SIGMOID_SCALE, zero_point=_SIGMOID_ZP)
        return self.op("LOGISTIC", [x], [y])

    def binary(self, kind: str, name: str, a: int, b: int, shape: tuple[int, ...]) -> int:
        y = self.tensor(name, shape)
        extra = {"pot_scale_int16": True} if kind == "ADD" else {}  # the ADD options' schema default
        return self.op(kind, [a, b], [y], fused_activation_function="NONE", **extra)

    def mean(self, name: str, x: int, keep_dims: bool) -> int:
        n, _, _, c = self.tensors[x].shape
        axes = self.tensor(f"{name}.axes", (2,), "int32", None, data=np.array([1, 2], dtype=np.int32))
        y = self.tensor(name, (n, 1, 1, c) if keep_dims else (n, c))
        return self.op("MEAN", [x, axes], [y], keep_dims=keep_dims)

    def fully_connected(self, name: str, x: int, units: int) -> int:
        n, depth = self.tensors[x].shape
        wt, bias = self._weights(name, (units, depth), units, 0)
        y = self.tensor(name, (n, units))
        return self.op(
            "FULLY_CONNECTED",
            [x, wt, bias],
            [y],
            fused_activation_function="NONE",
            weights_format="DEFAULT",
            keep_num_dims=False,
            asymmetric_quantize_inputs=False,
            quantized_bias_type=0,
        )


def _activate(g: _GraphWriter, name: str, x: int, activation: str) -> int:
    """Swish is LOGISTIC then MUL(x, sigmoid x); ReLU6 was fused into the conv that wrote x."""
    if activation != "swish":
        return x
    s = g.logistic(f"{name}.sigmoid", x)
    return g.binary("MUL", f"{name}.mul", x, s, g.tensors[x].shape)


def spec_graph(spec: ArchSpec, seed: int = 0) -> Graph:
    """The int8 graph the exporter writes for ``spec`` (batch 1), with placeholder weights."""
    act = spec.activation
    g = _GraphWriter(seed)
    r = spec.resolution
    x_in = g.tensor("input", (1, r, r, 3), scale=_INPUT_SCALE, zero_point=_INPUT_ZP)
    stem = spec.stem
    x = g.conv("stem.conv", x_in, stem.channels, stem.kernel, stem.stride, act)
    x = _activate(g, "stem.act", x, act)
    for i, stage_blocks in enumerate(spec.blocks()):
        for b in stage_blocks:
            p = f"blocks.{i}.{b.index}"
            block_in, h = x, x
            if b.has_expand:
                h = g.conv(f"{p}.expand.conv", h, b.mid_channels, 1, 1, act)
                h = _activate(g, f"{p}.expand.act", h, act)
            h = g.depthwise(f"{p}.dw.conv", h, b.kernel, b.stride, act)
            h = _activate(g, f"{p}.dw.act", h, act)
            if b.se_channels:
                s = g.mean(f"{p}.se.pool", h, keep_dims=True)
                s = g.conv(f"{p}.se.reduce", s, b.se_channels, 1, 1, "none")
                s = _activate(g, f"{p}.se.act", s, act)
                s = g.conv(f"{p}.se.expand", s, b.mid_channels, 1, 1, "none")
                s = g.logistic(f"{p}.se.gate", s)
                h = g.binary("MUL", f"{p}.se.mul", h, s, g.tensors[h].shape)
            h = g.conv(f"{p}.project.conv", h, b.out_channels, 1, 1, "none")
            if b.residual:
                h = g.binary("ADD", f"{p}.add", block_in, h, g.tensors[h].shape)
            x = h
    head = spec.head
    x = g.conv("head.conv", x, head.channels, 1, 1, act)
    x = _activate(g, "head.act", x, act)
    x = g.mean("pool", x, keep_dims=False)
    logits = g.fully_connected("classifier", x, spec.classes)
    return Graph(
        tensors=g.tensors,
        ops=g.ops,
        inputs=[x_in],
        outputs=[logits],
        name=f"efficientnet-{spec.variant}",
        description="mcu-effnet fitting graph (placeholder weights)",
        source=f"EfficientNet-{spec.variant} phi={spec.phi:g} at {r} px, width x{spec.width_mult:.2f}",
    )
