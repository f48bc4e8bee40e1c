"""The public architectures (tests/public_models.py): each builds, loads, and runs bit-exact
with TFLite Micro in the simulator, and through the DSP engine on the host (emulated
intrinsics, sanitizers) bit-exact with the simulator: their layer shapes (3x3 convs over 16 to
64 channels, a 10x4 stem over one channel, depthwise-separable blocks) are the ones the
benchmarks measure."""

from __future__ import annotations

import numpy as np
import pytest
from public_models import PUBLIC_MODELS
from tflite_builder import run_tflm

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as sim_run

pytestmark = pytest.mark.filterwarnings("ignore")

# name: (input shape, output classes)
SHAPES = {
    "resnet8 mlperf-ic 32px": ((1, 32, 32, 3), 10),
    "mobilenetv1-0.25 vww 96px": ((1, 96, 96, 3), 2),
    "ds-cnn kws 49x10": ((1, 49, 10, 1), 12),
}

# The engines below are generated with dsp=True: conftest's host builds the DSP runtime for them.
HOST_DSP = True


@pytest.mark.parametrize("name,build", PUBLIC_MODELS, ids=[n for n, _ in PUBLIC_MODELS])
def test_public_model_is_bit_exact(host, name, build):
    model = build(1)
    assert model == build(1) and model != build(2)  # a function of the seed
    graph = load_tflite(model)
    in_shape, classes = SHAPES[name]
    assert graph.input_tensors[0].shape == in_shape
    assert graph.tensors[graph.outputs[0]].shape == (1, classes)
    xs = np.random.default_rng(0).integers(-128, 128, size=(2, *in_shape[1:]), dtype=np.int8)
    expected = np.asarray(sim_run(graph, xs))
    np.testing.assert_array_equal(expected, run_tflm(model, xs))
    engine = generate_engine(graph, dsp=True)
    assert "_dsp(&" in engine.files["model.c"]
    np.testing.assert_array_equal(host.run_engine(engine, xs), expected.reshape(2, -1))


def test_resnet8_has_the_published_shape():
    graph = load_tflite(PUBLIC_MODELS[0][1](0))
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("CONV_2D") == 9 and kinds.count("ADD") == 3  # 7 3x3 convs, 2 1x1 shortcuts
    macs = sum(
        int(np.prod(graph.tensors[op.outputs[0]].shape)) * int(np.prod(graph.tensors[op.inputs[1]].shape[1:]))
        for op in graph.ops
        if op.kind == "CONV_2D"
    )
    assert 12.0e6 < macs < 12.7e6
