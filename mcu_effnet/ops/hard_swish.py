"""HARD_SWISH, int8: check and Prepare, as TFLite Micro's ``HardSwishPrepare``.

The multipliers of the "hires" input (x 128) to the output scale and to the "relu-ish"
scale (3.0 is 32768) are computed in float32 first, then narrowed to int16.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import checks
from mcu_effnet.ops.common import input_tensor, output_tensor, qparams, quantize_multiplier, refuse


def _downscale_to_int16(multiplier: int) -> int:
    """DownScaleInt32ToInt16Multiplier: round a Q0.31 multiplier to Q0.15, saturating."""
    if multiplier >= (1 << 31) - 1 - (1 << 15):  # INT32_MAX - 2^15
        return (1 << 15) - 1
    return (multiplier + (1 << 15)) >> 16


@dataclass(frozen=True)
class HardSwishParams:
    in_zero_point: int
    out_zero_point: int
    out_multiplier: int  # Q0.15
    out_exponent: int  # <= 0
    reluish_multiplier: int  # Q0.15
    reluish_exponent: int

    @classmethod
    @functools.lru_cache(maxsize=1024)  # one entry per op: Prepare runs once in TFLite Micro too
    def from_quantization(
        cls, input_scale: float, in_zero_point: int, output_scale: float, out_zero_point: int
    ) -> HardSwishParams:
        # The scales are combined in float32, as the C++ does before widening to double.
        hires_input_scale = np.float32(1.0 / 128.0) * np.float32(input_scale)
        reluish_scale = np.float32(3.0 / 32768.0)
        output_real = float(np.float32(hires_input_scale / np.float32(output_scale)))
        reluish_real = float(np.float32(hires_input_scale / reluish_scale))
        out_multiplier, out_exponent = quantize_multiplier(output_real)
        reluish_multiplier, reluish_exponent = quantize_multiplier(reluish_real)
        if out_exponent > 0:
            raise ValueError(
                f"input scale {input_scale:.6g} is too large for output scale {output_scale:.6g}"
            )
        return cls(
            int(in_zero_point),
            int(out_zero_point),
            _downscale_to_int16(int(out_multiplier)),
            int(out_exponent),
            _downscale_to_int16(int(reluish_multiplier)),
            int(reluish_exponent),
        )


def prepare(graph: Graph, op: Op) -> HardSwishParams:
    try:
        return HardSwishParams.from_quantization(
            *qparams(input_tensor(graph, op, 0)), *qparams(output_tensor(graph, op))
        )
    except ValueError as exc:
        raise refuse(op, f"{exc} (TFLite Micro refuses it)") from None


CHECKS = {"HARD_SWISH": checks.unary}
PREPARE = {"HARD_SWISH": prepare}
