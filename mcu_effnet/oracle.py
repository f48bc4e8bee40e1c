"""The reference runtimes our int8 arithmetic is held against, and the one way to read them.

TensorFlow Lite Micro (the tflite-micro wheel's interpreter, whose reference kernels define our
arithmetic) is the oracle: every interpreter the project creates (whole models, single ops,
every tensor kept, the recorded arena size) comes from here; LiteRT and onnxruntime are reported
beside it. Each runs a batch one sample at a time and returns the outputs batched. Here too:
TFLite's rounding of reals to codes (``float_codes``) and top-1 agreement (``top1_agreement``).
The runtimes are imported inside the functions: the simulator and the engine never need them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mcu_effnet.errors import UserError

Batch = np.ndarray | list[np.ndarray]  # one batch per model input


def _flatbuffer(model: bytes) -> Any:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema.Model.GetRootAsModel(model, 0)


def _shape(tensor: Any) -> list[int]:
    return [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []


def arena_size(model: bytes) -> int:
    """A tensor arena that always fits the host interpreter: every activation at once, in int32,
    twice over, plus the model and room for kernel data. Generous; the size never changes a result."""
    root = _flatbuffer(model)
    graph = root.Subgraphs(0)
    activations = 0
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        if root.Buffers(tensor.Buffer()).DataLength() == 0:
            activations += int(np.prod(_shape(tensor)))
    return max(10 * len(model), 8 * activations + len(model)) + (1 << 20)


def tflm_interpreter(model: bytes | str | os.PathLike, keep_all_tensors: bool = False) -> Any:
    """A TFLite Micro interpreter for the ``.tflite`` bytes or file. ``keep_all_tensors``: every
    tensor gets its own memory instead of sharing the arena, so intermediates survive until read."""
    from tflite_micro.python.tflite_micro import runtime

    data = bytes(model) if isinstance(model, bytes | bytearray) else Path(model).read_bytes()
    if not keep_all_tensors:
        return runtime.Interpreter.from_bytes(data, arena_size=arena_size(data))
    config = runtime.InterpreterConfig.kPreserveAllTensors
    return runtime.Interpreter.from_bytes(data, arena_size=2 * arena_size(data), intrepreter_config=config)


class TflmRunner:
    """One TFLite Micro interpreter, kept for repeated calls (benchmarks reuse it)."""

    def __init__(self, model: bytes | str | os.PathLike, keep_all_tensors: bool = False) -> None:
        self.model = bytes(model) if isinstance(model, bytes | bytearray) else Path(model).read_bytes()
        self.interpreter = tflm_interpreter(self.model, keep_all_tensors)
        self.outputs = _flatbuffer(self.model).Subgraphs(0).OutputsLength()

    def run_one(self, sample: Batch) -> list[np.ndarray]:
        """One sample (or one per input), with the model's own batch dimension of 1."""
        for k, x in enumerate(sample if isinstance(sample, list) else [sample]):
            self.interpreter.set_input(np.ascontiguousarray(x), k)
        self.interpreter.invoke()
        return [np.array(self.interpreter.get_output(k)) for k in range(self.outputs)]

    def run(self, x: Batch) -> list[np.ndarray]:
        """A batch (a list of batches for several inputs): the outputs, batched."""
        inputs = x if isinstance(x, list) else [x]
        rows = [self.run_one([b[i : i + 1] for b in inputs]) for i in range(inputs[0].shape[0])]
        return [np.concatenate([r[k] for r in rows]) for k in range(self.outputs)]


def run_tflm(model: bytes | str | os.PathLike, x: Batch) -> list[np.ndarray]:
    """TFLite Micro's outputs for a batch, one sample per invoke."""
    return TflmRunner(model).run(x)


def tflm_all_tensors(model: bytes, x: np.ndarray) -> dict[int, np.ndarray]:
    """Every op output of a single-input model as TFLite Micro computes it, batched, by tensor
    index (compared with ``mcu_effnet.sim.run(..., capture=True)`` layer by layer)."""
    runner = TflmRunner(model, keep_all_tensors=True)
    graph = _flatbuffer(runner.model).Subgraphs(0)
    indices = [int(i) for k in range(graph.OperatorsLength()) for i in graph.Operators(k).OutputsAsNumpy()]
    rows: dict[int, list[np.ndarray]] = {i: [] for i in indices}
    for n in range(x.shape[0]):
        runner.run_one(x[n : n + 1])
        for i in indices:
            value = np.asarray(runner.interpreter.GetTensor(i, 0)["tensor_data"])
            rows[i].append(value.reshape(_shape(graph.Tensors(i))).copy())
    return {i: np.concatenate(parts) for i, parts in rows.items()}


