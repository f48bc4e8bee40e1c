"""The reference runtimes the simulator is held against: TFLite Micro, LiteRT and onnxruntime.

Each runs a batch (leading axis) one sample at a time, the way those runtimes take it, and
returns the outputs batched like ``mcu_effnet.sim.run``. The packages are imported inside
the functions: the simulator itself never needs them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcu_effnet.graph.ir import Graph


def tflm_arena_size(graph: Graph, model_size: int) -> int:
    """A tensor arena that always fits: every activation at once, plus room for kernel data."""
    activations = sum(t.nbytes for t in graph.tensors if not t.is_constant)
    return max(10 * model_size, 2 * activations + (256 << 10))


@dataclass
class TflmRunner:
    """One TFLite Micro interpreter, kept for repeated calls (benchmarks reuse it)."""

    model: bytes
    graph: Graph
    _interpreter: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from tflite_micro.python.tflite_micro import runtime

        arena = tflm_arena_size(self.graph, len(self.model))
        self._interpreter = runtime.Interpreter.from_bytes(self.model, arena_size=arena)

    def run_one(self, sample: np.ndarray) -> list[np.ndarray]:
        """One sample, with the model's own batch dimension of 1."""
        self._interpreter.set_input(sample, 0)
        self._interpreter.invoke()
        return [np.array(self._interpreter.get_output(i)) for i in range(len(self.graph.outputs))]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        per_sample = [self.run_one(x[i : i + 1]) for i in range(x.shape[0])]
        return [np.concatenate([outs[k] for outs in per_sample]) for k in range(len(self.graph.outputs))]


def run_tflm(model: bytes, graph: Graph, x: np.ndarray) -> list[np.ndarray]:
    return TflmRunner(model, graph).run(x)


def tflm_all_tensors(model: bytes, graph: Graph, sample: np.ndarray) -> dict[int, np.ndarray]:
    """Every op output of one sample (batch of one) as TFLite Micro computed it.

    Uses the interpreter's preserve-all-tensors mode, which gives each tensor its own memory
    instead of sharing the arena, so intermediates survive until read.
    """
    from tflite_micro.python.tflite_micro import runtime

    arena = 2 * tflm_arena_size(graph, len(model))
    interpreter = runtime.Interpreter.from_bytes(
        model, arena_size=arena, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors
    )
    interpreter.set_input(sample, 0)
    interpreter.invoke()
    tensors: dict[int, np.ndarray] = {}
    for op in graph.ops:
        for index in op.outputs:
            data = np.asarray(interpreter.GetTensor(index, 0)["tensor_data"])
            tensors[index] = data.reshape(graph.tensor(index).shape).copy()
    return tensors


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


def run_litert(model: bytes, graph: Graph, x: np.ndarray) -> list[np.ndarray]:
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


def run_onnx(onnx_path: str, x_nchw: np.ndarray) -> np.ndarray:
    """The first output of an ONNX model on float32 NCHW inputs, in batches of one."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outs = [
        session.run(None, {name: x_nchw[i : i + 1].astype(np.float32)})[0] for i in range(x_nchw.shape[0])
    ]
    return np.concatenate(outs)
