"""ARG_MAX int8 -> int32 or int64 as a model's output: the simulator and the host-built engine
(ASan/UBSan) give TFLite Micro's indices (first of equal maxima). int64 indices, TFLite's default
output type, are LiteRT's (TFLite Micro's Eval refuses them, so ``--runtime tflm`` refuses the
model in one line); the batch axis is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from test_cli_codegen_run import _one_error_line
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet import oracle
from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.errors import UserError
from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as sim_run


def _model(rng: np.random.Generator, axis: int, rank: int = 4, dtype: str = "int32") -> bytes:
    b = ModelBuilder(rng)
    shape = (1, *(int(d) for d in rng.integers(1, 6, size=rank - 1)))
    x = b.input(shape)
    b.outputs = [b.argmax(x, axis, dtype)]
    return b.build()


@pytest.mark.parametrize(("rank", "axis"), [(4, 3), (4, 1), (4, -2), (3, 2), (2, 1)])
def test_argmax_is_bit_exact_with_tflite_micro(host, rank, axis):
    rng = np.random.default_rng(700 + 10 * rank + axis)
    model = _model(rng, axis, rank)
    graph = load_tflite(model)
    shape = graph.tensors[graph.inputs[0]].shape
    # A narrow range of codes, so most rows hold ties: the first index must win.
    x = rng.integers(-3, 3, size=(24, *shape[1:]), dtype=np.int8)
    expected = np.asarray(run_tflm(model, x)).reshape(24, -1)
    assert expected.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(sim_run(graph, x)).reshape(24, -1), expected)
    engine = generate_engine(graph)
    assert "typedef int32_t model_output_t;" in engine.files["model.h"]
    np.testing.assert_array_equal(host.run_engine(engine, x), expected)


@pytest.mark.parametrize(("rank", "axis"), [(4, 3), (3, 1), (2, 1)])
def test_int64_indices_are_litert_s(host, rank, axis):
    rng = np.random.default_rng(900 + 10 * rank + axis)
    model = _model(rng, axis, rank, "int64")
    graph = load_tflite(model)
    shape = graph.tensors[graph.inputs[0]].shape
    x = rng.integers(-3, 3, size=(16, *shape[1:]), dtype=np.int8)
    expected = np.asarray(oracle.run_litert(model, x)[0]).reshape(16, -1)
    assert expected.dtype == np.int64
    got = np.asarray(sim_run(graph, x))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got.reshape(16, -1), expected)
    engine = generate_engine(graph)
    assert "typedef int64_t model_output_t;" in engine.files["model.h"]
    np.testing.assert_array_equal(host.run_engine(engine, x), expected)


def test_tflm_runtime_refuses_int64_indices(cli, tmp_path):
    model = tmp_path / "argmax64.tflite"
    model.write_bytes(_model(np.random.default_rng(3), 3, 4, "int64"))
    result = cli(
        "codegen", model, "--board", "qemu-m4", "--runtime", "tflm", "--out", tmp_path / "fw", "--no-build"
    )
    line = _one_error_line(result)
    assert "ARG_MAX" in line and "int64" in line and "int32 only" in line
    assert not (tmp_path / "fw").exists()


@pytest.mark.toolchain
@pytest.mark.tflm_tree
def test_compare_refuses_int64_indices_before_building(cli, tmp_path):
    model = tmp_path / "argmax64.tflite"
    model.write_bytes(_model(np.random.default_rng(3), 3, 4, "int64"))
    line = _one_error_line(cli("compare", model, "--board", "qemu-m4", "--out", tmp_path / "c"))
    assert "ARG_MAX" in line and "int32 only" in line
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("axis", "dtype", "message"),
    [(3, "int16", "not supported for ARG_MAX"), (0, "int32", "batch axis"), (4, "int32", "outside a rank-4")],
)
def test_argmax_refusals_are_one_line(axis, dtype, message):
    b = ModelBuilder(np.random.default_rng(0))
    x = b.input((1, 2, 2, 3))
    if axis == 4:  # the builder cannot shape an output for it: build one by hand
        a = b.add_tensor("axis", (1,), "int32", data=np.array([4], np.int32))
        y = b.add_tensor("y", (1, 2, 2), "int32")
        b.add_op("ARG_MAX", [x, a], [y])
    else:
        y = b.argmax(x, axis, dtype)
    b.outputs = [y]
    with pytest.raises(UserError, match=message) as info:
        load_tflite(b.build())
    assert "\n" not in str(info.value)
