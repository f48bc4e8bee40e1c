"""16x8 models for the tests: ``tflite_builder.ModelBuilder`` with int16 activations.

TFLite's 16x8 scheme keeps the weights int8 (symmetric, per channel) and makes every activation
int16 with zero point 0; biases are int64 (int32 where ``bias_dtype`` asks). The layer helpers of
``ModelBuilder`` work unchanged: the activations they add become int16, their random biases
int64 and 256 times wider (the inputs are), and the output scales they pick already suit int16
(σ of the accumulator grows by the same 256 as the range).
"""

from __future__ import annotations

import math

import numpy as np
from tflite_builder import ModelBuilder

INT16_SPREAD = 256  # int16 values span 256 times the int8 range


class Builder16x8(ModelBuilder):
    def __init__(self, rng: np.random.Generator | None = None, bias_dtype: str = "int64"):
        super().__init__(rng, description="mcu-effnet 16x8 test model")
        self.bias_dtype = bias_dtype

    def activation(self, name: str, shape: tuple[int, ...], scale: float, zero_point: int) -> int:
        return self.add_tensor(f"{name}_{len(self.tensors)}", shape, "int16", scale, 0)

    def input(self, shape: tuple[int, ...], scale: float | None = None, zero_point: int | None = None) -> int:
        scale = float(self.rng.uniform(0.01, 0.05)) / INT16_SPREAD if scale is None else scale
        index = self.activation("input", shape, scale, 0)
        self.inputs.append(index)
        return index

    def _bias(self, in_index: int, w_scales: np.ndarray, channels: int, fan_in: int) -> int:
        in_scale, _ = self.qparams(in_index)
        bias_scales = (np.float32(in_scale) * w_scales.astype(np.float32)).astype(np.float32)
        if bias_scales.size == 1:
            bias_scales = np.full(channels, bias_scales[0], np.float32)
        spread = int(20 * 73 * math.sqrt(fan_in)) * INT16_SPREAD
        data = self.rng.integers(-spread, spread + 1, size=channels)
        return self.add_tensor(
            f"bias_{len(self.tensors)}", (channels,), self.bias_dtype, bias_scales, 0, 0, data
        )

    def quantize(self, x: int, dtype: str, scale: float | None = None, zero_point: int = 0) -> int:
        """QUANTIZE from ``x`` to a new ``dtype`` tensor (int8 or int16; int16 zero points are 0)."""
        in_scale, _ = self.qparams(x)
        factor = INT16_SPREAD if dtype == "int16" else 1.0
        factor /= INT16_SPREAD if self.info[x].dtype == "int16" else 1.0
        scale = float(in_scale / factor * self.rng.uniform(0.6, 1.6)) if scale is None else scale
        y = self.add_tensor(f"q_{len(self.tensors)}", self.info[x].shape, dtype, scale, zero_point)
        self.add_op("QUANTIZE", [x], [y])
        return y

    def int8_input(self, shape: tuple[int, ...]) -> int:
        """An int8 model input (for QUANTIZE int8 → int16)."""
        index = self.add_tensor(
            f"input_{len(self.tensors)}",
            shape,
            "int8",
            float(self.rng.uniform(0.01, 0.05)),
            int(self.rng.integers(-30, 31)),
        )
        self.inputs.append(index)
        return index

    def operand(self, x: int, shape: tuple[int, ...], constant: bool) -> int:
        """A second int16 operand for a binary op on ``x``: a constant of ``shape`` or a model
        input (batched: unit axes in front up to x's rank), on a scale near x's."""
        scale = float(self.qparams(x)[0] * self.rng.uniform(0.5, 2.0))
        if constant:
            data = self.rng.integers(-32768, 32768, size=shape)
            return self.add_tensor(f"const_{len(self.tensors)}", shape, "int16", scale, 0, data=data)
        return self.input((1,) * (len(self.info[x].shape) - len(shape)) + tuple(shape), scale)


def random_int16(rng: np.random.Generator, shape: tuple[int, ...], batch: int = 3) -> np.ndarray:
    """A batch spanning the whole int16 range, extremes included."""
    x = rng.integers(-32768, 32768, size=(batch, *shape[1:])).astype(np.int16)
    x.reshape(-1)[:2] = (-32768, 32767)
    return x


def random_16x8_cnn(rng: np.random.Generator, int8_output: bool = False, math_ops: bool = False) -> bytes:
    """[TANH →] conv(s2, relu) → depthwise → conv 1x1 → residual ADD → PAD → [SUB of a
    per-channel constant → LEAKY_RELU → TRANSPOSE_CONV (s2) →] RESHAPE → FC [→ QUANTIZE to
    int8], all 16x8; the bracketed ops with ``math_ops`` (TANH first, where the input's
    scale keeps it off saturation)."""
    b = Builder16x8(rng)
    c = int(rng.integers(3, 7))
    x = b.input((1, 8, 8, 3))
    if math_ops:
        x = b.unary("TANH", x, out_scale=2.0**-15, out_zp=0)
    stem = b.conv2d(x, c, (3, 3), (2, 2), "SAME", activation="RELU")
    dw = b.depthwise(stem, (3, 3))
    proj = b.conv2d(dw, c, (1, 1))
    res = b.add(stem, proj)
    features = b.pad(res, [(0, 0), (1, 1), (0, 1), (0, 0)])
    if math_ops:
        shifted = b.sub(features, b.operand(features, (c,), constant=True))
        leaky = b.leaky_relu(shifted, 0.2)
        features = b.transpose_conv(leaky, c, (3, 3), (2, 2), "SAME")
    _, h, w, _ = b.info[features].shape
    flat = b.reshape(features, (1, h * w * c))
    logits = b.fully_connected(flat, int(rng.integers(3, 9)))
    b.outputs = [b.quantize(logits, "int8", zero_point=-3) if int8_output else logits]
    return b.build()


def random_mixed_inputs(rng: np.random.Generator, typed: bool = False) -> bytes:
    """An int8 input of an odd size and an int16 one (packed, the int16 input starts at an odd
    byte): the int8 one QUANTIZEd to int16, ADDed to the int16 one, then a 16x8 convolution;
    a second output QUANTIZEs the sum back to int8. ``typed`` adds two outputs read from that
    one: DEQUANTIZE (float32) and ARG_MAX over the channels (int32)."""
    b = Builder16x8(rng)
    size, c = int(rng.integers(1, 4)) * 2 + 1, int(rng.integers(1, 3)) * 2 + 1
    x8 = b.int8_input((1, size, size, c))
    x16 = b.input((1, size, size, c))
    total = b.add(b.quantize(x8, "int16"), x16)
    y = b.conv2d(total, int(rng.integers(2, 6)), (3, 3), (1, 1), "SAME", activation="RELU")
    q = b.quantize(total, "int8", zero_point=int(rng.integers(-20, 21)))
    b.outputs = [y, q, b.dequantize(q), b.argmax(q, 3)] if typed else [y, q]
    return b.build()
