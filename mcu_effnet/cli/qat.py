"""``mcu-effnet qat``: float training, BN folding, calibration and QAT, then the checked exports.

Also the entry point of data-parallel training:
``torchrun --nproc_per_node 2 -m mcu_effnet.cli qat ...`` (only rank 0 prints and writes).
"""

from __future__ import annotations

import argparse
import sys

from mcu_effnet.cli.spec_options import add_spec_options, spec_from_args
from mcu_effnet.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "qat",
        help="train a tiny EfficientNet with quantization-aware training and export it",
        description="Float training (AdamW or SGD, warm-up + cosine, label smoothing), BatchNorm folded "
        "into the convolutions, activation scales calibrated, then QAT fine-tuning of the Brevitas int8 "
        "model; writes a run folder with checkpoint, history, metrics and the checked QCDQ ONNX model. "
        "Ctrl-C stops after writing a checkpoint; --resume continues. Under torchrun: data-parallel.",
    )
    add_spec_options(p, board_default="stm32")
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        metavar="PATH",
        help="train/ + val/ (or test/) class folders, a CIFAR-10/100 python-batches folder, or an .npz "
        "with x_train, y_train, x_test, y_test; default: the built-in synthetic shapes set",
    )
    g.add_argument("--max-train-images", metavar="N", help="train on a random N images of the training split")
    g.add_argument("--max-val-images", metavar="N", help="validate on a random N images")
    g.add_argument("--workers", metavar="N", default="2", help="DataLoader worker processes (default 2)")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", metavar="N", default="30", help="float training epochs (default 30)")
    t.add_argument("--qat-epochs", metavar="N", default="5", help="QAT fine-tuning epochs (default 5)")
    t.add_argument("--batch-size", metavar="N", default="64", help="batch size per process (default 64)")
    t.add_argument(
        "--lr", metavar="LR", default="2e-3", help="peak learning rate, float phase (default 2e-3)"
    )
    t.add_argument("--qat-lr", metavar="LR", help="peak learning rate of QAT (default lr/10)")
    t.add_argument("--optimizer", default="adamw", help="adamw or sgd (default adamw)")
    t.add_argument(
        "--weight-decay", metavar="WD", default="0.02", help="on conv/linear weights (default 0.02)"
    )
    t.add_argument("--label-smoothing", metavar="S", default="0.1", help="(default 0.1)")
    t.add_argument(
        "--warmup-epochs", metavar="E", default="1", help="linear warm-up, float phase (default 1)"
    )
    t.add_argument(
        "--calibration-batches", metavar="N", default="16", help="batches to calibrate scales (16)"
    )
    t.add_argument("--seed", metavar="N", default="0", help="random seed (default 0)")
    t.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    t.add_argument("--no-channels-last", action="store_true",
                   help="keep NCHW activations (default: channels-last, faster on CPU)")  # fmt: skip
    t.add_argument("--no-fused-quant", action="store_true",
                   help="QAT steps through Brevitas's own quantizers (default: the fused ones, same values, faster)")  # fmt: skip
    r = p.add_argument_group("recipe")
    r.add_argument("--hflip", metavar="P", default="0.5",
                   help="horizontal flip probability (default 0.5; 0 where mirroring changes the class)")  # fmt: skip
    r.add_argument("--crop-scale", metavar=("LO", "HI"), nargs=2, default=["1", "1"],
                   help="random-resized-crop area range, e.g. 0.35 1 (default 1 1: shifts only)")  # fmt: skip
    r.add_argument("--augment", default="none",
                   help="per-image policy: none, light or strong (small affine, brightness, contrast; default none)")  # fmt: skip
    r.add_argument("--mixup", metavar="A", default="0", help="mixup Beta(A, A) (default 0: off)")
    r.add_argument("--cutmix", metavar="A", default="0", help="cutmix Beta(A, A) (default 0: off)")
    r.add_argument("--ema", metavar="DECAY", default="0.995",
                   help="weight EMA decay per step, evaluated every epoch (default 0.995; 0: off)")  # fmt: skip
    r.add_argument("--init", metavar="RUN_DIR",
                   help="start from the float weights of RUN_DIR (same spec); with --epochs 0, QAT only")  # fmt: skip
    r.add_argument(
        "--teacher", metavar="RUN_DIR", help="distil from the float model of RUN_DIR (same classes)"
    )
    r.add_argument(
        "--distill-alpha", metavar="A", default="0.5", help="weight of the distillation term (0.5)"
    )
    r.add_argument("--distill-t", metavar="T", default="4", help="distillation temperature (default 4)")
    r.add_argument("--pick", default="auto",
                   help="export the QAT checkpoint with the best int8 top-1 in TFLite Micro (int8) or fake-quant "
                   "top-1 (fake-quant: cheaper, blind to the runtime's rounding); auto (default): int8 when "
                   "each candidate's file scores 256+ validation images within 4 G MACs")  # fmt: skip
    r.add_argument("--pick-margin", metavar="POINTS", default="0.25",
                   help="with the int8 pick, score only candidates whose fake-quant top-1 is within POINTS of "
                   "the best so far (default 0.25; 100: every one)")  # fmt: skip
    o = p.add_argument_group("output")
    o.add_argument(
        "--out", metavar="RUN_DIR", help="run folder (default runs/<variant>-phi<phi>-r<res>-<time>)"
    )
    o.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    o.add_argument("--no-progress", action="store_true", help="no progress bar (epoch lines only)")
    o.add_argument(
        "--strict",
        action="store_true",
        help="the .tflite export check also requires the end-to-end figures (as mcu-effnet export --strict)",
    )
    p.set_defaults(func=run)


