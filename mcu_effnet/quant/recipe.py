"""The training recipe's extra pieces: weight EMA, the loss (mixup targets and distillation), the
best-checkpoint record, and the float weights taken from other run folders (``--init``, ``--teacher``).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mcu_effnet.arch import ArchSpec
from mcu_effnet.data.augment import MixedBatch
from mcu_effnet.errors import UserError
from mcu_effnet.quant.run_folder import CONFIG, LABELS, RunFolder


class ModelEMA:
    """An exponential moving average of a model's weights (floating-point parameters and buffers;
    integer buffers are copied). The decay ramps up as ``(1 + n) / (10 + n)`` over the first steps,
    so the average is not dominated by the random initial weights on short runs."""

    def __init__(self, model: nn.Module, decay: float, updates: int = 0) -> None:
        self.decay = decay
        self.updates = updates
        self.module = copy.deepcopy(model).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()  # n = updates before this one: the first step keeps 1/10
        self.updates += 1
        source = model.state_dict()
        for name, value in self.module.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(decay).add_(source[name].detach(), alpha=1.0 - decay)
            else:
                value.copy_(source[name])

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = state["updates"]


@dataclass
class Best:
    """The best validation result of a phase so far, and the weights that gave it.

    With ``int8_top1`` given (QAT, picked by the int8 file in TFLite Micro) candidates rank by it
    first and by the fake-quant ``top1`` second; ties keep the earlier."""

    epoch: int  # 1-based in the phase; 0 = the calibrated model before QAT
    source: str  # "raw" (the trained weights), "ema" or "calibrated"
    top1: float
    state: dict[str, torch.Tensor]
    int8_top1: float | None = None
    candidates: int = 0  # how many were offered
    best_top1: float = -math.inf  # the highest fake-quant top-1 offered, scored in int8 or not
    # QAT candidates not scored in int8 (``int8_pick.skip_reason``): their fake-quant top-1 and why
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def _key(self, top1: float, int8_top1: float | None) -> tuple[float, float]:
        return (-math.inf if int8_top1 is None else int8_top1, top1)

    def offer(
        self, epoch: int, source: str, top1: float, model: nn.Module, int8_top1: float | None = None
    ) -> bool:
        """Keeps ``model``'s weights if they beat the best so far (ties keep the earlier)."""
        self.candidates += 1
        self.best_top1 = max(self.best_top1, top1)
        if self._key(top1, int8_top1) > self._key(self.top1, self.int8_top1):
            self.epoch, self.source, self.top1, self.int8_top1 = epoch, source, top1, int8_top1
            self.state = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
            return True
        return False

    def summary(self) -> dict[str, Any]:
        summary = {"weights": self.source, "epoch": self.epoch, "val_top1": self.top1}
        if self.int8_top1 is not None:
            summary |= {"int8_val_top1": self.int8_top1, "candidates": self.candidates}
            summary |= {"scored": self.candidates - len(self.skipped), "skipped": list(self.skipped)}
        return summary

    def skip(self, epoch: int, source: str, top1: float, reason: str) -> None:
        """Records a candidate left out of the int8 scoring (it is still ``offer``ed, without int8)."""
        self.skipped.append({"epoch": epoch, "weights": source, "val_top1": top1, "reason": reason})

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "candidates": self.candidates, "state": self.state,
                "best_top1": self.best_top1, "skipped": list(self.skipped)}  # fmt: skip

    @classmethod
    def empty(cls) -> Best:
        return cls(epoch=-1, source="none", top1=float("-inf"), state={})

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Best:
        if data is None:
            return cls.empty()
        return cls(
            epoch=data["epoch"],
            source=data["weights"],
            top1=data["val_top1"],
            state=data["state"],
            int8_top1=data.get("int8_val_top1"),
            candidates=data.get("candidates", 0),
            best_top1=data.get("best_top1", data["val_top1"]),
            skipped=list(data.get("skipped", [])),
        )


