"""Training speed on this machine: images/s of float and QAT training steps.

Runs the real training pieces (synthetic data through ``ImageDataset`` and a DataLoader, the
``train_epoch`` loop with AdamW and the warm-up/cosine schedule) for a fixed number of batches
at (phi -4, 32 px) and (phi -1, 96 px), for the float model and for the calibrated Brevitas QAT
model, and reports images per second. Board fitting is off (--board none) so both sizes are the
plain compound-scaled networks.

    .venv/bin/python benchmarks/train_speed.py [--batches 20] [--batch-size 32] [--workers 1]
        [--no-channels-last] [--small-only] [--threads N] [--out FILE]
    .venv/bin/python benchmarks/train_speed.py --ab [--rounds 6] [--batches 4]
    .venv/bin/python benchmarks/train_speed.py --ab --small-only --rounds 8 --batches 4 --threads 1 \
        --workers 0 --out benchmarks/results/train_speed-ab.json     # the README's figures

Writes benchmarks/results/train_speed.json and prints a table, with the figures measured before
the speed work (BASELINE) beside today's. ``--ab`` compares the training step before and after
that work in one process, alternating rounds of a few batches each (old, new, old, new, ...) on
the same models, so load from other processes falls on both alike; it prints and records the
median of the per-round ratios, and the CPU seconds per image of each side (this process and
its loader workers). On a shared machine absolute images/s are noise; the ratio much less so.
The new side trains QAT through ``models.fused_quant`` as training does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from mcu_effnet.arch import make_spec
from mcu_effnet.data import ImageDataset, make_loader, open_data
from mcu_effnet.models import build_float
from mcu_effnet.models.fast_float import fast_float_training
from mcu_effnet.models.fused_quant import fusable, fused_fake_quant
from mcu_effnet.quant.distributed import DistContext
from mcu_effnet.quant.loop import EpochTotals, StopRequest, train_epoch
from mcu_effnet.quant.lr_schedule import make_optimizer, make_scheduler
from mcu_effnet.quant.recipe import RecipeLoss

CONFIGS = ((-4.0, 32), (-1.0, 96))
# Measured at commit 0b73497 (batch 32, NCHW, 2 threads), before channels-last and the later work.
BASELINE = {(-4.0, 32): (240.7, 96.4), (-1.0, 96): (50.9, 14.6)}
RESULTS = Path(__file__).parent / "results" / "train_speed.json"
CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def _quant_from(float_model: nn.Module, spec, batches: list[torch.Tensor]) -> nn.Module:
    from mcu_effnet.models import build_quant, fold_batchnorm
    from mcu_effnet.quant.calibrate import calibrate_activations

    quant = build_quant(spec)
    quant.load_state_dict(fold_batchnorm(float_model).state_dict(), strict=False)
    calibrate_activations(quant, batches, CPU.device)
    return quant


class _Stepper:
    """Training steps of one model with one setting of the speed options, timed per call."""

    def __init__(self, model: nn.Module, dataset: ImageDataset, batch_size: int, workers: int,
                 channels_last: bool, fused: bool, total_batches: int, fused_quant: bool = False) -> None:  # fmt: skip
        if channels_last:  # as training does it (TrainOptions.channels_last)
            model = model.to(memory_format=torch.channels_last)
        self.model, self.dataset, self.batch_size = model, dataset, batch_size
        self.workers, self.channels_last = workers, channels_last
        # QAT steps through models.fused_quant, as training does it (TrainOptions.fused_quant),
        # float steps through models.fast_float, as the float phase does (a no-op on the other).
        self.fused_quant = fused_quant and fusable(model) is None
        self.optimizer = make_optimizer(model, "adamw", 1e-3, 0.02, fused=fused)
        self.scheduler = make_scheduler(self.optimizer, total_batches + 2, 0)
        self.criterion = RecipeLoss(label_smoothing=0.1)

    def run(self, batches: int) -> tuple[int, float, float]:
        """(images, seconds, CPU seconds) of ``batches`` training steps; the CPU time is this
        process's and its loader workers' (they end with the epoch), the figure that other
        processes' load on the cores disturbs least."""
        subset = torch.utils.data.Subset(self.dataset, range(batches * self.batch_size))
        loader = make_loader(
            subset, batch_size=self.batch_size, sampler=None, workers=self.workers, drop_last=True
        )
        totals = EpochTotals()
        with StopRequest() as stop, contextlib.ExitStack() as fused:
            if self.fused_quant:
                fused.enter_context(fused_fake_quant(self.model))
                fused.enter_context(fast_float_training(self.model))
            start, cpu_start = time.perf_counter(), _cpu_seconds()
            train_epoch(self.model, loader, self.optimizer, self.scheduler, self.criterion, CPU, totals, stop,
                        phase="bench", epoch=0, description="", progress=False,
                        channels_last=self.channels_last)  # fmt: skip
            seconds = time.perf_counter() - start
        del loader  # its workers are joined: their CPU time is counted
        return totals.seen, seconds, _cpu_seconds() - cpu_start


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _images_per_s(
    model: nn.Module, dataset: ImageDataset, batch_size: int, batches: int, workers: int, channels_last: bool
) -> float:
    stepper = _Stepper(model, dataset, batch_size, workers, channels_last, fused=True, total_batches=batches,
                       fused_quant=True)  # fmt: skip
    stepper.run(2)  # warm-up (allocator, oneDNN kernels)
    images, seconds, _ = stepper.run(batches)
    return images / seconds


