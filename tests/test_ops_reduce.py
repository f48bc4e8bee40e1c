"""SUM and REDUCE_MAX (int8) against the TFLite Micro interpreter.

Randomized single-op models (shapes, axes including negative and repeated ones, keep_dims,
quantization) in the simulator and in the generated C engine built for the host under
ASan/UBSan; a chain through both in QEMU (qemu-m4); malformed ops refused naming the op.
"""

from __future__ import annotations

import numpy as np
import pytest
from host_engine import HostRuntime
from op_checks import engine_matches_tflm, random_batch, refusal, sim_matches_tflm
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.errors import UserError
from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as sim_run

KINDS = ("SUM", "REDUCE_MAX")
# Contiguous runs of axes (what the engine reduces), written as files write them.
AXES = [(1,), (2,), (3,), (-1,), (1, 2), (2, 3), (1, 2, 3), (3, 2), (-2, -3), (2, 2)]


def single_op_model(kind: str, seed: int, axes: tuple[int, ...] | None = None) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder(rng)
    shape = (1, *(int(v) for v in rng.integers(1, 7, size=3)))
    x = b.input(shape)
    axes = axes if axes is not None else AXES[int(rng.integers(0, len(AXES)))]
    b.outputs = [b.reduce(kind, x, axes, keep_dims=bool(rng.random() < 0.5))]
    return b.build()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(16))
def test_simulator_matches_tflite_micro(kind: str, seed: int) -> None:
    model = single_op_model(kind, 300 + seed + 100 * KINDS.index(kind))
    sim_matches_tflm(model, random_batch(np.random.default_rng(seed), load_tflite(model), 6))


def test_non_contiguous_axes_in_the_simulator() -> None:
    """Axes 1 and 3 of a 4-D map: the simulator reduces any set, as TFLite Micro does."""
    for kind in KINDS:
        model = single_op_model(kind, 7, axes=(3, 1))
        sim_matches_tflm(model, random_batch(np.random.default_rng(1), load_tflite(model), 4))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(4))
def test_c_engine_matches_tflite_micro(host: HostRuntime, kind: str, seed: int) -> None:
    model = single_op_model(kind, 700 + seed + 100 * KINDS.index(kind))
    graph = load_tflite(model)
    engine_matches_tflm(host, model, random_batch(np.random.default_rng(seed), graph, 8), graph)


def test_engine_refuses_non_contiguous_axes_naming_the_op() -> None:
    graph = load_tflite(single_op_model("REDUCE_MAX", 3, axes=(1, 3)))
    with pytest.raises(UserError, match=r"op 0 REDUCE_MAX: axes \[1, 3\] are not contiguous"):
        generate_engine(graph)


@pytest.mark.toolchain
def test_chain_runs_bit_exact_in_qemu(cli, tmp_path) -> None:
    """SUM over the channels (keep_dims) then REDUCE_MAX over the rows, as firmware."""
    rng = np.random.default_rng(21)
    b = ModelBuilder(rng)
    x = b.input((1, 6, 7, 5))
    b.outputs = [b.reduce("REDUCE_MAX", b.reduce("SUM", x, (-1,)), (1,), keep_dims=False)]
    model = tmp_path / "reduce.tflite"
    model.write_bytes(b.build())
    graph = load_tflite(model.read_bytes())
    xs = rng.integers(-128, 128, size=(3, 6, 7, 5), dtype=np.int8)
    np.testing.assert_array_equal(sim_run(graph, xs), run_tflm(model.read_bytes(), xs))
    out = tmp_path / "fw"
    result = cli("codegen", model, "--board", "qemu-m4", "--out", out)
    assert result.returncode == 0, result.stderr
    np.save(tmp_path / "x.npy", xs)
    result = cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    np.testing.assert_array_equal(
        np.load(tmp_path / "y.npy").reshape(3, -1), np.asarray(sim_run(graph, xs)).reshape(3, -1)
    )


def _malformed(problem: str) -> bytes:
    b = ModelBuilder(np.random.default_rng(1))
    x = b.input((1, 4, 4, 3), scale=0.05, zero_point=2)
    axes = b.add_tensor("axes", (1,), "int32", data=np.array([5 if problem == "axis" else 1], np.int32))
    if problem == "quantization":  # REDUCE_MAX requantizing
        y = b.activation("max", (1, 1, 4, 3), 0.1, 2)
        b.add_op("REDUCE_MAX", [x, axes], [y], keep_dims=True)
    else:
        y = b.activation("sum", (1, 1, 4, 3), 0.1, 2)
        b.add_op("SUM", [x, axes], [y], keep_dims=True)
    b.outputs = [y]
    return b.build()


@pytest.mark.parametrize(
    "problem,message",
    [
        ("quantization", "op 0 (REDUCE_MAX): output quantization (0.1, 2) differs from the input's"),
        ("axis", "op 0 (SUM): axes [5] are out of range for rank 4"),
    ],
)
def test_malformed_op_is_refused_naming_it(problem: str, message: str) -> None:
    assert message in refusal(_malformed(problem))
