"""Every model of TensorFlow Lite Micro's own corpus: run bit-exact, or refused naming the op.

Models somebody else converted are the honest test of the loader: what mcu-effnet runs must
agree with TFLite Micro (and with the golden outputs shipped beside the model) in the simulator
and in the host-built C engine; everything else is refused in one line that names the op, its
index and its types, never as "corrupt".
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REQUIRE_TOOLCHAIN
from tflm_corpus import (
    corpus_dir,
    corpus_inputs,
    corpus_models,
    csv_tensor,
    golden_files,
    names_the_op,
    survey_model,
    tflm_outputs,
)

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.sim import run

ROOT = corpus_dir()


def _models() -> list:
    if ROOT is None:
        return [pytest.param(None, id="corpus-missing")]
    return [pytest.param(p, id=str(p.relative_to(ROOT))) for p in corpus_models(ROOT)]


@pytest.mark.parametrize("model", _models())
def test_corpus_model_runs_bit_exact_or_is_refused_naming_the_op(model, host) -> None:
    if model is None:
        message = (
            "TensorFlow Lite Micro's model corpus not found "
            "(MCU_EFFNET_TFLM_MODELS or shared/models/tflm beside the repository)"
        )
        if REQUIRE_TOOLCHAIN:
            pytest.fail(message)
        pytest.skip(message)
    row = survey_model(model)
    if row.status == "refused":
        assert names_the_op(row.message), row.message
        assert "corrupt" not in row.message and "\n" not in row.message
        return
    graph = row.graph
    xs = corpus_inputs(graph, model, row.pinned)
    expected = tflm_outputs(row, xs)
    ours = run(graph, xs)
    np.testing.assert_array_equal(ours.reshape(np.shape(expected)), expected)
    _, golden = golden_files(model)
    if golden is not None:
        reference = csv_tensor(golden, ours.dtype)
        if not np.array_equal(np.reshape(expected, -1), reference):
            # A golden file from a TFLite Micro build that rounds a multiplier differently from
            # the interpreter we hold ourselves to (LEAKY_RELU's, in float32): off by one at most.
            assert np.abs(ours.reshape(-1).astype(np.int64) - reference).max() <= 1
        else:
            np.testing.assert_array_equal(ours[0].reshape(-1), reference)
    if row.pinned:
        return  # the native engine takes no model with constants the corpus feeds as inputs
    engine = generate_engine(graph)
    # Several inputs (ADD models) reach the engine packed, as model_invoke() takes them.
    np.testing.assert_array_equal(host.run_engine(engine, xs), ours.reshape(ours.shape[0], -1))


@pytest.mark.toolchain
def test_a_16x8_corpus_model_runs_bit_exact_in_qemu(cli, tmp_path) -> None:
    """One of TFLite Micro's own 16x8 CONV_2D models as firmware on qemu-m4, fed the corpus's
    input: the firmware's output is the golden one."""
    if ROOT is None:
        pytest.skip("TensorFlow Lite Micro's model corpus not found")
    model = ROOT / "seanet-int16" / "conv" / "conv0.tflite"
    _, golden = golden_files(model)
    graph = survey_model(model).graph
    (x,) = corpus_inputs(graph, model)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "fw"
    result = cli("codegen", model, "--board", "qemu-m4", "--out", out)
    assert result.returncode == 0, result.stderr
    result = cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 of 1 samples bit-exact" in result.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy").reshape(-1), csv_tensor(golden, "int16"))
