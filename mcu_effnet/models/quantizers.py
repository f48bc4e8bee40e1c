"""Named Brevitas quantizer presets for TFLite's int8 spec (see docs/ARCHITECTURE.md).

Every quantizer choice of the quant model lives here, so the conventions can be read in one
place instead of through Brevitas's dependency injection:

- ``WeightPerChannelInt8``: weights int8, per output channel, symmetric, narrow [-127, 127].
- ``BiasInt32``: bias int32, scale = input_scale x weight_scale (taken from the input QuantTensor).
- ``ActInt8``: activations int8 per tensor, learned scale initialised from statistics, zero
  point 0 (symmetric; a subset of TFLite's asymmetric int8).
- ``Relu6Uint8``: output of a ReLU6 (fused into the conv in TFLite), unsigned 8 bit, zero
  point 0 == int8 zero point -128, learned scale initialised from statistics (the clamp at 6
  is an explicit relu6 before the quantizer).
- ``InputUint8Fixed``: the model input x = pixel / 255, fixed scale 1/255, unsigned zero point
  0, i.e. int8 zero point -128: the firmware feeds ``pixel - 128``.
- ``SigmoidUint8Fixed``: sigmoid outputs, fixed scale 1/256, unsigned zero point 0 (int8 -128),
  what TFLite's LOGISTIC produces; TFLite Micro does not check this scale, so it is fixed here.
"""

from __future__ import annotations

from brevitas.core.scaling import ScalingImplType
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerChannelFloat,
    Int32Bias,
    Uint8ActPerTensorFloat,
)

INPUT_SCALE = 1.0 / 255.0
SIGMOID_SCALE = 1.0 / 256.0


class WeightPerChannelInt8(Int8WeightPerChannelFloat):
    """int8, per-channel (axis 0 of the torch weight), symmetric, narrow range [-127, 127]."""

    narrow_range = True


class BiasInt32(Int32Bias):
    """int32, zero point 0, scale = input scale x per-channel weight scale."""


class ActInt8(Int8ActPerTensorFloat):
    """int8 per tensor, zero point 0, learned scale (initialised from activation statistics)."""


class Relu6Uint8(Uint8ActPerTensorFloat):
    """ReLU6 output: uint8 zero point 0 (int8 -128), learned scale initialised from statistics.

    Apply after an explicit relu6: round(min(x, 6) / s) == min(round(x / s), round(6 / s)),
    TFLite's fused RELU6 clamp.
    (A fixed 6/255 start leaves small early activations with a handful of levels.)
    """


class InputUint8Fixed(Uint8ActPerTensorFloat):
    """Fixed scale 1/255, uint8 zero point 0: the quantizer's threshold is 255 x scale = 1."""

    scaling_impl_type = ScalingImplType.CONST
    scaling_init = 255 * INPUT_SCALE


class SigmoidUint8Fixed(Uint8ActPerTensorFloat):
    """Fixed scale 1/256, uint8 zero point 0 (threshold 255/256, exactly representable)."""

    scaling_impl_type = ScalingImplType.CONST
    scaling_init = 255 * SIGMOID_SCALE