class RecipeLoss:
    """Cross-entropy on (possibly mixed) targets, plus distillation from a float teacher:

    ``(1 - alpha) * CE + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))``

    (the T^2 keeps the soft term's gradients on the scale of the hard term's). The teacher sees the
    same (augmented, mixed) input as the student, resized if it was trained at another resolution.
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        teacher: nn.Module | None = None,
        teacher_resolution: int | None = None,
        alpha: float = 0.5,
        temperature: float = 4.0,
    ) -> None:
        self.cross_entropy = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.teacher = teacher.eval() if teacher is not None else None
        self.teacher_resolution = teacher_resolution
        self.alpha = alpha
        self.temperature = temperature

    def hard(self, logits: torch.Tensor, batch: MixedBatch) -> torch.Tensor:
        loss = self.cross_entropy(logits, batch.y_a)
        if batch.lam < 1.0:
            loss = batch.lam * loss + (1.0 - batch.lam) * self.cross_entropy(logits, batch.y_b)
        return loss

    def soft(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        assert self.teacher is not None
        with torch.no_grad():
            if self.teacher_resolution is not None and self.teacher_resolution != x.shape[-1]:
                x = F.interpolate(
                    x, size=(self.teacher_resolution,) * 2, mode="bilinear", align_corners=False
                )
            teacher_logits = self.teacher(x)
        t = self.temperature
        return F.kl_div(
            F.log_softmax(logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
            reduction="batchmean", log_target=True,
        ) * (t * t)  # fmt: skip

    def __call__(self, logits: torch.Tensor, x: torch.Tensor, batch: MixedBatch) -> torch.Tensor:
        loss = self.hard(logits, batch)
        if self.teacher is None or self.alpha == 0:
            return loss
        return (1.0 - self.alpha) * loss + self.alpha * self.soft(logits, x)


def _open(run_dir: str | Path, role: str) -> RunFolder:
    try:
        return RunFolder.open(Path(run_dir))
    except UserError as exc:
        raise UserError(f"{role} {exc}") from None


def _float_weights(folder: RunFolder, role: str) -> tuple[ArchSpec, dict[str, torch.Tensor], list[str]]:
    """The spec, the float weights (the best of the float phase) and the labels of a run folder."""
    config = folder.read_json(CONFIG)
    spec = ArchSpec.from_dict(config["spec"])
    state = folder.load_checkpoint(map_location="cpu")
    weights = state.get("float_model")
    if weights is None:
        raise UserError(f"{role} {folder.path}: its float phase has not finished (no float weights yet)")
    labels_file = folder.file(LABELS)
    labels = labels_file.read_text().split("\n")[:-1] if labels_file.exists() else config.get("labels", [])
    return spec, weights, labels


def _normalised(data: dict) -> dict:
    return json.loads(json.dumps(data))


def init_weights(run_dir: str | Path, spec: ArchSpec) -> dict[str, torch.Tensor]:
    """``--init``: the float weights of another run of the same spec."""
    other, weights, _ = _float_weights(_open(run_dir, "--init"), "--init")
    if _normalised(other.to_dict()) != _normalised(spec.to_dict()):
        stored, current = _normalised(other.to_dict()), _normalised(spec.to_dict())
        keys = [k for k in sorted(set(stored) | set(current)) if stored.get(k) != current.get(k)]
        shown = ", ".join(f"{k} {stored.get(k)!r} -> {current.get(k)!r}" for k in keys[:3])
        raise UserError(
            f"--init {run_dir}: was trained with another spec ({shown}); pass the same spec options"
        )
    return weights


def load_teacher(run_dir: str | Path, class_names: list[str]) -> tuple[nn.Module, int]:
    """``--teacher``: the float model of another run on the same classes, and its resolution."""
    from mcu_effnet.models import build_float

    spec, weights, labels = _float_weights(_open(run_dir, "--teacher"), "--teacher")
    if spec.classes != len(class_names) or (labels and labels != list(class_names)):
        raise UserError(
            f"--teacher {run_dir}: its classes differ from the data's "
            f"({spec.classes} classes: {', '.join(labels[:4])}{'...' if len(labels) > 4 else ''} vs "
            f"{len(class_names)}: {', '.join(class_names[:4])}{'...' if len(class_names) > 4 else ''})"
        )
    teacher = build_float(spec)
    teacher.load_state_dict(weights)
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher.eval(), spec.resolution
