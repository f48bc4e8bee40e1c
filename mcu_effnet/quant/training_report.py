"""What a run shows and records: the per-epoch line, ``history.csv``, ``curves.png``, the final table."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, fields

from mcu_effnet.atomic import atomic_write_bytes
from mcu_effnet.quant.run_folder import CURVES, HISTORY, RunFolder


@dataclass(frozen=True)
class EpochRecord:
    phase: str  # "float" | "qat"
    epoch: int  # 1-based within the phase; 0 for the calibrated-but-not-fine-tuned QAT model
    train_loss: float
    train_top1: float
    val_loss: float
    val_top1: float
    images_per_s: float
    lr: float
    seconds: float
    ema_val_loss: float = math.nan  # the weight EMA's validation figures (NaN: EMA off)
    ema_val_top1: float = math.nan
    # QAT: the int8 file's validation top-1 in TFLite Micro (NaN: not measured, see --pick and
    # --pick-margin; metrics.json's exported.qat.skipped says which were left out and why)
    int8_val_top1: float = math.nan
    ema_int8_val_top1: float = math.nan

    def to_dict(self) -> dict:
        return asdict(self)


def _int8(value: float) -> str:
    return "" if math.isnan(value) else f" (int8 {value:5.1f}%)"


def epoch_line(record: EpochRecord, total_epochs: int) -> str:
    if record.epoch == 0:
        return (
            f"{record.phase:5s} calibrated       val loss {record.val_loss:.3f}  val {record.val_top1:5.1f}%"
            + _int8(record.int8_val_top1)
        )
    return (
        f"{record.phase:5s} epoch {record.epoch:3d}/{total_epochs:<3d}  loss {record.train_loss:.3f}  "
        f"train {record.train_top1:5.1f}%  val {record.val_top1:5.1f}%{_int8(record.int8_val_top1)}  "
        f"{record.images_per_s:7.0f} img/s  lr {record.lr:.2e}"
        + ("" if math.isnan(record.ema_val_top1) else f"  EMA val {record.ema_val_top1:5.1f}%")
        + _int8(record.ema_int8_val_top1)
    )


def exported_line(exported: dict) -> str:
    """Which weights of a phase were exported and why (``Best.summary`` plus ``picked_by``)."""
    line = f"{exported['weights']} weights of epoch {exported['epoch']}"
    if exported.get("int8_val_top1") is None:
        line += f" ({_pct(exported['val_top1'])})"
    else:
        line += (f" (int8 {_pct(exported['int8_val_top1'])} in TFLite Micro, fake-quant {_pct(exported['val_top1'])}; "
                 f"the best of {exported.get('scored', exported['candidates'])} scored candidates"
                 f"{_skipped(exported.get('skipped', []))})")  # fmt: skip
    if exported.get("picked_by"):
        line += f", picked by {exported['picked_by']}"
    return line


def _skipped(skipped: list[dict]) -> str:
    if not skipped:
        return ""
    names = ", ".join(f"{s['weights']} {s['epoch']}" for s in skipped)
    return f", {len(skipped)} not scored, fake-quant too far below the best: {names}"


def history_csv(records: list[EpochRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(EpochRecord)], lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in record.to_dict().items()})
    return buffer.getvalue()


def curves_png(records: list[EpochRecord], teacher_top1: float | None = None) -> bytes:
    """Loss and accuracy per epoch, the QAT phase continuing the float phase's x axis (and the
    distillation teacher's validation accuracy as a level line)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    float_epochs = sum(1 for r in records if r.phase == "float")
    xs = [r.epoch if r.phase == "float" else float_epochs + r.epoch for r in records]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for phase, colour in (("float", "tab:blue"), ("qat", "tab:orange")):
        points = [(x, r) for x, r in zip(xs, records, strict=True) if r.phase == phase]
        trained = [(x, r) for x, r in points if r.epoch > 0]
        if trained:
            ax_loss.plot([x for x, _ in trained], [r.train_loss for _, r in trained], "--", color=colour,
                         label=f"{phase} train")  # fmt: skip
            ax_acc.plot([x for x, _ in trained], [r.train_top1 for _, r in trained], "--", color=colour,
                        label=f"{phase} train")  # fmt: skip
        if points:
            ax_loss.plot(
                [x for x, _ in points],
                [r.val_loss for _, r in points],
                "o-",
                color=colour,
                label=f"{phase} val",
            )
            ax_acc.plot(
                [x for x, _ in points],
                [r.val_top1 for _, r in points],
                "o-",
                color=colour,
                label=f"{phase} val",
            )
        ema = [(x, r) for x, r in points if not math.isnan(r.ema_val_top1)]
        if ema:
            ax_loss.plot([x for x, _ in ema], [r.ema_val_loss for _, r in ema], "s:", color=colour,
                         label=f"{phase} EMA val")  # fmt: skip
            ax_acc.plot([x for x, _ in ema], [r.ema_val_top1 for _, r in ema], "s:", color=colour,
                        label=f"{phase} EMA val")  # fmt: skip
    if float_epochs and len(records) > float_epochs:
        for ax in (ax_loss, ax_acc):
            ax.axvline(float_epochs, color="grey", linewidth=0.8)
    if teacher_top1 is not None:
        ax_acc.axhline(teacher_top1, color="tab:green", linestyle="-.", linewidth=1, label="teacher val")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="top-1 %", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write_history(folder: RunFolder, records: list[EpochRecord], teacher_top1: float | None = None) -> None:
    folder.write_text(HISTORY, history_csv(records))
    atomic_write_bytes(folder.file(CURVES), curves_png(records, teacher_top1))


def _pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}%"


def final_table(metrics: dict) -> str:
    rows = [
        ("float top-1", _pct(metrics.get("float_top1"))),
        ("calibrated int8 top-1 (before QAT)", _pct(metrics.get("calibrated_top1"))),
        ("QAT int8 top-1", _pct(metrics.get("qat_top1"))),
        *(
            (f"exported {phase} weights", exported_line(e))
            for phase, e in metrics.get("exported", {}).items()
        ),
        *(
            (("teacher float top-1", _pct(metrics["teacher_top1"])),)
            if metrics.get("teacher_top1") is not None
            else ()
        ),
        ("parameters", f"{metrics['params']:,}"),
        ("MACs", f"{metrics['macs']:,}"),
        ("int8 weight bytes", f"{metrics['weight_bytes']:,}"),
        ("training time", f"{metrics['train_seconds']:.0f} s"),
        (
            "data",
            f"{metrics['dataset']['name']} ({metrics['dataset']['train_images']} train, "
            f"{metrics['dataset']['val_images']} {metrics['dataset']['val_split']})",
        ),  # fmt: skip
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
