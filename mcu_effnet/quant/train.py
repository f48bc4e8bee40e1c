"""The QAT recipe: float training -> fold BatchNorm -> Brevitas model -> calibrate -> QAT fine-tune.

BatchNorm is folded into the convolutions *before* QAT, so the int8 weights QAT learns are exactly
the ones that ship; there is no BN left to re-fold after quantization. The model input is
``pixel/255`` throughout (see ``loop.to_model_input``).

``run_qat`` drives both phases as one resumable state machine. The checkpoint records the phase,
the epoch and the number of batches done in it, the optimizer and schedule, and the running
sums of a part-done epoch: since data order and augmentation depend only on (seed, epoch,
index), a resumed run sees exactly the batches the interrupted one had not.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mcu_effnet.arch import ArchSpec
from mcu_effnet.atomic import atomic_write_bytes
from mcu_effnet.data import DataBundle, ImageDataset, make_loader, stack_samples
from mcu_effnet.data.augment import MixedBatch, mix_batch
from mcu_effnet.data.cache import DecodedCache
from mcu_effnet.errors import UserError
from mcu_effnet.models import build_float, build_quant, fold_batchnorm
from mcu_effnet.models.fast_float import fast_float_training
from mcu_effnet.models.fused_quant import fusable, fused_fake_quant
from mcu_effnet.quant.calibrate import calibrate_activations
from mcu_effnet.quant.distributed import (
    DistContext,
    ResumableSampler,
    ShardSampler,
    all_reduce_sum,
    barrier,
    broadcast_object,
)
from mcu_effnet.quant.int8_pick import MIN_IMAGES, Int8Scorer, images_to_score, skip_reason
from mcu_effnet.quant.loop import (
    EpochTotals,
    StepInfo,
    StopRequest,
    evaluate,
    ignore_sigint_in_worker,
    to_model_input,
    train_epoch,
)
from mcu_effnet.quant.lr_schedule import make_optimizer, make_scheduler
from mcu_effnet.quant.options import TrainOptions
from mcu_effnet.quant.recipe import Best, ModelEMA, RecipeLoss, init_weights, load_teacher
from mcu_effnet.quant.run_folder import (
    CONFIG,
    LABELS,
    METRICS,
    RUNS_ROOT,
    VAL_SAMPLES,
    RunFolder,
    default_run_name,
)
from mcu_effnet.quant.training_report import (
    EpochRecord,
    epoch_line,
    exported_line,
    final_table,
    write_history,
)

CHECKPOINT_VERSION = 1
VAL_SAMPLE_COUNT = 64  # images kept in the run folder for the export checks


def _or_nan(top1: float | None) -> float:
    """A top-1 for history.csv: NaN (an empty cell) where the int8 file was not scored."""
    return math.nan if top1 is None else top1


class TrainingStopped(KeyboardInterrupt):
    """Ctrl-C during training, after the checkpoint was written (the CLI exits 130)."""


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class QatResult:
    run_dir: Path
    metrics: dict[str, Any]
    history: list[EpochRecord]
    model: nn.Module | None = None  # the trained Brevitas model (None if the run had already finished)


def _normalised(data: dict) -> dict:
    """The JSON round trip of a dict, so a spec from the command line compares with a stored one."""
    return json.loads(json.dumps(data))


def _spec_difference(stored: dict, current: dict) -> str:
    keys = [k for k in sorted(set(stored) | set(current)) if stored.get(k) != current.get(k)]
    simple = [k for k in keys if not isinstance(stored.get(k), list | dict)]
    shown = simple or keys
    return ", ".join(f"{k} {stored.get(k)!r} -> {current.get(k)!r}" if k in simple else k for k in shown[:4])


def zero_init_classifier(model: nn.Module) -> None:
    """Starts the classifier at zero, so every class starts equally likely (loss = ln(classes)).

    The reference initialisation draws it from U(-1/sqrt(classes), +1/sqrt(classes)): meant for 1000
    classes, it gives 10-class logits of several units at step 0 and a first loss near twice
    ln(10), which tiny networks spend many steps recovering from.
    """
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Linear):
        with torch.no_grad():
            classifier.weight.zero_()
            classifier.bias.zero_()


class _ResizedInput(nn.Module):
    """A model trained at another resolution, fed this run's images resized (to score a teacher)."""

    def __init__(self, model: nn.Module, resolution: int | None) -> None:
        super().__init__()
        self.model, self.resolution = model, resolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resolution is not None and x.shape[-1] != self.resolution:
            x = torch.nn.functional.interpolate(
                x, size=(self.resolution,) * 2, mode="bilinear", align_corners=False
            )
        return self.model(x)


