"""Weight layout and kernel choice for the DSP 1x1 CONV_2D and FULLY_CONNECTED kernels.

The kernels (``firmware_templates/runtime/ek_pointwise_dsp.c``) multiply-accumulate signed
halfword pairs with SMLAD. An input word of four int8 values x[k..k+3] gives the pairs
(x[k], x[k+2]) (SXTB16) and (x[k+1], x[k+3]) (SXTB16 of the word rotated by 8); the weights
of two output channels w0, w1 are interleaved here so that one word yields the matching pair
of each channel the same way:

    word A = (w0[k], w1[k], w0[k+2], w1[k+2])   SXTB16 -> w0 (k, k+2), SXTB16-ROR8 -> w1 (k, k+2)
    word B = (w0[k+1], w1[k+1], w0[k+3], w1[k+3])  likewise for (k+1, k+3)

so the inner loop streams one aligned 32-bit weight word per channel pair and half-block. The
weights stay 8-bit (flash grows only by the zero padding: the depth to a multiple of 4, the
channels to a multiple of 2). The bias keeps the plain kernels' input-offset folding
(``engine._folded_bias``), so raw int8 inputs go straight into SXTB16.

Bias, multiplier and shift travel together as one record per channel pair (``records``, the
params' ``records``): the kernel walks one pointer and
reads each pair's six words with three double-word loads, where three arrays cost a pointer
each (spilled around the multiply-accumulate loop, which needs every register).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONV_KERNEL = "ek_conv2d_1x1_dsp"
FC_KERNEL = "ek_fully_connected_dsp"
STRUCTS = {CONV_KERNEL: "ek_conv1x1_dsp_params", FC_KERNEL: "ek_fc_dsp_params"}  # ek_pointwise_dsp.h
FAST_SUFFIX = "_fast"  # requantization with SMMULR (ek_dsp.h), when every channel qualifies


@dataclass(frozen=True)
class PointwiseLayout:
    kernel: str
    struct: str  # its parameters' C type
    weights: np.ndarray  # int32 words of the interleaved weights
    records: np.ndarray  # bias, multiplier and shift per channel pair (see ``records``)
    note: str  # for the C comment


def interleave(weights: np.ndarray) -> np.ndarray:
    """(channels, depth) int8 weights -> the kernels' int32 words (see the module docstring).

    >>> w = np.array([[1, 2, 3, 4, 5], [-1, -2, -3, -4, -5]])
    >>> interleave(w).view(np.uint8).reshape(-1, 4).tolist()
    [[1, 255, 3, 253], [2, 254, 4, 252], [5, 251, 0, 0], [0, 0, 0, 0]]
    """
    w = np.asarray(weights, np.int64)
    channels, depth = w.shape
    pairs, blocks = -(-channels // 2), -(-depth // 4)
    padded = np.zeros((pairs * 2, blocks * 4), np.int64)
    padded[:channels, :depth] = w
    # k = 4 * block + 2 * hi + lo; byte (hi, ch) of word lo of each (pair, block)
    grid = padded.reshape(pairs, 2, blocks, 2, 2)  # pair, ch, block, hi, lo
    ordered = grid.transpose(0, 2, 4, 3, 1)  # pair, block, lo (word A / B), hi, ch
    return np.ascontiguousarray(ordered.astype(np.int8)).reshape(-1).view("<i4").astype(np.int32)


# the largest s = -shift - 1 of the fast kernels (fast_requantize_ok)
MAX_FAST_RIGHT_SHIFT = 20


def fast_requantize_ok(shift: np.ndarray, bias: np.ndarray, weights: np.ndarray) -> bool:
    """Whether ``ek_dsp_requantize`` is exact for every output channel.

    It needs shift <= -1 and |acc| < 2^30 for acc = bias + sum(x * w) with |x| <= 128 (the
    folded bias; the plain reference's sum of (x + offset) * w is the same integer), and
    shift >= -21: the pixel blocks add (1 + 2 * (out_offset - act_min)) << s, s = -shift - 1,
    at most 511 << 20, to SMMULR's |v| <= |acc|, which must fit int32 (a multiplier below
    2^-21 would not).
    """
    w = np.abs(np.asarray(weights, np.int64)).reshape(len(bias), -1)
    bound = np.abs(np.asarray(bias, np.int64)) + 128 * w.sum(axis=1)
    shift = np.asarray(shift)
    return bool(np.all(shift <= -1) and np.all(shift >= -MAX_FAST_RIGHT_SHIFT - 1) and np.all(bound < 2**30))


def pointwise_layout(
    kernel: str, weights: np.ndarray, folded_bias: np.ndarray, multiplier: np.ndarray, shift: np.ndarray
) -> PointwiseLayout:
    """The DSP kernel and weight words of a 1x1 CONV_2D (``CONV_KERNEL``) or FULLY_CONNECTED
    (``FC_KERNEL``) whose weights are ``weights`` (channels, depth)."""
    w = np.asarray(weights).reshape(len(folded_bias), -1)
    fast = fast_requantize_ok(shift, folded_bias, w)
    shift = np.asarray(shift, np.int64)
    return PointwiseLayout(
        kernel=kernel + (FAST_SUFFIX if fast else ""),
        struct=STRUCTS[kernel],
        weights=interleave(w),
        records=records(folded_bias, multiplier, -shift - 1 if fast else shift),
        note="channel pairs interleaved for SXTB16/SMLAD, depth padded to 4 (ek_pointwise_dsp.h)",
    )


def records(bias: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """int32 (bias0, bias1, multiplier0, multiplier1, shift0, shift1) per channel pair.

    ``multiplier`` / ``shift``: one per channel, or one for all (per-tensor FULLY_CONNECTED).
    The zero channel of an odd count gets zeros (its output is not stored).

    >>> records(np.array([5, 6, 7]), np.array([100]), np.array([-2])).reshape(-1, 6).tolist()
    [[5, 6, 100, 100, -2, -2], [7, 0, 100, 0, -2, 0]]
    """
    channels = len(bias)
    table = np.zeros((3, channels + channels % 2), np.int64)
    table[0, :channels] = bias
    table[1, :channels] = np.broadcast_to(np.asarray(multiplier, np.int64), (channels,))
    table[2, :channels] = np.broadcast_to(np.asarray(shift, np.int64), (channels,))
    return table.reshape(3, -1, 2).transpose(1, 0, 2).reshape(-1).astype(np.int32)
