"""Training speed on this machine: images/s of float and QAT training steps.

Runs the real training pieces (synthetic data through ``ImageDataset`` and a DataLoader, the
``train_epoch`` loop with AdamW and the warm-up/cosine schedule) for a fixed number of batches
at (phi -4, 32 px) and (phi -1, 96 px), for the float model and for the calibrated Brevitas QAT
model, and reports images per second. Board fitting is off (--board none) so both sizes are the
plain compound-scaled networks.

    .venv/bin/python benchmarks/train_speed.py [--batches 20] [--batch-size 32] [--workers 1]
        [--no-channels-last] [--small-only] [--out FILE]

Writes benchmarks/results/train_speed.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from torch import nn

from mcu_effnet.arch import make_spec
from mcu_effnet.data import ImageDataset, make_loader, open_data
from mcu_effnet.models import build_float
from mcu_effnet.quant.distributed import DistContext
from mcu_effnet.quant.loop import EpochTotals, StopRequest, train_epoch
from mcu_effnet.quant.lr_schedule import make_optimizer, make_scheduler
from mcu_effnet.quant.recipe import RecipeLoss

CONFIGS = ((-4.0, 32), (-1.0, 96))
RESULTS = Path(__file__).parent / "results" / "train_speed.json"
CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def _quant_from(float_model: nn.Module, spec, batches: list[torch.Tensor]) -> nn.Module:
    from mcu_effnet.models import build_quant, fold_batchnorm
    from mcu_effnet.quant.calibrate import calibrate_activations

    quant = build_quant(spec)
    quant.load_state_dict(fold_batchnorm(float_model).state_dict(), strict=False)
    calibrate_activations(quant, batches, CPU.device)
    return quant


def _images_per_s(
    model: nn.Module, dataset: ImageDataset, batch_size: int, batches: int, workers: int, channels_last: bool
) -> float:
    if channels_last:  # as training does it (TrainOptions.channels_last)
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, "adamw", 1e-3, 0.02)
    scheduler = make_scheduler(optimizer, batches + 2, 0)
    criterion = RecipeLoss(label_smoothing=0.1)
    # Two warm-up batches (allocator, oneDNN kernels), then the timed ones.
    for count in (2, batches):
        subset = torch.utils.data.Subset(dataset, range(count * batch_size))
        loader = make_loader(subset, batch_size=batch_size, sampler=None, workers=workers, drop_last=True)
        totals = EpochTotals()
        with StopRequest() as stop:
            start = time.perf_counter()
            train_epoch(model, loader, optimizer, scheduler, criterion, CPU, totals, stop,
                        phase="bench", epoch=0, description="", progress=False,
                        channels_last=channels_last)  # fmt: skip
            seconds = time.perf_counter() - start
    return totals.seen / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="timed batches per measurement")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--variant", default="full")
    parser.add_argument("--no-channels-last", action="store_true", help="NCHW activations (the old default)")
    parser.add_argument("--small-only", action="store_true", help="only phi -4 at 32 px")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON written (default {RESULTS})")
    args = parser.parse_args()

    data = open_data(None, max_train=args.batch_size * (args.batches + 4))
    rows = []
    channels_last = not args.no_channels_last
    for phi, resolution in CONFIGS[:1] if args.small_only else CONFIGS:
        spec = make_spec(phi, resolution=resolution, classes=10, variant=args.variant, board=None)
        dataset = ImageDataset(data.train, resolution, augment=True, seed=0)
        torch.manual_seed(0)
        float_model = build_float(spec)
        float_speed = _images_per_s(
            float_model, dataset, args.batch_size, args.batches, args.workers, channels_last
        )
        calibration = [torch.stack([dataset[i][0] for i in range(args.batch_size)]).float() / 255]
        quant = _quant_from(float_model, spec, calibration)
        qat_speed = _images_per_s(quant, dataset, args.batch_size, args.batches, args.workers, channels_last)
        rows.append(
            {
                "phi": phi,
                "resolution": resolution,
                "variant": args.variant,
                "params": spec.params,
                "macs": spec.macs,
                "float_images_per_s": round(float_speed, 1),
                "qat_images_per_s": round(qat_speed, 1),
            }
        )
        print(
            f"phi {phi:g} @ {resolution}px: float {float_speed:.1f} img/s, QAT {qat_speed:.1f} img/s",
            flush=True,
        )

    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "load_average": os.getloadavg()[0],
        },
        "batch_size": args.batch_size,
        "timed_batches": args.batches,
        "workers": args.workers,
        "channels_last": channels_last,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    header = f"{'phi':>5} {'px':>4} {'variant':>7} {'params':>10} {'MACs':>12} {'float img/s':>12} {'QAT img/s':>10}"
    print(header)
    for r in rows:
        print(f"{r['phi']:>5g} {r['resolution']:>4} {r['variant']:>7} {r['params']:>10,} {r['macs']:>12,} "
              f"{r['float_images_per_s']:>12.1f} {r['qat_images_per_s']:>10.1f}")  # fmt: skip
    print(
        f"(load average {report['machine']['load_average']:.1f} on {os.cpu_count()} cores; written to {args.out})"
    )


if __name__ == "__main__":
    main()
