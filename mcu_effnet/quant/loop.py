"""One training epoch and one evaluation pass, for the float and the QAT phase alike.

The epoch loop is where Ctrl-C and NaN are caught: both are checked between batches (agreed on
by every process when distributed), so a checkpoint is always taken between two whole optimizer
steps, never in the middle of one.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from mcu_effnet.data.augment import MixedBatch
from mcu_effnet.quant.distributed import DistContext, all_reduce_sum, any_rank

# (logits, model input, batch targets) -> scalar loss; see mcu_effnet.quant.recipe.RecipeLoss.
Criterion = Callable[[torch.Tensor, torch.Tensor, MixedBatch], torch.Tensor]


def to_model_input(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 NCHW pixels -> float ``pixel/255``, the model's input. There is no mean/std
    normalisation: the stem's BatchNorm learns it, and folding that BN into the stem conv puts
    the normalisation into the deployed weights (int8 input = pixel - 128, scale 1/255)."""
    return x.to(device, non_blocking=True).float().div_(255.0)


@dataclass
class EpochTotals:
    """Running sums of one epoch on this process; kept in mid-epoch checkpoints."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    batches: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StepInfo:
    """What a per-step callback sees (``run_qat(on_step=...)``): phase, 0-based epoch and batch."""

    phase: str
    epoch: int
    batch: int
    model: nn.Module


class StopRequest:
    """Ctrl-C as a request: the first SIGINT sets ``requested`` and training stops after the
    current batch, writing a checkpoint; a second one interrupts at once."""

    def __init__(self, announce: Callable[[str], None] | None = None) -> None:
        self.requested = False
        self.announce = announce
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            self.announce("stopping after this batch to write a checkpoint (Ctrl-C again to abort now)")

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def ignore_sigint_in_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: Ctrl-C reaches the whole process group; workers leave it to
    the main process, which stops between batches and shuts them down itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def train_epoch(
    model: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    criterion: Criterion,
    ctx: DistContext,
    totals: EpochTotals,
    stop: StopRequest,
    *,
    phase: str,
    epoch: int,
    description: str,
    progress: bool,
    on_step: Callable[[StepInfo], None] | None = None,
    mix: Callable[[torch.Tensor, torch.Tensor, int], MixedBatch] | None = None,
    after_step: Callable[[], None] | None = None,
    channels_last: bool = False,
) -> str:
    """Trains over ``loader`` (which starts after ``totals.batches`` already-done batches).

    ``mix(x, y, batch_index)`` mixes a uint8 batch (mixup/cutmix); ``after_step`` runs after each
    optimizer step (the weight EMA).

    Returns "done", "stopped" (Ctrl-C) or "nan" (a non-finite loss on some process; no step was
    taken with it). ``totals`` is updated in place.
    """
    model.train()
    bar = tqdm(
        total=totals.batches + len(loader),
        initial=totals.batches,
        desc=description,
        unit="batch",
        leave=False,
        disable=not (progress and ctx.is_main),
        file=sys.stderr,
        dynamic_ncols=True,
    )
    outcome = "done"
    start = time.perf_counter()
    try:
        for x, y in loader:
            if on_step is not None:
                on_step(StepInfo(phase, epoch, totals.batches, model))
            # Stop before the forward pass: in training mode it already moves BatchNorm statistics.
            if any_rank(stop.requested, ctx):
                outcome = "stopped"
                break
            batch = mix(x, y, totals.batches) if mix is not None else MixedBatch(x, y, y, 1.0)
            x = to_model_input(batch.x, ctx.device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            batch.y_a = batch.y_a.to(ctx.device, non_blocking=True)
            batch.y_b = batch.y_b.to(ctx.device, non_blocking=True)
            y = batch.y_a
            logits = model(x)
            loss = criterion(logits, x, batch)
            # Every process makes the same decision, so none is left waiting in a collective.
            if any_rank(not bool(torch.isfinite(loss)), ctx):
                outcome = "nan"  # no step taken with it; the caller keeps the last good checkpoint
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if after_step is not None:
                after_step()
            totals.loss_sum += float(loss.detach()) * len(y)
            totals.correct += int((logits.detach().argmax(1) == y).sum())
            totals.seen += len(y)
            totals.batches += 1
            bar.update(1)
            bar.set_postfix(loss=f"{totals.loss_sum / totals.seen:.3f}", refresh=False)
    finally:
        bar.close()
        totals.seconds += time.perf_counter() - start
    return outcome


@torch.no_grad()
def evaluate(model: nn.Module, loader, ctx: DistContext) -> tuple[float, float]:
    """(mean cross-entropy, top-1 accuracy in %) over the whole split, summed over processes."""
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    for x, y in loader:
        y = y.to(ctx.device)
        logits = model(to_model_input(x, ctx.device))
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    loss_sum, correct, seen = all_reduce_sum([loss_sum, correct, seen], ctx)
    if seen == 0:
        return math.nan, math.nan
    return loss_sum / seen, 100.0 * correct / seen
