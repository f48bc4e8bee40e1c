"""The int8 validation top-1 of a QAT candidate, as TFLite Micro computes it, for picking the export.

The fake-quant (Brevitas) model requantizes with one rounding; TFLite Micro rounds twice
(``MultiplyByQuantizedMultiplier``), which flips near-tie logits on a few images (on the
digits set up to 6 of 359, 1.1 points). So the QAT checkpoint that ships is picked by the
accuracy of its own int8 file: each candidate goes through the same QCDQ ONNX -> ``.tflite``
writer as the export (without the export's checks, which run once on the winner) and through
the TFLite Micro interpreter on the validation images.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mcu_effnet.arch import ArchSpec
from mcu_effnet.errors import UserError
from mcu_effnet.quant.tflite_check import int8_predictions, labelled_chunks

# Each candidate costs an export (~5 CPU-s at phi -4, 32 px) plus TFLite Micro's reference kernels
# on the images (~3 CPU-s for 359 images of 3 M MACs, about 0.35 G MAC/s): a couple of thousand
# images rank the candidates as well as a whole large split.
MAX_IMAGES = 2000
# --pick auto scores at most this many MACs per candidate (about 10 CPU-s in the interpreter), and
# picks by the fake-quant accuracy when that leaves fewer than MIN_IMAGES (a larger model: the
# demo's phi -1 at 128 px, 113 M MACs, would take minutes per candidate).
AUTO_MACS = 4e9
MIN_IMAGES = 256


def images_to_score(pick: str, macs: int, val_images: int) -> int:
    """How many validation images each QAT candidate's int8 file is scored on; 0: by fake-quant."""
    if pick == "fake-quant":
        return 0
    images = min(val_images, MAX_IMAGES)
    if pick == "auto":
        affordable = int(AUTO_MACS // max(macs, 1))
        if affordable < min(MIN_IMAGES, images):
            return 0
        images = min(images, affordable)
    return images


def int8_file(spec: ArchSpec, state: dict[str, torch.Tensor]) -> bytes:
    """The int8 ``.tflite`` bytes ``export_run`` would write for these QAT weights (without labels).

    A fresh Brevitas model is loaded with ``state``, as ``export_run`` loads the checkpoint, so
    the training model (its device, memory format, train mode) is left as it is."""
    from mcu_effnet.models import build_quant
    from mcu_effnet.quant.onnx_export import export_qcdq
    from mcu_effnet.quant.onnx_graph import load_onnx_graph
    from mcu_effnet.quant.qcdq_lower import lower_qcdq
    from mcu_effnet.quant.tflite_writer import write_tflite_bytes

    # Building the model draws initial weights: from a forked RNG, so scoring candidates leaves the
    # training's random stream as it was and --pick changes nothing but which weights ship.
    with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as folder:
        model = build_quant(spec)
        model.load_state_dict({k: v.detach().cpu() for k, v in state.items()})
        path = Path(folder) / "candidate.onnx"
        export_qcdq(model, spec.resolution, path)
        return write_tflite_bytes(lower_qcdq(load_onnx_graph(str(path))), None)


@dataclass
class Int8Scorer:
    """The validation images (uint8 NCHW) and labels every candidate is scored on."""

    spec: ArchSpec
    images: np.ndarray
    labels: np.ndarray

    @classmethod
    def from_dataset(cls, spec: ArchSpec, dataset, limit: int = MAX_IMAGES) -> Int8Scorer:
        """``dataset[i]``: (uint8 CHW image, label), as ``ImageDataset`` without augmentation."""
        chunks = list(labelled_chunks(dataset, chunk=512, limit=limit))
        if not chunks:
            raise UserError("no validation images to pick the QAT checkpoint by int8 accuracy")
        images = np.concatenate([images for _, images, _ in chunks])
        return cls(spec, images, np.concatenate([labels for _, _, labels in chunks]))

    def top1(self, model: nn.Module) -> float:
        """Percent of the images the int8 file of ``model``'s weights classifies right in TFLite Micro."""
        predictions = int8_predictions(int8_file(self.spec, model.state_dict()), self.images)
        return 100.0 * float(np.mean(predictions == self.labels))
