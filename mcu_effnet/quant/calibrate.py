"""Activation-scale calibration of the Brevitas model before QAT.

The quant model's activation quantizers learn their scales, but they start from statistics:
Brevitas collects them for the first ``collect_stats_steps`` training forwards, then turns the
average into a learned parameter. Calibrating explicitly, on a fixed set of un-augmented training
images and with quantization switched off while observing (``calibration_mode``), starts QAT from
scales that fit the folded float network, instead of from the first noisy QAT batches.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from brevitas.graph.calibrate import calibration_mode
from torch import nn


@torch.no_grad()
def calibrate_activations(model: nn.Module, batches: Iterable[torch.Tensor], device: torch.device) -> int:
    """Runs ``batches`` (float NCHW, pixel/255) through ``model`` in calibration mode; on exit
    every statistics-initialised scale becomes its learned parameter. Returns images seen."""
    seen = 0
    model.eval()
    with calibration_mode(model):
        for x in batches:
            model(x.to(device))
            seen += len(x)
    return seen