def _ab(model: nn.Module, dataset: ImageDataset, args) -> dict:
    """Old (NCHW, unfused optimizer, Brevitas's quantizers, plain float layers) against new
    (channels-last, fused optimizer, fused fake quantization, ``models.fast_float``), alternating
    rounds."""
    import copy

    sides = {
        "old": _Stepper(copy.deepcopy(model), dataset, args.batch_size, args.workers, False, False,
                        args.rounds * args.batches + 1),
        "new": _Stepper(copy.deepcopy(model), dataset, args.batch_size, args.workers, True, True,
                        args.rounds * args.batches + 1, fused_quant=True),
    }  # fmt: skip
    for stepper in sides.values():
        stepper.run(1)  # warm-up
    sums = {name: [0, 0.0, 0.0] for name in sides}
    ratios = []  # of adjacent rounds: a burst of outside load spoils one ratio, not the median
    for round_index in range(args.rounds):
        # Alternate which side goes first, so neither always follows the other's cache state.
        order = list(sides) if round_index % 2 == 0 else list(reversed(sides))
        speed = {}
        for name in order:
            images, seconds, cpu = sides[name].run(args.batches)
            sums[name][0] += images
            sums[name][1] += seconds
            sums[name][2] += cpu
            speed[name] = images / seconds
        ratios.append(speed["new"] / speed["old"])
    overall = {name: images / seconds for name, (images, seconds, _) in sums.items()}
    cpu_ms = {name: 1000 * cpu / images for name, (images, _, cpu) in sums.items()}
    return {"old_images_per_s": round(overall["old"], 1), "new_images_per_s": round(overall["new"], 1),
            "ratio": round(statistics.median(ratios), 2),
            "round_ratios": [round(r, 2) for r in ratios],
            "old_cpu_ms_per_image": round(cpu_ms["old"], 2), "new_cpu_ms_per_image": round(cpu_ms["new"], 2),
            "cpu_ratio": round(cpu_ms["old"] / cpu_ms["new"], 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="timed batches per measurement")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--variant", default="full")
    parser.add_argument("--no-channels-last", action="store_true", help="NCHW activations (the old default)")
    parser.add_argument("--small-only", action="store_true", help="only phi -4 at 32 px")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON written (default {RESULTS})")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--ab", action="store_true", help="old vs new step, interleaved in this process")
    parser.add_argument("--rounds", type=int, default=6, help="--ab: alternating rounds per side")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.ab:
        args.batches = min(args.batches, 4) if args.batches == 20 else args.batches

    data = open_data(None, max_train=args.batch_size * (args.batches + 4))
    rows = []
    channels_last = not args.no_channels_last
    for phi, resolution in CONFIGS[:1] if args.small_only else CONFIGS:
        spec = make_spec(phi, resolution=resolution, classes=10, variant=args.variant, board=None)
        dataset = ImageDataset(data.train, resolution, augment=True, seed=0)
        torch.manual_seed(0)
        float_model = build_float(spec)
        calibration = [torch.stack([dataset[i][0] for i in range(args.batch_size)]).float() / 255]
        if args.ab:
            float_ab = _ab(float_model, dataset, args)
            qat_ab = _ab(_quant_from(float_model, spec, calibration), dataset, args)
            rows.append({"phi": phi, "resolution": resolution, "variant": args.variant,
                         "float": float_ab, "qat": qat_ab})  # fmt: skip
            for name, ab in (("float", float_ab), ("QAT", qat_ab)):
                print(f"phi {phi:g} @ {resolution}px {name}: new/old {ab['ratio']:.2f}x "
                      f"({ab['old_images_per_s']} -> {ab['new_images_per_s']} img/s); CPU "
                      f"{ab['old_cpu_ms_per_image']} -> {ab['new_cpu_ms_per_image']} ms/image = "
                      f"{ab['cpu_ratio']:.2f}x", flush=True)  # fmt: skip
            continue
        float_speed = _images_per_s(
            float_model, dataset, args.batch_size, args.batches, args.workers, channels_last
        )
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
    if args.ab:
        report["ab"] = {"rounds": args.rounds, "batches_per_round": args.batches,
                        "old": "NCHW, unfused AdamW, Brevitas quantizers, plain float layers",
                        "new": "channels-last, fused AdamW, fused fake quantization (QAT), fast float layers (float)"}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.ab:
        print(
            f"(load average {report['machine']['load_average']:.1f} on {os.cpu_count()} cores; written to {args.out})"
        )
        return
    print(f"{'phi':>5} {'px':>4} {'params':>10} {'MACs':>12} {'float img/s':>12} {'(baseline)':>10} "
          f"{'QAT img/s':>10} {'(baseline)':>10}")  # fmt: skip
    for r in rows:
        base = BASELINE.get((r["phi"], r["resolution"]), (float("nan"), float("nan")))
        print(f"{r['phi']:>5g} {r['resolution']:>4} {r['params']:>10,} {r['macs']:>12,} "
              f"{r['float_images_per_s']:>12.1f} {base[0]:>10.1f} {r['qat_images_per_s']:>10.1f} {base[1]:>10.1f}")  # fmt: skip
    print(
        f"(load average {report['machine']['load_average']:.1f} on {os.cpu_count()} cores; written to {args.out})"
    )


if __name__ == "__main__":
    main()
