"""TensorFlow Lite Micro's own test models as a corpus: where it is, and what each model gets.

The corpus (single-op 16x8 models with TFLite Micro's golden outputs, whole example models) is
somebody else's conversion work: every file in it runs in TFLite Micro. For each file
``survey_model`` says whether mcu-effnet runs it or refuses it, and why, in one ``CorpusRow``.
It is found through ``MCU_EFFNET_TFLM_MODELS``, else as ``shared/models/tflm`` beside the
repository (where the TFLite Micro tree is found too).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcu_effnet.errors import UserError
from mcu_effnet.graph import load_tflite
from mcu_effnet.graph.ir import Graph

REPO = Path(__file__).resolve().parents[1]

# A refusal names the op, its index and its types: "op 3 (SVDF, int8 in, int8 out)" or
# "unsupported op TANH at index 1 (int8 in, int8 out)".
_OP_NAMED = re.compile(
    r"op (\d+) \(([A-Z0-9_:a-zA-Z]+), [a-z0-9/]+ in, [a-z0-9/]+ out\)|unsupported op (\S+) at index (\d+) \("
)


def corpus_dir() -> Path | None:
    explicit = os.environ.get("MCU_EFFNET_TFLM_MODELS")
    path = Path(explicit) if explicit else REPO.parent / "shared" / "models" / "tflm"
    return path if path.is_dir() else None


def corpus_models(root: Path) -> list[Path]:
    return sorted(root.rglob("*.tflite"))


@dataclass(frozen=True)
class CorpusRow:
    path: Path
    status: str  # "runs" or "refused"
    reason: str  # for a refusal: the op kind and why, grouped for the coverage table
    message: str  # the loader's whole message (empty when it runs)
    graph: Graph | None = None


def _reason(message: str) -> str:
    if "16-bit activations" in message:
        return "16x8 (int16 activations)"
    if "out of scope" in message:
        return "out of scope: " + ("custom op" if "CUSTOM:" in message else "recurrent/SVDF")
    interface = re.search(r"model (input|output) '.*' is (\w+); mcu-effnet needs int8", message)
    if interface:
        return f"{interface.group(2)} model {interface.group(1)}"
    found = _OP_NAMED.search(message)
    if found and "unsupported op" in message:
        return f"unsupported op {found.group(3)}"
    return message.split(": ", 1)[-1]


def survey_model(path: Path) -> CorpusRow:
    try:
        graph = load_tflite(path)
    except UserError as exc:
        message = str(exc)
        return CorpusRow(path, "refused", _reason(message), message)
    return CorpusRow(path, "runs", "", "", graph)


def names_the_op(message: str) -> bool:
    return _OP_NAMED.search(message) is not None


def csv_tensor(path: Path, dtype: str) -> np.ndarray:
    return np.array(
        [int(v) for v in path.read_text().replace("\n", ",").split(",") if v.strip()], dtype=dtype
    )


def golden_files(model: Path) -> tuple[list[Path], Path | None]:
    """The model's input CSVs (in input order) and golden output CSV, where the corpus has them."""
    stem = model.with_suffix("")
    inputs = sorted(model.parent.glob(f"{stem.name}_input*_*.csv"))
    golden = next(iter(model.parent.glob(f"{stem.name}_golden_*.csv")), None)
    return inputs, golden


def corpus_inputs(graph: Graph, model: Path) -> list[np.ndarray]:
    """One batch per graph input: the corpus's own input CSVs where it ships them, else 8 random samples."""
    csvs, _ = golden_files(model)
    batches = []
    for k, i in enumerate(graph.inputs):
        t = graph.tensors[i]
        if len(csvs) == len(graph.inputs):
            batches.append(csv_tensor(csvs[k], t.dtype).reshape((1, *t.shape[1:])))
        else:
            info = np.iinfo(t.dtype)
            rng = np.random.default_rng(k)
            batches.append(rng.integers(info.min, info.max + 1, size=(8, *t.shape[1:])).astype(t.dtype))
    return batches