_RECORD_SCRIPT = r"""
import sys
from tflite_micro.python.tflite_micro import runtime
interpreter = runtime.Interpreter.from_bytes(sys.stdin.buffer.read(), arena_size=int(sys.argv[1]))
sys.stdout.flush()
interpreter.print_allocations()
"""


@functools.lru_cache(maxsize=8)
def recorded_arena_bytes(model_bytes: bytes) -> int:
    """TFLite Micro's recorded arena total for the model (host build of the interpreter, run in
    a child process because it prints from C++). Cached: ``compare`` plans a model twice."""
    # Recording needs an arena at least as large as what it records: grow it until it fits.
    for size in (max(len(model_bytes) * 10, 1 << 20), 16 << 20, 256 << 20):
        script = [sys.executable, "-c", _RECORD_SCRIPT, str(size)]
        proc = subprocess.run(script, input=model_bytes, capture_output=True, timeout=300)
        m = re.search(rb"Arena allocation total (\d+) bytes", proc.stdout + proc.stderr)
        if proc.returncode == 0 and m:
            break
    if proc.returncode != 0 or not m:
        tail = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise UserError(f"TFLite Micro could not allocate the model's tensors: {tail}")
    return int(m.group(1))


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silences C++ chatter on file descriptor 2 (LiteRT announces its XNNPACK delegate there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def run_litert(model: bytes, x: np.ndarray) -> list[np.ndarray]:
    """Desktop LiteRT (ai-edge-litert) with its default kernels: close to TFLite Micro, not an oracle."""
    from ai_edge_litert.interpreter import Interpreter

    with _quiet_stderr():
        interpreter = Interpreter(model_content=model)
        interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_indices = [d["index"] for d in interpreter.get_output_details()]
    outputs: list[list[np.ndarray]] = [[] for _ in output_indices]
    for i in range(x.shape[0]):
        interpreter.set_tensor(input_index, x[i : i + 1])
        interpreter.invoke()
        for k, index in enumerate(output_indices):
            outputs[k].append(np.array(interpreter.get_tensor(index)))
    return [np.concatenate(parts) for parts in outputs]


def run_onnx(
    model: str | bytes, x: np.ndarray, outputs: list[str] | None = None, optimize: bool = True
) -> list[np.ndarray]:
    """The ``outputs`` (default: all) of an ONNX model on float32 inputs, one sample per run, batched.
    ``optimize=False`` runs the float graph exactly as written, Q/DQ pairs not fused into
    onnxruntime's own integer kernels."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    runs = [session.run(outputs, {name: x[i : i + 1].astype(np.float32)}) for i in range(len(x))]
    return [np.concatenate([r[k] for r in runs]) for k in range(len(runs[0]))]


def float_codes(values: np.ndarray, scale: float, zero_point: int, dtype: str = "int8") -> np.ndarray:
    """Real values (ONNX's dequantized outputs, pixels) on a quantized grid, rounded as TFLite's
    QUANTIZE rounds (half away from zero) and saturated. A dequantized code divides back to within
    float noise of an integer, so the tie rule only decides for values that were never codes."""
    real = np.asarray(values, dtype=np.float64) / float(scale)
    q = np.sign(real) * np.floor(np.abs(real) + 0.5) + int(zero_point)
    info = np.iinfo(np.dtype(dtype))
    return np.clip(q, info.min, info.max).astype(dtype)


def top1(outputs: np.ndarray) -> np.ndarray:
    """The top-1 class of each sample (leading axis); the first of tied maxima."""
    return np.argmax(np.asarray(outputs).reshape(len(outputs), -1), axis=1)


def top1_agreement(reference: np.ndarray, actual: np.ndarray) -> float:
    """The fraction of samples whose top-1 in ``actual`` is one of the reference's top-1 classes
    (a tie in the reference admits any of its maxima)."""
    ref = np.asarray(reference).reshape(len(reference), -1)
    picked = top1(actual)
    return float(np.mean(ref[np.arange(len(ref)), picked] == ref.max(axis=1))) if len(ref) else 1.0
