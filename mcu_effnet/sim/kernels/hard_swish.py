"""HARD_SWISH, int8, as TFLite Micro's ``reference_ops::HardSwish<int8_t>``.

x * relu6(x + 3) / 6 in 16-bit fixed point: the centred input is moved to a "hires"
scale (x 128), multiplied by the output multiplier and, separately, mapped to a
"relu-ish" factor in [0, 1] (the input on a scale where 3.0 is 32768, saturated, then
shifted to [0, 1]); their truncating product is rounded to the output scale. The
multipliers are ``mcu_effnet.ops.hard_swish.HardSwishParams``.
"""

from __future__ import annotations

import functools

import numpy as np

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.hard_swish import HardSwishParams
from mcu_effnet.sim import fixedpoint as fp
from mcu_effnet.sim.kernels.common import op_params


def hard_swish_int8(x: np.ndarray, params: HardSwishParams) -> np.ndarray:
    input_value = x.astype(np.int64) - params.in_zero_point
    hires = input_value * (1 << 7)  # |value| <= 255, so this fits int16
    preshift_output = fp.srdhm_int16(hires, params.out_multiplier)

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
    out = fp.rdbpot_int16(preshift, -params.out_exponent)
    out = fp.wrap_int16(out + params.out_zero_point)  # int16 addition in the C++
    return np.clip(out, -128, 127).astype(np.int8)


def hard_swish_kernel(graph: Graph, op: Op, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    return [np.take(hard_swish_table(op_params(graph, op)), inputs[0].view(np.uint8))]


@functools.lru_cache(maxsize=256)
def hard_swish_table(params: HardSwishParams) -> np.ndarray:
    """The exact int8 result for each of the 256 inputs, indexed by the input's uint8 bit pattern
    (the output depends on the input value alone)."""
    table = hard_swish_int8(np.arange(256, dtype=np.uint8).view(np.int8), params)
    table.setflags(write=False)
    return table


KERNELS = {"HARD_SWISH": hard_swish_kernel}
