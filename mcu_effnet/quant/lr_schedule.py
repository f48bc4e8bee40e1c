"""Optimizer and learning-rate schedule: AdamW or SGD, linear warm-up then cosine to zero, per step."""

from __future__ import annotations

import math

import torch
from torch import nn


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv and linear weights only. Biases, BatchNorm affine parameters and
    quantizer scales (all 0-D or 1-D) are left undecayed: shrinking a quantizer's scale towards
    zero, or a folded bias, is not regularisation."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        (decay if parameter.ndim > 1 else no_decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(
    model: nn.Module, kind: str, lr: float, weight_decay: float, *, fused: bool = True
) -> torch.optim.Optimizer:
    """``fused``: one kernel over all parameters per step instead of a loop of small ops per
    parameter (the same update; on CPU the unfused AdamW costs several times more for these
    networks of a few hundred small tensors)."""
    groups = parameter_groups(model, weight_decay)
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, fused=fused or None)
    return torch.optim.AdamW(groups, lr=lr, fused=fused or None)


def warmup_cosine(total_steps: int, warmup_steps: int):
    """Multiplier of the peak LR at optimizer step ``step`` (0-based): linear ramp over
    ``warmup_steps``, then half a cosine down to zero at ``total_steps``."""

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def make_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, warmup_steps))
