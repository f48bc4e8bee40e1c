"""What the op tests share: random input batches, the comparison with the TFLite Micro
interpreter in the simulator and in the host-built engine, and the loader's one-line refusal.

``test_ops_*.py`` and ``test_int16.py`` build their models; these helpers run and judge them.
The ``host`` fixture (one host-built runtime per test module) is in ``conftest.py``;
``firmware_matches_tflm`` takes a model the whole way to firmware in QEMU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builder16x8 import random_int16
from host_engine import HostRuntime
from tflite_builder import run_tflm

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.errors import UserError
from mcu_effnet.graph import load_tflite
from mcu_effnet.graph.ir import Graph
from mcu_effnet.sim import run as sim_run


def random_batch(rng: np.random.Generator, graph: Graph, n: int, index: int = 0) -> np.ndarray:
    """``n`` samples for model input ``index`` over its type's whole range (int16 with both
    extremes)."""
    t = graph.tensors[graph.inputs[index]]
    if t.dtype == "int16":
        return random_int16(rng, t.shape, batch=n)
    return rng.integers(-128, 128, size=(n, *t.shape[1:])).astype(np.int8)


def random_batches(rng: np.random.Generator, graph: Graph, n: int) -> list[np.ndarray]:
    """One batch per model input."""
    return [random_batch(rng, graph, n, k) for k in range(len(graph.inputs))]


def assert_varied(expected: np.ndarray) -> None:
    """A comparison proves little when every value saturated to one code."""
    assert len(np.unique(expected)) > 1 or np.size(expected) <= 2


def sim_matches_tflm(model: bytes, x: np.ndarray | list[np.ndarray], graph: Graph | None = None):
    """The simulator against TFLite Micro, element for element; returns TFLite Micro's output."""
    graph = graph or load_tflite(model)
    expected = run_tflm(model, x)
    got = sim_run(graph, x)
    if isinstance(expected, list):
        for k, (g, e) in enumerate(zip(got, expected, strict=True)):
            np.testing.assert_array_equal(g, e, err_msg=f"output {k}")
        return expected
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    return expected


def engine_matches_tflm(
    host: HostRuntime, model: bytes, x: np.ndarray | list[np.ndarray], graph: Graph | None = None, **engine
) -> None:
    """The engine generated for ``model`` (``engine``: generate_engine's options), built for the
    host under ASan/UBSan, against TFLite Micro on every sample (inputs packed as
    ``model_invoke`` takes them)."""
    graph = graph or load_tflite(model)
    expected = np.asarray(run_tflm(model, x))
    got = host.run_engine(generate_engine(graph, **engine), x)
    np.testing.assert_array_equal(got, expected.reshape(expected.shape[0], -1))


def firmware_matches_tflm(model: bytes, board: str, folder: Path, x: np.ndarray, **project) -> str:
    """The native firmware project of ``model`` (``project``: write_project's options) built for
    the QEMU ``board`` and run on the batch ``x``: it must pass its own test-vector check and
    equal TFLite Micro on every sample. Returns the generated ``model.c``, for the caller's
    checks of the kernels it calls."""
    from mcu_effnet.codegen import toolchain
    from mcu_effnet.codegen.project import write_project

    built = write_project(load_tflite(model), board, folder, model_bytes=model, **project)
    elf = toolchain.make(built.path, "qemu")
    rows = x.reshape(len(x), -1)
    result = toolchain.run_qemu(built.board, elf, inputs=rows, output_bytes=built.report["output_bytes"])
    assert result.status == 0 and result.check_ok, result.stdout[-2000:]
    np.testing.assert_array_equal(result.outputs, np.asarray(run_tflm(model, x)).reshape(len(x), -1))
    return (built.path / "model" / "model.c").read_text()


def refusal(model: bytes) -> str:
    """The loader's refusal of ``model``: one line (returned for the caller's checks)."""
    with pytest.raises(UserError) as info:
        load_tflite(model)
    message = str(info.value)
    assert "\n" not in message, message
    return message
