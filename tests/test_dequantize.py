"""DEQUANTIZE int8 -> float32 as a model's output: the simulator and the host-built engine
(ASan/UBSan) give TFLite Micro's float32 bits, element for element."""

from __future__ import annotations

import numpy as np
import pytest
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.errors import UserError
from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as sim_run


def _model(rng: np.random.Generator) -> bytes:
    """conv -> DEQUANTIZE; the conv's output scale (from its random weights) and zero point vary
    with the seed, so scale * (x - zp) rounds differently from model to model."""
    b = ModelBuilder(rng)
    size, c = int(rng.integers(2, 6)), int(rng.integers(1, 9))
    x = b.input((1, size, size, 3))
    y = b.conv2d(x, c, (3, 3), (1, 1), "SAME")
    b.outputs = [b.dequantize(y)]
    return b.build()


@pytest.mark.parametrize("seed", range(3))
def test_dequantize_is_bit_exact_with_tflite_micro(host, seed):
    rng = np.random.default_rng(500 + seed)
    model = _model(rng)
    graph = load_tflite(model)
    assert graph.tensors[graph.outputs[0]].dtype == "float32"
    x = rng.integers(-128, 128, size=(32, *graph.tensors[graph.inputs[0]].shape[1:]), dtype=np.int8)
    expected = np.asarray(run_tflm(model, x), dtype=np.float32).reshape(32, -1)
    ours = np.asarray(sim_run(graph, x)).reshape(32, -1)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours.view(np.uint32), expected.view(np.uint32))
    engine = generate_engine(graph)
    assert "typedef float model_output_t;" in engine.files["model.h"]
    got = host.run_engine(engine, x)
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_dequantize_to_int8_is_refused_in_one_line():
    b = ModelBuilder(np.random.default_rng(0))
    x = b.input((1, 2, 2, 3))
    y = b.activation("dq", (1, 2, 2, 3), 0.1, 0)
    b.add_op("DEQUANTIZE", [x], [y])
    b.outputs = [y]
    with pytest.raises(UserError, match=r"op 0 \(DEQUANTIZE\): output .* is int8, expected float32"):
        load_tflite(b.build())
