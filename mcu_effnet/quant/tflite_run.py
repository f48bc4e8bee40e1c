"""The run folder's ``.tflite`` step, called by ``export_run`` right after ``model.onnx``.

Writes ``model.tflite`` from the checked ``model.onnx`` (labels from ``labels.txt`` into the
model metadata, the export check on the stored validation images), then measures the int8
accuracy of the file itself in TFLite Micro on the whole validation split and records
``int8_top1`` (percent, like ``qat_top1``), ``tflite_bytes`` and the check figures in
``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mcu_effnet.errors import UserError
from mcu_effnet.quant.int8_agreement import compare_with_qat
from mcu_effnet.quant.run_folder import CONFIG, LABELS, METRICS, ONNX, VAL_SAMPLES, RunFolder
from mcu_effnet.quant.tflite_check import int8_predictions_on_dataset
from mcu_effnet.quant.tflite_export import ExportReport, export_tflite

TFLITE = "model.tflite"


def _labels(folder: RunFolder) -> list[str] | None:
    path = folder.file(LABELS)
    if not path.exists():
        return None
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return names or None


def _val_samples(folder: RunFolder) -> tuple[np.ndarray, np.ndarray]:
    path = folder.file(VAL_SAMPLES)
    try:
        with np.load(path) as archive:
            return archive["x"], archive["y"]
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"{path}: unreadable validation samples ({exc})") from None


def _val_dataset(folder: RunFolder):
    """The run's whole validation split, reopened as training opened it, without augmentation."""
    from mcu_effnet.data import ImageDataset, open_data

    config = folder.read_json(CONFIG)
    train = config.get("train", {})
    data = open_data(
        config.get("data", {}).get("path"),
        seed=int(train.get("seed", 0)),
        max_train=train.get("max_train_images"),
        max_val=train.get("max_val_images"),
        warn=lambda message: None,
    )
    resolution = int(config["spec"]["resolution"])
    return ImageDataset(data.val, resolution, augment=False)


def export_run_tflite(
    folder: RunFolder, strict: bool = False, log: Callable[[str], None] = print, qat_model=None
) -> ExportReport:
    """``model.onnx`` → checked ``model.tflite`` in the run folder, and its metrics. Given the
    Brevitas ``qat_model`` the file came from, also which validation images the two classify
    differently (``int8_vs_qat``, ``mcu_effnet.quant.int8_agreement``)."""
    images, targets = _val_samples(folder)
    target = folder.file(TFLITE)
    report = export_tflite(folder.file(ONNX), target, labels=_labels(folder), inputs=images, strict=strict)
    blob = Path(target).read_bytes()
    metrics: dict = {
        "tflite_bytes": report.tflite_bytes,
        "tflite_check": report.check.to_dict() if report.check else None,
    }
    try:
        dataset = _val_dataset(folder)
        source = "the validation split"
    except UserError as exc:  # the data moved since training: fall back to the stored samples
        log(f"mcu-effnet: warning: {exc}; int8_top1 measured on the {len(targets)} stored validation images")
        dataset, source = list(zip(images, targets, strict=True)), "stored validation images"
    predictions, labels = int8_predictions_on_dataset(blob, dataset)
    top1, count = (float(np.mean(predictions == labels)) if len(labels) else 0.0), len(labels)
    # percent, like float_top1 and qat_top1 beside it
    metrics.update({"int8_top1": round(100 * top1, 2), "int8_top1_images": count})
    agreement = None
    if qat_model is not None:
        agreement = compare_with_qat(qat_model, blob, dataset, tflm_top1=predictions)
    if agreement is not None:
        metrics["int8_vs_qat"] = agreement.to_dict()
    merged = folder.update_json(METRICS, metrics)
    for line in report.summary_lines():
        log(line)
    log(f"  int8 top-1 of {target.name} in TFLite Micro on {source} ({count} images): {100 * top1:.2f}%")
    if agreement is not None:
        log(f"  {agreement.summary()}")
    log(side_by_side(merged))
    return report


def side_by_side(metrics: dict) -> str:
    """float, QAT (fake-quant) and int8 (.tflite in TFLite Micro) top-1 on one line."""

    def pct(key: str) -> str:
        value = metrics.get(key)
        return "n/a" if value is None else f"{float(value):.2f}%"

    return (
        f"top-1: float {pct('float_top1')}, QAT {pct('qat_top1')}, "
        f"int8 .tflite {pct('int8_top1')} (TFLite Micro, bit-exact with the firmware)"
    )
