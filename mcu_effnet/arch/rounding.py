"""Rounding of compound-scaled values, as the reference EfficientNet implementation does it."""

from __future__ import annotations

import math

CHANNEL_DIVISOR = 8  # channels are multiples of 8 (the reference's depth_divisor)


def round_channels(raw: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """Nearest multiple of ``divisor`` (at least ``divisor``), bumped up one step if that
    would lose more than 10 % of ``raw`` — the reference's ``round_filters``.

    >>> round_channels(16 * 1.1 ** -8), round_channels(40 * 1.1 ** 7), round_channels(32 * 0.5)
    (8, 80, 16)
    """
    rounded = max(divisor, int(raw + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * raw:
        rounded += divisor
    return int(rounded)


def round_layers(raw: float) -> int:
    """ceil(d · L), the reference's ``round_repeats``; never below one layer."""
    # Guard against 2.0000000000000004 turning into 3: compare with a tolerance first.
    nearest = round(raw)
    if abs(raw - nearest) < 1e-9:
        return max(1, int(nearest))
    return max(1, math.ceil(raw))


def round_resolution(raw: float) -> int:
    """round(224 · r), halves rounded up (not Python's banker's rounding)."""
    return int(math.floor(raw + 0.5))


def same_output_size(size: int, stride: int) -> int:
    """Output size of a TensorFlow SAME convolution: ceil(size / stride)."""
    return -(-size // stride)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding (before, after) along one axis; the extra pixel goes after."""
    total = max((same_output_size(size, stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2
