"""HARD_SWISH, int8, as TFLite Micro's ``reference_ops::HardSwish<int8_t>``.

x * relu6(x + 3) / 6 in 16-bit fixed point: the centred input is moved to a "hires"
scale (x 128), multiplied by the output multiplier and, separately, mapped to a
"relu-ish" factor in [0, 1] (the input on a scale where 3.0 is 32768, saturated, then
shifted to [0, 1]); their truncating product is rounded to the output scale. The
multipliers are computed in float32 first, then narrowed to int16, exactly as in the
kernel's Prepare.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.sim import fixedpoint as fp
from mcu_effnet.sim.requantize import quantize_multiplier


def _downscale_to_int16(multiplier: int) -> int:
    """DownScaleInt32ToInt16Multiplier: round a Q0.31 multiplier to Q0.15, saturating."""
    if multiplier >= fp.INT32_MAX - (1 << 15):
        return fp.INT16_MAX
    return (multiplier + (1 << 15)) >> 16


@dataclass(frozen=True)
class HardSwishParams:
    input_zero_point: int
    output_zero_point: int
    output_multiplier: int  # Q0.15
    output_exponent: int  # <= 0
    reluish_multiplier: int  # Q0.15
    reluish_exponent: int

    @classmethod
    @functools.lru_cache(maxsize=1024)  # one entry per op: Prepare runs once in TFLite Micro too
    def from_quantization(
        cls, input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int
    ) -> HardSwishParams:
        # The scales are combined in float32, as the C++ does before widening to double.
        hires_input_scale = np.float32(1.0 / 128.0) * np.float32(input_scale)
        reluish_scale = np.float32(3.0 / 32768.0)
        output_real = float(np.float32(hires_input_scale / np.float32(output_scale)))
        reluish_real = float(np.float32(hires_input_scale / reluish_scale))
        output_multiplier, output_exponent = quantize_multiplier(output_real)
        reluish_multiplier, reluish_exponent = quantize_multiplier(reluish_real)
        if output_exponent > 0:
            raise ValueError(
                f"input scale {input_scale:.6g} is too large for output scale {output_scale:.6g}"
            )
        return cls(
            int(input_zero_point),
            int(output_zero_point),
            _downscale_to_int16(int(output_multiplier)),
            int(output_exponent),
            _downscale_to_int16(int(reluish_multiplier)),
            int(reluish_exponent),
        )


def hard_swish_int8(x: np.ndarray, params: HardSwishParams) -> np.ndarray:
    input_value = x.astype(np.int64) - params.input_zero_point
    hires = input_value * (1 << 7)  # |value| <= 255, so this fits int16
    preshift_output = fp.srdhm_int16(hires, params.output_multiplier)

    # The relu-ish factor: the input on a scale where 3.0 is 32768, saturating; the last
    # bit of a left shift is applied after the multiply so saturation there is exact.
    reluish = hires
    if params.reluish_exponent > 0:
        reluish = fp.saturating_left_shift_int16(reluish, params.reluish_exponent - 1)
    reluish = fp.srdhm_int16(reluish, params.reluish_multiplier)
    if params.reluish_exponent > 0:
        reluish = fp.saturating_left_shift_int16(reluish, 1)
    if params.reluish_exponent < 0:
        reluish = fp.rdbpot_int16(reluish, -params.reluish_exponent)
    reluish = (reluish + (1 << 15)) >> 1  # [-1, 1] -> [0, 1]

    preshift = fp.sdhm_int16(reluish, preshift_output)
    out = fp.rdbpot_int16(preshift, -params.output_exponent)
    out = fp.wrap_int16(out + params.output_zero_point)  # int16 addition in the C++
    return np.clip(out, -128, 127).astype(np.int8)


def hard_swish_kernel(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    src, dst = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if src.dtype != "int8" or dst.dtype != "int8":
        raise UserError(
            f"op {op.index} HARD_SWISH: only int8 -> int8 is supported, got {src.dtype} -> {dst.dtype}"
        )
    try:
        params = HardSwishParams.from_quantization(
            float(src.scale[0]), int(src.zero_point[0]), float(dst.scale[0]), int(dst.zero_point[0])
        )
    except ValueError as exc:
        raise UserError(f"op {op.index} HARD_SWISH: {exc} (TFLite Micro refuses it)") from None
    return [np.take(hard_swish_table(params), inputs[0].view(np.uint8))]


@functools.lru_cache(maxsize=256)
def hard_swish_table(params: HardSwishParams) -> np.ndarray:
    """The exact int8 result for each of the 256 inputs, indexed by the input's uint8 bit pattern
    (the output depends on the input value alone)."""
    table = hard_swish_int8(np.arange(256, dtype=np.uint8).view(np.int8), params)
    table.setflags(write=False)
    return table


KERNELS = {"HARD_SWISH": hard_swish_kernel}
