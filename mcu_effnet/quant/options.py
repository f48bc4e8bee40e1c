"""Every training option of ``mcu-effnet qat`` in one dataclass, recorded in ``config.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from mcu_effnet.data.augment import AugmentConfig
from mcu_effnet.errors import UserError

OPTIMIZERS = ("adamw", "sgd")
DEVICES = ("auto", "cpu", "cuda")
PICKS = ("auto", "int8", "fake-quant")  # how the exported QAT checkpoint is picked


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 30  # float epochs
    qat_epochs: int = 10
    batch_size: int = 64  # per process; the global batch is batch_size x world size
    lr: float = 2e-3  # peak learning rate of the float phase
    qat_lr: float | None = None  # peak learning rate of QAT; None: lr / 10
    optimizer: str = "adamw"
    weight_decay: float = 0.02  # on conv and linear weights only (not biases, BN or quantizer scales)
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0  # linear warm-up of the float phase, then cosine to zero
    calibration_batches: int = 16  # activation-scale calibration before QAT
    seed: int = 0
    workers: int = 2
    device: str = "auto"
    max_train_images: int | None = None  # a random subset of the training split
    max_val_images: int | None = None
    # The recipe: augmentation (see mcu_effnet.data.augment), weight EMA, init and distillation.
    hflip: float = 0.5
    crop_scale: tuple[float, float] = (1.0, 1.0)
    augment: str = "none"
    mixup: float = 0.0
    cutmix: float = 0.0
    ema: float = 0.995  # decay per step of the weight EMA; 0 = off
    init: str | None = None  # run folder whose float weights start the float phase
    teacher: str | None = None  # run folder of a float teacher for distillation
    distill_alpha: float = 0.5  # weight of the distillation term (1 - alpha on cross-entropy)
    distill_t: float = 4.0  # softmax temperature of the distillation term
    # NHWC activations: faster oneDNN convolutions on CPU for these depthwise-heavy networks.
    channels_last: bool = True
    # QAT steps through models.fused_quant (Brevitas's values and gradients, a fraction of the cost).
    fused_quant: bool = True
    # How the exported QAT checkpoint is picked among the calibrated start and each epoch's raw and
    # EMA weights: "int8" by its .tflite's validation top-1 in TFLite Micro (quant.int8_pick),
    # "fake-quant" by the Brevitas model's (single rounding; cheaper), "auto" by int8 when that
    # costs at most int8_pick.AUTO_MACS per candidate.
    pick: str = "auto"
    # With the int8 pick: candidates whose fake-quant top-1 is more than this many points below the
    # best offered so far are not scored in int8 (int8_pick.skip_reason); 100 scores every one.
    pick_margin: float = 0.25

    def __post_init__(self) -> None:
        # (holds, the parameters it is about, the message in their names)
        checks = [
            (self.epochs >= 0, ("epochs",), f"epochs must be >= 0, got {self.epochs}"),
            (self.qat_epochs >= 0, ("qat_epochs",), f"qat_epochs must be >= 0, got {self.qat_epochs}"),
            (
                self.epochs + self.qat_epochs > 0,
                ("epochs", "qat_epochs"),
                "epochs and qat_epochs are both 0: nothing to train",
            ),
            (
                self.batch_size >= 2,
                ("batch_size",),
                f"batch_size must be >= 2 (BatchNorm needs it), got {self.batch_size}",
            ),
            (self.lr > 0, ("lr",), f"lr must be > 0, got {self.lr}"),
            (self.qat_lr is None or self.qat_lr > 0, ("qat_lr",), f"qat_lr must be > 0, got {self.qat_lr}"),
            (
                self.optimizer in OPTIMIZERS,
                ("optimizer",),
                f"optimizer must be one of {', '.join(OPTIMIZERS)}",
            ),
            (
                self.weight_decay >= 0,
                ("weight_decay",),
                f"weight_decay must be >= 0, got {self.weight_decay}",
            ),
            (
                0 <= self.label_smoothing < 1,
                ("label_smoothing",),
                f"label_smoothing must be in [0, 1), got {self.label_smoothing}",
            ),
            (
                self.warmup_epochs >= 0,
                ("warmup_epochs",),
                f"warmup_epochs must be >= 0, got {self.warmup_epochs}",
            ),
            (self.calibration_batches >= 1, ("calibration_batches",), "calibration_batches must be >= 1"),
            (self.workers >= 0, ("workers",), f"workers must be >= 0, got {self.workers}"),
            (self.device in DEVICES, ("device",), f"device must be one of {', '.join(DEVICES)}"),
            *(
                (limit is None or limit >= 1, (name,), f"{name} must be at least 1, got {limit}")
                for name, limit in (
                    ("max_train_images", self.max_train_images),
                    ("max_val_images", self.max_val_images),
                )
            ),
        ]
        checks += [
            (0 <= self.ema < 1, ("ema",), f"ema must be in [0, 1), got {self.ema:g}"),
            (
                0 <= self.distill_alpha <= 1,
                ("distill_alpha",),
                f"distill_alpha must be in [0, 1], got {self.distill_alpha:g}",
            ),
            (self.distill_t > 0, ("distill_t",), f"distill_t must be > 0, got {self.distill_t:g}"),
            (self.pick in PICKS, ("pick",), f"pick must be one of {', '.join(PICKS)}, got {self.pick!r}"),
            (
                0 <= self.pick_margin <= 100,
                ("pick_margin",),
                f"pick_margin must be in [0, 100] (points of top-1), got {self.pick_margin:g}",
            ),
        ]
        for ok, options, message in checks:
            if not ok:
                raise UserError(message, options=options)
        self.augment_config  # noqa: B018 (checks the augmentation settings)

    @property
    def augment_config(self) -> AugmentConfig:
        return AugmentConfig(
            hflip=self.hflip,
            crop_scale=(float(self.crop_scale[0]), float(self.crop_scale[1])),
            policy=self.augment,
            mixup=self.mixup,
            cutmix=self.cutmix,
        )

    def describe_recipe(self) -> str:
        """One line for the log and the demo: augmentation, EMA, init and teacher."""
        parts = [self.augment_config.describe(), f"EMA {self.ema:g}" if self.ema else "EMA off"]
        if self.init:
            parts.append(f"init from {self.init}")
        if self.teacher:
            parts.append(f"teacher {self.teacher} (alpha {self.distill_alpha:g}, T {self.distill_t:g})")
        return "; ".join(parts)

    @property
    def effective_qat_lr(self) -> float:
        return self.qat_lr if self.qat_lr is not None else self.lr / 10

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainOptions:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "crop_scale" in values:
            values["crop_scale"] = tuple(values["crop_scale"])
        return cls(**values)
