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
from dataclasses import dataclass, field
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


def skip_reason(fake_quant: float, best_fake_quant: float, margin: float) -> str | None:
    """Why a QAT candidate is not scored in int8, or None to score it.

    The int8 file and the fake-quant model disagree on a few near-tie images, so a candidate's int8
    top-1 sits within about a point of its fake-quant top-1 (on the digits runs: -1.1 to +0.6).
    A candidate whose fake-quant top-1 is more than ``margin`` points below the best offered so far
    would need its file to gain that much on a candidate already scored, or about to be, to win:
    scoring it is the cost (an export and the interpreter) of a pick it almost never changes. The
    default margin, 0.25 points, is less than one image of the digits set's 359: there only ties
    and betters of the best fake-quant are scored, 35 of the 66 candidates of the six runs that
    scored all 11, and each run's pick is as good as with all scored (``benchmarks/digits_recipe.py
    --check-pick-margin``; 0.5 points scores 44 and picks as well, 1 point 62).
    """
    if fake_quant >= best_fake_quant - margin:
        return None
    return (f"fake-quant {fake_quant:.2f}% is more than {margin:g} points below the best so far "
            f"({best_fake_quant:.2f}%)")  # fmt: skip


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


def scratch_model(spec: ArchSpec) -> nn.Module:
    """A Brevitas model of ``spec`` for ``int8_file`` to load candidates into."""
    from mcu_effnet.models import build_quant

    # Building the model draws initial weights: from a forked RNG, so scoring candidates leaves the
    # training's random stream as it was and --pick changes nothing but which weights ship.
    with torch.random.fork_rng(devices=[]):
        return build_quant(spec)


def int8_file(spec: ArchSpec, state: dict[str, torch.Tensor], model: nn.Module | None = None) -> bytes:
    """The int8 ``.tflite`` bytes ``export_run`` would write for these QAT weights (without labels).

    ``state`` is loaded into ``model`` (a ``scratch_model`` of ``spec``, built here if not given),
    as ``export_run`` loads the checkpoint, so the training model (its device, memory format,
    train mode) is left as it is. Every tensor of the model is overwritten, so reusing one scratch
    model across candidates writes the same bytes as a fresh one (tested) for ~1 CPU-s less each."""
    from mcu_effnet.quant.onnx_export import export_qcdq
    from mcu_effnet.quant.onnx_graph import load_onnx_graph
    from mcu_effnet.quant.qcdq_lower import lower_qcdq
    from mcu_effnet.quant.tflite_writer import write_tflite_bytes

    model = scratch_model(spec) if model is None else model
    with tempfile.TemporaryDirectory() as folder:
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
    scratch: nn.Module | None = field(default=None, repr=False)  # built on first use

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
        if self.scratch is None:
            self.scratch = scratch_model(self.spec)
        predictions = int8_predictions(int8_file(self.spec, model.state_dict(), self.scratch), self.images)
        return 100.0 * float(np.mean(predictions == self.labels))