def _number(option: str, text: str | None, kind=float):
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{option} must be a number (got {text!r})") from None
    if kind is int:
        if not value.is_integer():
            raise UserError(f"{option} must be a whole number (got {text!r})")
        return int(value)
    return value


def train_options(args: argparse.Namespace):
    from pathlib import Path

    from mcu_effnet.quant.options import TrainOptions

    return TrainOptions(
        epochs=_number("--epochs", args.epochs, int),
        qat_epochs=_number("--qat-epochs", args.qat_epochs, int),
        batch_size=_number("--batch-size", args.batch_size, int),
        lr=_number("--lr", args.lr),
        qat_lr=_number("--qat-lr", args.qat_lr),
        optimizer=args.optimizer,
        weight_decay=_number("--weight-decay", args.weight_decay),
        label_smoothing=_number("--label-smoothing", args.label_smoothing),
        warmup_epochs=_number("--warmup-epochs", args.warmup_epochs),
        calibration_batches=_number("--calibration-batches", args.calibration_batches, int),
        seed=_number("--seed", args.seed, int),
        workers=_number("--workers", args.workers, int),
        device=args.device,
        max_train_images=_number("--max-train-images", args.max_train_images, int),
        max_val_images=_number("--max-val-images", args.max_val_images, int),
        hflip=_number("--hflip", args.hflip),
        crop_scale=(_number("--crop-scale", args.crop_scale[0]), _number("--crop-scale", args.crop_scale[1])),
        augment=args.augment,
        mixup=_number("--mixup", args.mixup),
        cutmix=_number("--cutmix", args.cutmix),
        ema=_number("--ema", args.ema),
        init=str(Path(args.init).expanduser().resolve()) if args.init else None,
        teacher=str(Path(args.teacher).expanduser().resolve()) if args.teacher else None,
        distill_alpha=_number("--distill-alpha", args.distill_alpha),
        distill_t=_number("--distill-t", args.distill_t),
        channels_last=not args.no_channels_last,
        fused_quant=not args.no_fused_quant,
        pick=args.pick,
        pick_margin=_number("--pick-margin", args.pick_margin),
    )


def _describe(spec, data, ctx) -> str:
    processes = f"; {ctx.world_size} processes" if ctx.distributed else ""
    return (
        f"training {spec.variant} phi={spec.phi:g} at {spec.resolution} px (width x{spec.width_mult:.3g}, "
        f"depth x{spec.depth_mult:.3g}, {spec.params:,} params, {spec.macs / 1e6:.2f} M MACs) on {data.name}: "
        f"{data.classes} classes, {len(data.train)} train / {len(data.val)} {data.val_split_name} images; "
        f"device {ctx.device}{processes}"
    )


def _say(message: str) -> None:
    print(message, flush=True)  # epoch lines appear as they happen, also through a pipe


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mcu_effnet.data import open_data, warn_stderr
    from mcu_effnet.quant.distributed import init_distributed, shutdown_distributed
    from mcu_effnet.quant.pipeline import train_and_export
    from mcu_effnet.quant.train import TrainingStopped

    options = train_options(args)
    ctx = init_distributed(options.device)
    try:
        data = open_data(
            args.data,
            seed=options.seed,
            max_train=options.max_train_images,
            max_val=options.max_val_images,
            warn=warn_stderr if ctx.is_main else (lambda message: None),
        )
        if args.classes is not None and _number("--classes", args.classes, int) != data.classes:
            raise UserError(
                f"--classes {args.classes}, but the data has {data.classes} classes (--classes can be left out)"
            )
        spec = spec_from_args(args, classes=data.classes)
        if ctx.is_main:
            if data.kind == "synthetic":
                print(
                    "NOTE: no --data given: training on the BUILT-IN SYNTHETIC shapes set (10 classes of "
                    "drawn shapes and stripes, generated on the fly). Its accuracy says nothing about real "
                    "images; pass --data for those.",
                    flush=True,
                )
            print(_describe(spec, data, ctx), flush=True)
            print(f"recipe: {options.describe_recipe()}", flush=True)
        result = train_and_export(
            spec,
            data,
            options,
            ctx,
            out=Path(args.out) if args.out else None,
            resume=Path(args.resume) if args.resume else None,
            data_path=str(Path(args.data).expanduser().resolve()) if args.data else None,
            progress=not args.no_progress,
            strict=args.strict,
            log=_say,
        )
        if ctx.is_main:
            print(f"run folder: {result.run_dir}", flush=True)
        return 0
    except TrainingStopped as exc:
        if ctx.is_main:
            print(f"mcu-effnet: {exc}", file=sys.stderr, flush=True)
        return 130
    except UserError:
        if ctx.is_main:
            raise
        return 2  # every process meets the same bad input; one error line is enough
    finally:
        shutdown_distributed()
