"""Where the int8 file and the QAT model it came from classify a validation image differently.

``qat_top1`` is the Brevitas model's accuracy and ``int8_top1`` the ``.tflite``'s in TFLite
Micro; when they differ, the question is whether the export lost something (folded weights,
scales, biases, the sigmoid table) or the runtime's arithmetic did. The file is run twice in the
host simulator (bit-exact with TFLite Micro): as TFLite Micro computes it, with double-rounding
requantization, and with every ``MultiplyByQuantizedMultiplier`` rounding once
(``TFLITE_SINGLE_ROUNDING``), which is what the QCDQ graph the QAT model trained computes.
Images where only the double-rounding run parts from the QAT model are the runtime's; images
where the single-rounding run parts too point at the export.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcu_effnet.errors import UserError
from mcu_effnet.oracle import top1
from mcu_effnet.quant.tflite_check import labelled_chunks, quantize_like_onnx

# The comparison runs the QAT model and the simulator twice per image: on a large split a few
# thousand images say as much as all of them.
MAX_IMAGES = 2000
SHOWN = 20  # image indices kept in metrics.json per list


@dataclass
class QatAgreement:
    """Top-1 of the QAT model against the int8 file on the same validation images."""

    images: int = 0
    qat_correct: int = 0
    int8_correct: int = 0  # the file as TFLite Micro computes it (double rounding)
    single_rounding_correct: int = 0
    # validation indices (first SHOWN) whose int8 top-1 is not the QAT model's, per arithmetic
    differ: list[int] = field(default_factory=list)
    differ_single_rounding: list[int] = field(default_factory=list)
    differ_count: int = 0
    differ_single_rounding_count: int = 0

    def to_dict(self) -> dict:
        n = max(self.images, 1)
        return {
            "images": self.images,
            "qat_top1": round(100 * self.qat_correct / n, 2),
            "int8_top1": round(100 * self.int8_correct / n, 2),
            "single_rounding_top1": round(100 * self.single_rounding_correct / n, 2),
            "same_top1": round(100 * (1 - self.differ_count / n), 2),
            "same_top1_single_rounding": round(100 * (1 - self.differ_single_rounding_count / n), 2),
            "differ": self.differ,
            "differ_single_rounding": self.differ_single_rounding,
        }

    def summary(self) -> str:
        return (
            f"int8 vs QAT on {self.images} validation images: the file in TFLite Micro's arithmetic "
            f"classifies {self.differ_count} differently, with single rounding "
            f"{self.differ_single_rounding_count}"
        )


def _qat_top1(model, pixels: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = model(torch.from_numpy(pixels))
    return getattr(out, "value", out).argmax(dim=1).numpy()  # a QuantTensor holds its values


def _logits(out: np.ndarray | list[np.ndarray]) -> np.ndarray:
    return out[0] if isinstance(out, list) else out  # the first output holds the logits


def compare_with_qat(
    model,
    model_bytes: bytes,
    dataset,
    limit: int = MAX_IMAGES,
    chunk: int = 256,
    tflm_top1: np.ndarray | None = None,
) -> QatAgreement | None:
    """``dataset[i]``: (uint8 CHW image, label), as ``ImageDataset`` without augmentation.
    ``model``: the Brevitas QAT model in eval mode, taking NCHW ``pixel / 255``.
    ``tflm_top1``: the file's top-1 per image from TFLite Micro when already run (the
    simulator's double-rounding run, bit-exact with it, is then skipped). None when the
    simulator does not take the file."""
    from mcu_effnet.graph import load_tflite
    from mcu_effnet.sim import run as simulate
    from mcu_effnet.sim.requantize import rounding

    try:
        graph = load_tflite(model_bytes)
    except UserError:
        return None
    tin = graph.tensors[graph.inputs[0]]
    scale, zero_point = float(tin.scale[0]), int(tin.zero_point[0])
    result = QatAgreement()
    for start, images, labels in labelled_chunks(dataset, chunk, limit):
        pixels = images.astype(np.float32) / np.float32(255.0)  # as int8_predictions quantizes them
        codes = quantize_like_onnx(np.transpose(pixels, (0, 2, 3, 1)), scale, zero_point)
        qat = _qat_top1(model, pixels)
        try:
            if tflm_top1 is None:
                double = top1(_logits(simulate(graph, codes)))
            else:
                double = np.asarray(tflm_top1[start : start + len(labels)])
            with rounding("single"):
                single = top1(_logits(simulate(graph, codes)))
        except UserError:
            return None
        result.images += len(labels)
        result.qat_correct += int(np.sum(qat == labels))
        result.int8_correct += int(np.sum(double == labels))
        result.single_rounding_correct += int(np.sum(single == labels))
        for preds, indices, count in (
            (double, result.differ, "differ_count"),
            (single, result.differ_single_rounding, "differ_single_rounding_count"),
        ):
            apart = start + np.flatnonzero(preds != qat)
            indices.extend(int(i) for i in apart[: max(0, SHOWN - len(indices))])
            setattr(result, count, getattr(result, count) + len(apart))
    return result