class _Trainer:
    """The state of one ``run_qat`` call; methods are the steps of the recipe."""

    def __init__(
        self,
        spec: ArchSpec,
        data: DataBundle,
        options: TrainOptions,
        ctx: DistContext,
        folder: RunFolder,
        *,
        progress: bool,
        on_step: Callable[[StepInfo], None] | None,
        log: Callable[[str], None],
        teacher: tuple[nn.Module, int] | None = None,
    ) -> None:
        self.spec, self.data, self.options, self.ctx, self.folder = spec, data, options, ctx, folder
        self.progress, self.on_step = progress, on_step
        self.log = log if ctx.is_main else (lambda message: None)
        size = spec.resolution
        train_source, val_source = data.train, data.val
        if data.kind == "imagefolder":  # files: decode each image once, not once per epoch
            train_source, val_source = DecodedCache(data.train, size), DecodedCache(data.val, size)
        self.train_set = ImageDataset(
            train_source, size, augment=True, seed=options.seed, recipe=options.augment_config
        )
        self.calibration_set = ImageDataset(train_source, size, augment=False)
        self.val_set = ImageDataset(val_source, size, augment=False)
        self.sampler = ResumableSampler(len(self.train_set), ctx, seed=options.seed)
        per_rank = self.sampler.num_samples
        if per_rank < 2:
            raise UserError(f"the training split has {len(self.train_set)} images: too few to train on")
        self.batch_size = min(options.batch_size, per_rank)
        self.steps_per_epoch = per_rank // self.batch_size
        teacher_model, teacher_resolution = teacher if teacher is not None else (None, None)
        if teacher_model is not None:
            teacher_model = teacher_model.to(ctx.device)
        self.criterion = RecipeLoss(
            options.label_smoothing,
            teacher_model,
            teacher_resolution,
            options.distill_alpha,
            options.distill_t,
        )
        self.teacher_top1: float | None = None
        self.ema: ModelEMA | None = None
        self.best = Best.empty()  # of the current phase
        self.exported: dict[str, dict] = {}  # phase -> which weights won (Best.summary)
        self.history: list[EpochRecord] = []
        self.train_seconds = 0.0
        self.float_top1: float | None = None
        self.calibrated_top1: float | None = None
        self.float_state: dict | None = None
        self.int8_scorer: Int8Scorer | None = None  # built on first use, on rank 0
        self.pick_images = images_to_score(options.pick, spec.macs, len(self.val_set))
        self.pick_seconds = 0.0  # spent scoring QAT candidates in TFLite Micro (wall)
        self.pick_cpu_seconds = 0.0

    # -- loaders ------------------------------------------------------------------------------

    def _train_loader(self, epoch_key: int, start_batch: int):
        self.sampler.set_epoch(epoch_key)
        self.sampler.set_start(start_batch * self.batch_size)
        self.train_set.set_epoch(epoch_key)
        return make_loader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=self.sampler,
            workers=self.options.workers,
            drop_last=True,  # equal batches: BatchNorm never sees a batch of one
            worker_init_fn=ignore_sigint_in_worker,
        )

    def _val_loader(self):
        return make_loader(
            self.val_set,
            batch_size=max(self.batch_size, 64),
            sampler=ShardSampler(len(self.val_set), self.ctx),
            workers=self.options.workers,
            drop_last=False,
            worker_init_fn=ignore_sigint_in_worker,
        )

    def _calibration_batches(self):
        # The same un-augmented images on every process, so every process gets the same scales.
        loader = make_loader(
            self.calibration_set,
            batch_size=self.batch_size,
            sampler=None,
            workers=self.options.workers,
            drop_last=False,
            worker_init_fn=ignore_sigint_in_worker,
        )
        for i, (x, _) in enumerate(loader):
            if i == self.options.calibration_batches:
                break
            yield to_model_input(x, torch.device("cpu"))

    # -- models -------------------------------------------------------------------------------

    def _wrap(self, model: nn.Module) -> nn.Module:
        model = model.to(self.ctx.device)
        if not self.ctx.distributed:
            return model
        device_ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
        # Construction broadcasts rank 0's parameters and buffers: every process starts equal.
        return DistributedDataParallel(model, device_ids=device_ids)

    @staticmethod
    def _unwrap(model: nn.Module) -> nn.Module:
        return model.module if isinstance(model, DistributedDataParallel) else model

    def quant_from_float(self, float_model: nn.Module) -> nn.Module:
        """Folds BN, loads the folded weights into the Brevitas model and calibrates its scales."""
        quant = build_quant(self.spec)
        result = quant.load_state_dict(fold_batchnorm(float_model).state_dict(), strict=False)
        if result.unexpected_keys:
            raise RuntimeError(f"float weights the quant model does not have: {result.unexpected_keys[:5]}")
        not_quantizer = [k for k in result.missing_keys if "quant" not in k]
        if not_quantizer:
            raise RuntimeError(f"quant model weights not in the folded float model: {not_quantizer[:5]}")
        quant = quant.to(self.ctx.device)
        calibrate_activations(quant, self._calibration_batches(), self.ctx.device)
        return quant

    def _int8_top1(self, model: nn.Module, epoch: int, source: str, top1: float) -> float | None:
        """The candidate's int8 validation top-1 in TFLite Micro (``int8_pick``); None when the
        QAT checkpoint is picked by the fake-quant accuracy, or when this candidate's fake-quant
        ``top1`` is too far below the best offered so far to be worth its file (recorded in
        ``self.best.skipped``; every process decides alike, from the same validation figures)."""
        if self.pick_images == 0:
            return None
        reason = skip_reason(top1, self.best.best_top1, self.options.pick_margin)
        if reason is not None:
            self.best.skip(epoch, source, top1, reason)
            return None
        start, cpu_start = time.perf_counter(), time.process_time()
        top1 = None
        if self.ctx.is_main:
            if self.int8_scorer is None:
                self.int8_scorer = Int8Scorer.from_dataset(self.spec, self.val_set, self.pick_images)
            top1 = self.int8_scorer.top1(self._unwrap(model))
        top1 = broadcast_object(top1, self.ctx)
        self.pick_seconds += time.perf_counter() - start
        # the export and the interpreter run in this process: its CPU time is what scoring costs
        self.pick_cpu_seconds += time.process_time() - cpu_start
        return top1

    # -- checkpoints --------------------------------------------------------------------------

    def _checkpoint(
        self, phase: str, epoch: int, model, optimizer, scheduler, totals: EpochTotals, done: bool
    ):
        if not self.ctx.is_main:
            return
        self.folder.save_checkpoint(
            {
                "version": CHECKPOINT_VERSION,
                "spec": self.spec.to_dict(),
                "options": self.options.to_dict(),
                "phase": phase,
                "epoch": epoch,  # epochs of this phase completed
                "batch": totals.batches,  # batches of the next epoch already done
                "totals": totals.to_dict(),
                "done": done,
                "model": self._unwrap(model).state_dict(),
                "optimizer": optimizer.state_dict() if optimizer is not None else None,
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "float_model": self.float_state,
                "history": [r.to_dict() for r in self.history],
                "train_seconds": self.train_seconds,
                "float_top1": self.float_top1,
                "calibrated_top1": self.calibrated_top1,
                "torch_rng": torch.get_rng_state(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "best": self.best.to_dict() if self.best.state else None,
                "exported": self.exported,
                "teacher_top1": self.teacher_top1,
                "pick_seconds": self.pick_seconds,
                "pick_cpu_seconds": self.pick_cpu_seconds,
            }
        )

    def _write_history(self) -> None:
        if self.ctx.is_main and self.history:
            write_history(self.folder, self.history, self.teacher_top1)

    # -- one phase ----------------------------------------------------------------------------

    def run_phase(self, phase: str, model: nn.Module, state: dict | None) -> nn.Module:
        """Trains ``model`` for the phase's epochs, from ``state`` (a checkpoint of this phase) if given."""
        options = self.options
        epochs = options.epochs if phase == "float" else options.qat_epochs
        lr = options.lr if phase == "float" else options.effective_qat_lr
        epoch_offset = 0 if phase == "float" else options.epochs  # distinct shuffles per phase
        warmup_steps = round(options.warmup_epochs * self.steps_per_epoch) if phase == "float" else 0
        warmup_steps = min(warmup_steps, max(0, epochs * self.steps_per_epoch - 1))

        if options.channels_last:
            model = model.to(memory_format=torch.channels_last)
        bare = model
        model = self._wrap(model)  # DDP makes every process start from rank 0's weights: then copy
        self.ema = ModelEMA(bare, options.ema) if options.ema > 0 else None
        if state is not None:
            if self.ema is not None and state.get("ema") is not None:
                self.ema.load_state_dict(state["ema"])
            self.best = Best.from_dict(state.get("best"))
        optimizer = make_optimizer(self._unwrap(model), options.optimizer, lr, options.weight_decay)
        scheduler = make_scheduler(optimizer, epochs * self.steps_per_epoch, warmup_steps)
        first_epoch, totals = 0, EpochTotals()
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            first_epoch, totals = state["epoch"], EpochTotals(**state["totals"])
        val_loader = self._val_loader()
        if state is None:
            self._checkpoint(phase, 0, model, optimizer, scheduler, totals, done=False)

        ema = self.ema
        after_step = (lambda: ema.update(bare)) if ema is not None else None
        fused = phase == "qat" and self._use_fused_quant(bare)
        # Training steps only: evaluation and checkpoints see the plain modules (Brevitas's for QAT).
        if fused:
            steps = fused_fake_quant
        elif phase == "float":
            steps = fast_float_training
        else:
            steps = None
        with StopRequest(announce=self.log) as stop:
            for epoch in range(first_epoch, epochs):
                loader = self._train_loader(epoch_offset + epoch, totals.batches)
                with steps(bare) if steps is not None else nullcontext():
                    outcome = train_epoch(
                        model,
                        loader,
                        optimizer,
                        scheduler,
                        self.criterion,
                        self.ctx,
                        totals,
                        stop,
                        phase=phase,
                        epoch=epoch,
                        description=f"{phase} {epoch + 1}/{epochs}",
                        progress=self.progress,
                        on_step=self.on_step,
                        mix=self._mixer(epoch_offset + epoch),
                        channels_last=options.channels_last,
                        after_step=after_step,
                    )
                if outcome == "nan":
                    kept = f"{phase} epoch {epoch}" if epoch else f"start of the {phase} phase"
                    raise TrainingDiverged(
                        f"loss became NaN in {phase} epoch {epoch + 1} (batch {totals.batches + 1}); "
                        f"stopped, last good checkpoint ({kept}) kept in {self.folder.path}; "
                        f"lower --lr and --resume it"
                    )
                if outcome == "stopped":
                    self._checkpoint(phase, epoch, model, optimizer, scheduler, totals, done=False)
                    self._write_history()
                    raise TrainingStopped(
                        f"stopped in {phase} epoch {epoch + 1} after batch {totals.batches}/{self.steps_per_epoch}; "
                        f"checkpoint written: continue with --resume {self.folder.path}"
                    )
                record = self._end_epoch(phase, epoch, epochs, model, optimizer, totals, val_loader)
                self.history.append(record)
                self.log(epoch_line(record, epochs))
                totals = EpochTotals()
                self._checkpoint(phase, epoch + 1, model, optimizer, scheduler, totals, done=False)
                self._write_history()
        return self._unwrap(model)

    def _use_fused_quant(self, model: nn.Module) -> bool:
        if not self.options.fused_quant:
            return False
        reason = fusable(model)
        if reason is not None:
            self.log(f"qat: training through Brevitas's quantizers (the fused ones do not cover {reason})")
        return reason is None

    def _mixer(self, epoch_key: int) -> Callable[[torch.Tensor, torch.Tensor, int], MixedBatch] | None:
        """Mixup/cutmix of a batch, drawn from (seed, rank, epoch, batch) only: a resumed epoch mixes
        the same way as the interrupted one would have."""
        recipe, seed, rank = self.options.augment_config, self.options.seed, self.ctx.rank
        if not (recipe.mixup or recipe.cutmix):
            return None

        def mix(x: torch.Tensor, y: torch.Tensor, batch: int) -> MixedBatch:
            return mix_batch(x, y, recipe, np.random.default_rng([seed, rank, epoch_key, batch, 7]))

        return mix

    def _end_epoch(
        self, phase, epoch, epochs, model, optimizer, totals: EpochTotals, val_loader
    ) -> EpochRecord:
        loss_sum, correct, seen, seconds = all_reduce_sum(
            [totals.loss_sum, totals.correct, totals.seen, totals.seconds], self.ctx
        )
        seconds /= self.ctx.world_size  # processes run side by side: wall time is the mean
        start = time.perf_counter()
        # The bare module: DDP's forward is a collective, and shards may differ by one batch.
        val_loss, val_top1 = evaluate(self._unwrap(model), val_loader, self.ctx)
        ema_loss, ema_top1, int8_top1, ema_int8_top1 = math.nan, math.nan, None, None
        if phase == "qat":
            int8_top1 = self._int8_top1(model, epoch + 1, "raw", val_top1)
        self.best.offer(epoch + 1, "raw", val_top1, self._unwrap(model), int8_top1)
        if self.ema is not None:
            ema_loss, ema_top1 = evaluate(self.ema.module, val_loader, self.ctx)
            if phase == "qat":
                ema_int8_top1 = self._int8_top1(self.ema.module, epoch + 1, "ema", ema_top1)
            self.best.offer(epoch + 1, "ema", ema_top1, self.ema.module, ema_int8_top1)
        self.train_seconds += seconds + (time.perf_counter() - start)
        return EpochRecord(
            phase=phase,
            epoch=epoch + 1,
            train_loss=loss_sum / max(seen, 1),
            train_top1=100.0 * correct / max(seen, 1),
            val_loss=val_loss,
            val_top1=val_top1,
            images_per_s=seen / seconds if seconds > 0 else math.nan,
            lr=optimizer.param_groups[0]["lr"],
            seconds=seconds,
            ema_val_loss=ema_loss,
            ema_val_top1=ema_top1,
            int8_val_top1=_or_nan(int8_top1),
            ema_int8_val_top1=_or_nan(ema_int8_top1),
        )

    # -- the recipe ---------------------------------------------------------------------------

    def run(self, state: dict | None) -> nn.Module:
        if state is not None:
            self.history = [EpochRecord(**r) for r in state["history"]]
            self.train_seconds = state["train_seconds"]
            self.float_top1 = state["float_top1"]
            self.calibrated_top1 = state["calibrated_top1"]
            self.float_state = state["float_model"]
            self.exported = state.get("exported", {})
            self.teacher_top1 = state.get("teacher_top1")
            self.pick_seconds = state.get("pick_seconds", 0.0)
            self.pick_cpu_seconds = state.get("pick_cpu_seconds", 0.0)
            torch.set_rng_state(state["torch_rng"])
        elif self.criterion.teacher is not None:
            _, self.teacher_top1 = evaluate(
                _ResizedInput(self.criterion.teacher, self.criterion.teacher_resolution),
                self._val_loader(),
                self.ctx,
            )
            self.log(f"teacher: {self.teacher_top1:.1f}% on {self.data.val_split_name}")

        if state is None or state["phase"] == "float":
            float_model = build_float(self.spec)
            zero_init_classifier(float_model)
            if state is not None:
                float_model.load_state_dict(state["model"])
            elif self.options.init:
                float_model.load_state_dict(init_weights(self.options.init, self.spec))
            float_model = self.run_phase("float", float_model, state)
            if self.options.epochs == 0 or not self.best.state:
                _, top1 = evaluate(float_model.to(self.ctx.device), self._val_loader(), self.ctx)
                self.best.offer(0, "init" if self.options.init else "raw", top1, float_model)
            # The best validation weights of the phase (trained or EMA) are the ones folded into QAT;
            # rank 0's copy, since BatchNorm statistics differ between processes.
            self.best.state = broadcast_object(self.best.state, self.ctx)
            float_model.load_state_dict(self.best.state)
            self.float_top1 = self.best.top1
            self.exported["float"] = self.best.summary()
            self.log(f"float: keeping the {self.best.source} weights of epoch {self.best.epoch} "
                     f"({self.best.top1:.1f}%)")  # fmt: skip
            self.best, self.ema = Best.empty(), None
            self.float_state = {k: v.detach().cpu() for k, v in float_model.state_dict().items()}
            start = time.perf_counter()
            quant = self.quant_from_float(float_model)
            val_loss, self.calibrated_top1 = evaluate(quant, self._val_loader(), self.ctx)
            int8_top1 = self._int8_top1(quant, 0, "calibrated", self.calibrated_top1)
            self.best.offer(0, "calibrated", self.calibrated_top1, quant, int8_top1)
            self.train_seconds += time.perf_counter() - start
            record = EpochRecord(
                "qat", 0, math.nan, math.nan, val_loss, self.calibrated_top1, math.nan, math.nan, 0.0,
                int8_val_top1=_or_nan(int8_top1),
            )  # fmt: skip
            self.history.append(record)
            self.log(epoch_line(record, self.options.qat_epochs))
            state = None
        else:
            quant = build_quant(self.spec)
            quant.load_state_dict(state["model"])
        quant = self.run_phase("qat", quant, state)
        # Export the best validation weights of QAT (trained, EMA or the calibrated start).
        self.best.state = broadcast_object(self.best.state, self.ctx)
        quant.load_state_dict(self.best.state)
        self.exported["qat"] = {**self.best.summary(), "picked_by": self._picked_by()}
        self.log(f"qat: keeping the {exported_line(self.exported['qat'])}")
        return quant

    def _picked_by(self) -> str:
        if self.best.int8_top1 is None:
            why = "" if self.options.pick == "fake-quant" else (
                f" (--pick auto: the int8 file costs {self.spec.macs / 1e6:.0f} M MACs per image, "
                f"too many to score {min(MIN_IMAGES, len(self.val_set))} images per candidate)")  # fmt: skip
            return (
                f"fake-quant top-1 on the validation split (the Brevitas model; ties keep the earlier){why}"
            )
        images, margin = self.pick_images, self.options.pick_margin
        return (f"int8 top-1 in TFLite Micro on {images} validation images (the candidate's own .tflite; "
                "ties: the fake-quant top-1, then the earlier), scored where the fake-quant top-1 was "
                f"within {margin:g} points of the best so far")  # fmt: skip

    def metrics(self) -> dict[str, Any]:
        qat = self.exported.get("qat")
        qat_top1 = qat["val_top1"] if qat else (self.history[-1].val_top1 if self.history else math.nan)
        last = {phase: next((r for r in reversed(self.history) if r.phase == phase and r.epoch > 0), None)
                for phase in ("float", "qat")}  # fmt: skip
        return {
            "float_top1": self.float_top1,
            "calibrated_top1": self.calibrated_top1,
            "qat_top1": qat_top1,
            # Which weights were exported per phase: "raw", "ema", "calibrated" or "init", and when.
            "exported": self.exported,
            "last_epoch_top1": {p: r.val_top1 for p, r in last.items() if r is not None},
            "last_epoch_ema_top1": {
                p: r.ema_val_top1 for p, r in last.items() if r is not None and not math.isnan(r.ema_val_top1)
            },
            "teacher_top1": self.teacher_top1,
            "recipe": {  # named as the command-line options
                "hflip": self.options.hflip,
                "crop_scale": list(self.options.crop_scale),
                "augment": self.options.augment,
                "mixup": self.options.mixup,
                "cutmix": self.options.cutmix,
                "ema": self.options.ema,
                "init": self.options.init,
                "teacher": self.options.teacher,
                "distill_alpha": self.options.distill_alpha,
                "distill_t": self.options.distill_t,
            },
            "params": self.spec.params,
            "macs": self.spec.macs,
            "weight_bytes": self.spec.weight_bytes,
            "train_seconds": round(self.train_seconds, 2),
            # of which scoring QAT candidates as int8 files in TFLite Micro (--pick int8)
            "pick_seconds": round(self.pick_seconds, 2),
            "pick_cpu_seconds": round(self.pick_cpu_seconds, 2),
            "world_size": self.ctx.world_size,
            "dataset": self.data.describe(),
        }


def _prepare_folder(
    spec: ArchSpec, data: DataBundle, options: TrainOptions, ctx: DistContext, out: Path | None, resume: Path | None,
    data_path: str | None,
) -> tuple[RunFolder, dict | None]:  # fmt: skip
    """Creates (rank 0) or opens the run folder; returns it and the checkpoint to resume from."""
    config = {
        "spec": spec.to_dict(),
        "train": options.to_dict(),
        "data": {"path": data_path, **data.describe()},
        "labels": data.class_names,
        "world_size": ctx.world_size,
    }
    if resume is not None:
        folder = RunFolder.open(resume)
        stored = folder.read_json(CONFIG)
        if _normalised(stored.get("spec", {})) != _normalised(spec.to_dict()):
            raise UserError(
                f"{resume}: was trained with a different spec ({_spec_difference(stored.get('spec', {}), _normalised(spec.to_dict()))}); "
                f"pass the same spec (phi, variant, resolution, ...), or start a new run",
                options=("phi", "variant", "resolution"),
            )
        stored_data = stored.get("data", {})
        if stored_data.get("name") != data.name or stored_data.get("classes") != data.classes:
            raise UserError(f"{resume}: was trained on {stored_data.get('name')!r} (from {stored_data.get('path')}), "
                            f"not {data.name!r}")  # fmt: skip
        state = folder.load_checkpoint(map_location="cpu")
        if state.get("version") != CHECKPOINT_VERSION:
            raise UserError(
                f"{folder.file('checkpoint.pt')}: checkpoint version {state.get('version')} is not supported"
            )
        barrier(ctx)
        if ctx.is_main:
            folder.write_json(CONFIG, config)
        return folder, state

    if ctx.is_main:
        path = (
            out if out is not None else RUNS_ROOT / default_run_name(spec.variant, spec.phi, spec.resolution)
        )
        folder = RunFolder.create(path)
        folder.write_json(CONFIG, config)
        folder.write_text(LABELS, "".join(f"{name}\n" for name in data.class_names))
        val_set = ImageDataset(data.val, spec.resolution, augment=False)
        images, labels = stack_samples(val_set, VAL_SAMPLE_COUNT)
        buffer = io.BytesIO()
        np.savez(buffer, x=images, y=labels)
        atomic_write_bytes(folder.file(VAL_SAMPLES), buffer.getvalue())
        if out is None or Path(out).resolve().parent == RUNS_ROOT.resolve():
            folder.link_latest()
        path = str(folder.path)
    else:
        path = None
    path = broadcast_object(path, ctx)
    return RunFolder(Path(path)), None


def run_qat(
    spec: ArchSpec,
    data: DataBundle,
    options: TrainOptions,
    ctx: DistContext,
    *,
    out: Path | None = None,
    resume: Path | None = None,
    data_path: str | None = None,
    progress: bool = True,
    on_step: Callable[[StepInfo], None] | None = None,
    log: Callable[[str], None] = print,
) -> QatResult:
    """Trains ``spec`` on ``data`` per ``options`` into a run folder (new, or ``resume``d).

    Raises ``TrainingStopped`` on Ctrl-C (checkpoint written), ``TrainingDiverged`` on a NaN
    loss (last good checkpoint kept) and ``UserError`` for bad input. Every process of a
    ``torchrun`` job calls this; only rank 0 writes and prints.
    """
    if spec.classes != data.classes:
        raise UserError(f"the spec has {spec.classes} classes but the data has {data.classes}")
    # Bad --init / --teacher runs are refused before any run folder is made.
    if options.init:
        init_weights(options.init, spec)
    teacher = load_teacher(options.teacher, data.class_names) if options.teacher else None
    torch.manual_seed(options.seed)
    folder, state = _prepare_folder(spec, data, options, ctx, out, resume, data_path)
    trainer = _Trainer(
        spec, data, options, ctx, folder, progress=progress, on_step=on_step, log=log, teacher=teacher
    )
    if state is not None:
        trainer.log(f"resuming {folder.path}: {state['phase']} phase, {state['epoch']} epochs done"
                    + (f" and {state['batch']} batches of the next" if state["batch"] else ""))  # fmt: skip
    quant = None
    if state is not None and state.get("done"):
        trainer.history = [EpochRecord(**r) for r in state["history"]]
        trainer.train_seconds, trainer.float_top1 = state["train_seconds"], state["float_top1"]
        trainer.calibrated_top1 = state["calibrated_top1"]
        trainer.exported, trainer.teacher_top1 = state.get("exported", {}), state.get("teacher_top1")
        trainer.pick_seconds = state.get("pick_seconds", 0.0)
        trainer.pick_cpu_seconds = state.get("pick_cpu_seconds", 0.0)
        trainer.log("training had already finished")
    else:
        quant = trainer.run(state)
        trainer._checkpoint("qat", options.qat_epochs, quant, None, None, EpochTotals(), done=True)
        trainer._write_history()
    metrics = trainer.metrics()
    if ctx.is_main:
        metrics = folder.update_json(METRICS, metrics)
        trainer.log(final_table(metrics))
    return QatResult(run_dir=folder.path, metrics=metrics, history=trainer.history, model=quant)
