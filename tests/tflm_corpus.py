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

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from mcu_effnet import oracle
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
    # Positions of model inputs loaded as constants holding the corpus's own input values (see
    # ``pinned_inputs``); the graph's inputs are the others.
    pinned: tuple[int, ...] = ()


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


def _subgraph(data: bytes):
    return schema.Model.GetRootAsModel(data, 0).Subgraphs(0)


def pinned_inputs(model: Path) -> dict[int, np.ndarray]:
    """The model inputs the simulator cannot take as a batch, by position, with the values the
    corpus ships for them: an int32 input (TRANSPOSE_CONV's output shape) or one whose first
    dimension is not a batch of 1 (a bias vector fed as an input). The corpus's seanet models
    feed such tensors as inputs only because they were cut out of a bigger graph; loading them
    as constants holding the corpus's values asks TFLite Micro the same question."""
    csvs, _ = golden_files(model)
    sub = _subgraph(model.read_bytes())
    if len(csvs) != sub.InputsLength():
        return {}
    pinned = {}
    for k in range(sub.InputsLength()):
        t = sub.Tensors(int(sub.Inputs(k)))
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if t.Type() == schema.TensorType.INT32 or not shape or shape[0] != 1:
            dtype = "int32" if t.Type() == schema.TensorType.INT32 else "int16"
            pinned[k] = csv_tensor(csvs[k], dtype).reshape(shape)
    # A model left without an input is not one of these (QUANTIZE from an int32 input is refused).
    return pinned if len(pinned) < sub.InputsLength() else {}


def pin_inputs(data: bytes, pinned: dict[int, np.ndarray]) -> bytes:
    """The model with the inputs at the positions of ``pinned`` turned into constants holding
    the given values."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    sub = model.subgraphs[0]
    for k, values in pinned.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), np.uint8)
        model.buffers.append(buffer)
        sub.tensors[int(sub.inputs[k])].buffer = len(model.buffers) - 1
    sub.inputs = np.asarray([t for k, t in enumerate(sub.inputs) if k not in pinned], np.int32)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def survey_model(path: Path) -> CorpusRow:
    pinned = pinned_inputs(path)
    try:
        if pinned:
            graph = load_tflite(pin_inputs(path.read_bytes(), pinned))
            graph.source = str(path)
        else:
            graph = load_tflite(path)
    except UserError as exc:
        message = str(exc)
        return CorpusRow(path, "refused", _reason(message), message, pinned=tuple(pinned))
    return CorpusRow(path, "runs", "", "", graph, tuple(pinned))


def tflm_outputs(row: CorpusRow, batches: list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """TFLite Micro's outputs on the corpus file itself (one array for a single output, as
    ``mcu_effnet.sim.run``): batched for an unpinned model, else its one sample, run with every
    input (the pinned ones as the corpus gives them)."""
    if row.pinned:
        pinned = pinned_inputs(row.path)
        free = iter(batches)
        sample = [pinned[k] if k in pinned else next(free) for k in range(len(pinned) + len(batches))]
        outputs = oracle.TflmRunner(row.path.read_bytes()).run_one(sample)
    else:
        outputs = oracle.run_tflm(row.path.read_bytes(), batches)
    return outputs[0] if len(outputs) == 1 else outputs


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


def corpus_inputs(graph: Graph, model: Path, pinned: tuple[int, ...] = ()) -> list[np.ndarray]:
    """One batch per graph input: the corpus's own input CSVs where it ships them (those of the
    ``pinned`` inputs left out), else 8 random samples."""
    csvs, _ = golden_files(model)
    csvs = [c for k, c in enumerate(csvs) if k not in pinned]
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
