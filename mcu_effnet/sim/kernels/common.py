"""What every kernel family shares: the kernel signature and the per-op cache of Params."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops import registry
from mcu_effnet.sim.requantize import Requantizer

# A kernel takes the graph, the op and its input arrays (aligned with op.inputs, None for an
# omitted optional input; activations batched on a leading axis N replacing the file's first
# dimension; constants as stored) and returns the output arrays aligned with op.outputs.
Kernel = Callable[[Graph, Op, list[np.ndarray | None]], list[np.ndarray]]
T = TypeVar("T")
Pair = tuple[int, int]


def cached(graph: Graph, op: Op, key: str, compute: Callable[[], T]) -> T:
    """Per-op values derived from constants and quantization (Params, reshaped weights),
    computed on the first run and kept on the graph object: a loaded Graph is treated as
    immutable, as TFLite Micro treats the model after Prepare."""
    cache: dict = graph.__dict__.setdefault("_sim_cache", {})
    slot = (op.index, key)
    if slot not in cache:
        cache[slot] = compute()
    return cache[slot]


def requantizer(graph: Graph, op: Op, multiplier: Any, shift: Any, key: str = "requantizer") -> Requantizer:
    """A ``Requantizer`` of the op's multipliers and shifts, built once."""
    return cached(graph, op, key, lambda: Requantizer.create(multiplier, shift))


def op_params(graph: Graph, op: Op) -> Any:
    """The op's Params (``mcu_effnet.ops``), prepared once."""
    return cached(graph, op, "params", lambda: registry.prepare(graph, op))


def padded_windows(
    x: np.ndarray, fill: int, p: Any, window: Pair, out: Pair, dilation: Pair = (1, 1)
) -> np.ndarray:
    """NHWC ``x`` padded with ``fill`` as the Params ``p`` ask (pad_top, pad_left, strides), viewed
    as the (KH, KW) window of every output position: (N, OH, OW, C, KH, KW)."""
    (kh, kw), (oh, ow), (dh, dw), (sh, sw) = window, out, dilation, (p.stride_h, p.stride_w)
    eff_h, eff_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    bottom = max((oh - 1) * sh + eff_h - x.shape[1] - p.pad_top, 0)
    right = max((ow - 1) * sw + eff_w - x.shape[2] - p.pad_left, 0)
    padded = np.pad(x, ((0, 0), (p.pad_top, bottom), (p.pad_left, right), (0, 0)), constant_values=fill)
    view = sliding_window_view(padded, (eff_h, eff_w), axis=(1, 2))
    return view[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, :, ::dh, ::dw]
