"""SOFTMAX on int16 (16x8): Prepare, as TFLite Micro's ``CalculateSoftmaxParams`` for int16.

Unlike int8, int16 SOFTMAX runs on two 513-entry lookup tables built at Prepare time: exp on
[-10, 0] and 1 / (1 + x) on [0, 1], each sampled at 512 steps over the int16 range with a
midpoint correction, all in float32 (``LUTPopulate<int16_t>``). Differences to the row maximum
are scaled so that [-65535, 0] spans [-10, 0] (``input_multiplier``, ``input_left_shift``). The
output has zero point 0 and scale 1/32768 (within 0.1 %).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.common import input_tensor, output_tensor, quantize_multiplier, refuse

LUT_SIZE = 513  # 512 steps, plus one entry for the last slope
_RANGE = 65535  # int16 max - min


@dataclass(frozen=True)
class Softmax16Params:
    in_multiplier: int
    in_left_shift: int
    exp_lut: np.ndarray  # int16, LUT_SIZE
    one_over_one_plus_x_lut: np.ndarray  # int16, LUT_SIZE


def _round(x: np.float32) -> np.float32:
    """``std::round`` on a float: halves away from zero, staying float32."""
    return np.float32(math.copysign(math.floor(abs(float(x)) + 0.5), float(x)))


def _lut(input_scale: float, input_zero_point: int, transform) -> np.ndarray:
    """``LUTPopulateInt16<float>`` with output scale 2 / 65535 and zero point 0, in float32."""
    f = np.float32
    lo, hi = -32768, 32767
    in_scale, out_scale = f(input_scale), f(2.0) / f(_RANGE)
    input_min = in_scale * f(lo - input_zero_point)
    input_max = in_scale * f(hi - input_zero_point)
    output_min, output_max = out_scale * f(lo), out_scale * f(hi)
    steps = 512
    step = (input_max - input_min) / f(steps)
    half_step = step / f(2)
    scaling_inv = f(hi - lo + 1) / (output_max - output_min)
    lut = np.zeros(LUT_SIZE, np.int16)
    for i in range(steps):
        at = input_min + f(i) * step
        val = transform(at)
        val_mid = transform(at + half_step)
        val_next = transform(input_min + f(i + 1) * step)
        sample = _round(val * scaling_inv)
        interp = _round((val_next * scaling_inv + _round(val * scaling_inv)) / f(2))
        mid = _round(val_mid * scaling_inv)
        bias = _round((interp - mid) / f(2))
        lut[i] = int(min(max(sample - bias, f(lo)), f(hi)))
    lut[steps] = int(min(max(_round(transform(input_max) * scaling_inv), f(lo)), f(hi)))
    return lut


def _exp(x: np.float32) -> np.float32:
    return np.float32(math.exp(float(x)))  # expf: the float64 exp rounded once to float32


def _one_over_one_plus_x(x: np.float32) -> np.float32:
    return np.float32(1.0) / (np.float32(1.0) + x)


@functools.cache
def luts() -> tuple[np.ndarray, np.ndarray]:
    """(exp on [-10, 0], 1 / (1 + x) on [0, 1]): the same for every op."""
    f = np.float32
    exp_lut = _lut(float(f(10.0) / f(_RANGE)), 32767, _exp)
    reciprocal = _lut(float(f(1.0) / f(_RANGE)), -32768, _one_over_one_plus_x)
    exp_lut.flags.writeable = reciprocal.flags.writeable = False
    return exp_lut, reciprocal


def check(graph: Graph, op: Op) -> str | None:
    y = output_tensor(graph, op)
    target = np.float32(1.0 / 32768)
    if int(y.zero_point[0]) != 0 or abs(np.float32(y.scale[0]) - target) > np.float32(0.001) * target:
        return "int16 SOFTMAX needs output scale 1/32768 and zero point 0"
    return None


def prepare(graph: Graph, op: Op) -> Softmax16Params:
    x = input_tensor(graph, op, 0)
    beta = float(np.float32(op.attrs.get("beta", 1.0)))
    # [-65535, 0] of the scaled difference stands for [-10, 0]
    real = float(np.float32(x.scale[0])) * beta / (10.0 / 65535.0)
    multiplier, shift = (int(v) for v in quantize_multiplier(real))
    if shift > 30 or multiplier == 0:
        raise refuse(op, f"beta * input scale = {real * 10 / 65535:.3g} is out of range for int16 SOFTMAX")
    exp_lut, reciprocal = luts()
    return Softmax16Params(multiplier, shift, exp_lut, reciprocal)
