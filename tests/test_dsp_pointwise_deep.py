"""The DSP 1x1 kernel's three-pixel path on rows deeper than one widening chunk
(ek_pointwise_dsp.c: the depth in chunks of EK_PW_WIDE_MAX_DEPTH, the channels in blocks of
EK_PW_PART_CHANNELS whose sums wait between chunks).

Randomized deep 1x1 layers (depths past one and two chunks, not multiples of them nor of 4;
channel counts below, at and past one block, odd ones; pixel counts of every residue mod 3;
clamped activations) against TFLite Micro: the simulator, the engines built for the host under
ASan/UBSan (the DSP one with the ACLE intrinsics emulated, and the plain C one), and one layer
in QEMU on qemu-m4.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from op_checks import assert_varied, firmware_matches_tflm
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.codegen import dsp_layout
from mcu_effnet.codegen.engine import EngineSources, generate_engine
from mcu_effnet.graph import load_tflite
from mcu_effnet.graph.ir import Graph
from mcu_effnet.graph.op_order import plan_memory
from mcu_effnet.sim import run as sim_run

pytestmark = pytest.mark.filterwarnings("ignore")

CHUNK = 256  # EK_PW_WIDE_MAX_DEPTH
BLOCK = 64  # EK_PW_PART_CHANNELS
FAST_CALL = re.compile(r"\bek_conv2d_1x1_dsp_fast\(")


def _model(seed: int, h: int, w: int, depth: int, channels: int, activation: str) -> bytes:
    b = ModelBuilder(np.random.default_rng(seed))
    x = b.input((1, h, w, depth))
    b.outputs = [b.conv2d(x, channels, (1, 1), activation=activation)]
    return b.build()


def _engine(graph: Graph, dsp: bool) -> EngineSources:
    """The layer's own kernel: not the 1x1-in-place mode the planner picks when it lowers the
    arena, which calls the kernel a chunk of pixels at a time."""
    return generate_engine(graph, plan_memory(graph, in_place=False), dsp=dsp, max_recompute=None)


def _check_on_host(host_dsp, host_plain, model: bytes, n: int, seed: int) -> None:
    graph = load_tflite(model)
    engine = _engine(graph, dsp=True)
    assert FAST_CALL.search(engine.files["model.c"])  # the short requantization: three pixels
    shape = graph.tensors[graph.inputs[0]].shape
    x = np.random.default_rng(seed).integers(-128, 128, size=(n, *shape[1:]), dtype=np.int8)
    expected = np.asarray(run_tflm(model, x)).reshape(n, -1)
    assert_varied(expected)
    np.testing.assert_array_equal(np.asarray(sim_run(graph, x)).reshape(n, -1), expected)
    np.testing.assert_array_equal(host_dsp.run_engine(engine, x), expected)
    np.testing.assert_array_equal(host_plain.run_engine(_engine(graph, dsp=False), x), expected)


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**16),
    h=st.integers(1, 3),
    w=st.integers(1, 5),
    depth=st.integers(CHUNK + 1, 3 * CHUNK - 5),
    channels=st.sampled_from([8, 9, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 3, 130]),
    activation=st.sampled_from(["NONE", "RELU", "RELU6"]),
)
def test_deep_rows_match_tflm(host_dsp, host_plain, seed, h, w, depth, channels, activation):
    assume(depth % CHUNK != 0 and not dsp_layout.widen_1x1(depth, channels))
    _check_on_host(host_dsp, host_plain, _model(seed, h, w, depth, channels, activation), 2, seed)


@pytest.mark.parametrize("pixels", [3, 4, 5, 7])  # every residue mod 3, one and two blocks of three
def test_every_pixel_remainder(host_dsp, host_plain, pixels):
    model = _model(pixels, 1, pixels, 2 * CHUNK + 3, BLOCK + 7, "RELU6")
    _check_on_host(host_dsp, host_plain, model, 2, pixels)


@pytest.mark.toolchain
def test_deep_rows_in_qemu(tmp_path):
    """The assembly loop and the chunks on the real instructions: 7x7 pixels (16 blocks of three
    and one), depth 2 * 256 + 3, 2 * 64 + 7 channels (two and a half blocks)."""
    model = _model(5, 7, 7, 2 * CHUNK + 3, 2 * BLOCK + 7, "RELU")
    x = np.random.default_rng(1).integers(-128, 128, size=(2, 7, 7, 2 * CHUNK + 3), dtype=np.int8)
    engine = _engine(load_tflite(model), dsp=True)
    sources = firmware_matches_tflm(model, "qemu-m4", tmp_path / "fw", x, engine=engine, max_recompute=None)
    assert FAST_CALL.search(sources)
