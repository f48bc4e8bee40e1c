"""The DSP 1x1 kernel's blocks of four and three pixels (ek_pointwise_dsp.c: run_quad, run_tri),
on rows deeper than one widening chunk (the depth in chunks of EK_PW_WIDE_MAX_DEPTH, the channel
pairs in blocks of EK_PW_PART_PAIRS whose sums wait between chunks) and on every way a pixel count
splits into blocks (n = 4a + 3b, the one or two pixels the blocks leave).

Randomized deep 1x1 layers (depths past one and two chunks, not multiples of them nor of 4;
channel counts below, at and past one block, odd ones; pixel counts of every residue mod 4;
clamped activations) against TFLite Micro: the simulator, the engines built for the host under
ASan/UBSan (the DSP one with the ACLE intrinsics emulated, and the plain C one), and in QEMU on
qemu-m4 (qemu-m4 and qemu-m33: test_dsp_pointwise.py's firmware, two chunks and every block size).
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
BLOCK = 64  # channels: 2 * EK_PW_PART_PAIRS
# one row of 26 pixels at these strides: 26, 13, 9, 7, 6, 5, 4, 3, 2 and 1 pixels a kernel call
# (26 = 4 * 5 + 3 * 2, 13 = 4 + 3 * 3, 9 = 3 * 3, 7 = 4 + 3, 6 = 3 + 3, 5 = 4 and one pixel alone)
STRIDES = (1, 2, 3, 4, 5, 6, 7, 9, 13, 26)
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


def _branches(seed: int, depth: int, channels: int, channels2: int) -> bytes:
    """Per stride of STRIDES, a 1x1 layer over the row (`depth` deep, `channels` out) and one
    over its output (`channels` deep, `channels2` out), activations in turn: 20 layers, 10
    outputs, every pixel count of STRIDES at two depths."""
    b = ModelBuilder(np.random.default_rng(seed))
    x = b.input((1, 1, 26, depth))
    outputs = []
    for i, stride in enumerate(STRIDES):
        activation = ("NONE", "RELU", "RELU6")[i % 3]
        y = b.conv2d(x, channels, (1, 1), (1, stride), "VALID", activation=activation)
        outputs.append(b.conv2d(y, channels2, (1, 1), activation=("RELU", "NONE", "RELU6")[i % 3]))
    b.outputs = outputs
    return b.build()


def _check_branches(host_dsp, host_plain, model: bytes, seed: int) -> None:
    graph = load_tflite(model)
    engine = _engine(graph, dsp=True)
    assert len(FAST_CALL.findall(engine.files["model.c"])) == 2 * len(STRIDES)
    x = np.random.default_rng(seed).integers(
        -128, 128, size=(2, 1, 26, graph.tensors[graph.inputs[0]].shape[-1])
    )
    x = x.astype(np.int8)
    expected = [np.asarray(y).reshape(2, -1) for y in run_tflm(model, x)]
    for y in expected:
        assert_varied(y)
    for got in (
        sim_run(graph, x),
        host_dsp.run_engine(engine, x),
        host_plain.run_engine(_engine(graph, dsp=False), x),
    ):
        for y, want in zip(got, expected, strict=True):
            np.testing.assert_array_equal(np.asarray(y).reshape(2, -1), want)


def test_every_pixel_count_and_chunk(host_dsp, host_plain):
    """Depth 2 * 256 + 3 (three chunks) into 71 channels (36 pairs: a block of 32 and one of 4, an
    odd last channel), then depth 71 (one chunk, a tail of 3) into 17 channels."""
    _check_branches(host_dsp, host_plain, _branches(3, 2 * CHUNK + 3, 71, 17), 3)


@pytest.mark.toolchain
def test_deep_rows_in_qemu(tmp_path):
    """The assembly routines and the chunks on the real instructions: 7x7 pixels (ten blocks of
    four and three of three), depth 2 * 256 + 3, 2 * 64 + 7 channels (two and a half blocks)."""
    model = _model(5, 7, 7, 2 * CHUNK + 3, 2 * BLOCK + 7, "RELU")
    x = np.random.default_rng(1).integers(-128, 128, size=(2, 7, 7, 2 * CHUNK + 3), dtype=np.int8)
    engine = _engine(load_tflite(model), dsp=True)
    sources = firmware_matches_tflm(model, "qemu-m4", tmp_path / "fw", x, engine=engine, max_recompute=None)
    assert FAST_CALL.search(sources)


@pytest.mark.parametrize("shift", [-21, -22])
def test_the_smallest_fast_multiplier(host_dsp, shift):
    """The pixel blocks add (1 + 2 * (out_offset - act_min)) << s to SMMULR's v: at s = 20 (TFLite
    shift -21), the largest constant (output zero point 127, no activation: 511 << 20) and sums
    near 2^30 it still fits int32; a shift of -22 keeps the exact kernel."""
    b = ModelBuilder(np.random.default_rng(9))
    x = b.input((1, 3, 3, 63), scale=0.02, zero_point=0)  # no step of 4: int8 weights
    b.outputs = [b.conv2d(x, 16, (1, 1), per_channel=False, out_scale=1.0, out_zp=127)]
    _, weights, bias = b.operators[-1].inputs
    w_scale = 0.75 * 2.0**shift / 0.02  # the real multiplier 0.75 * 2^shift
    b.tensors[weights].quantization.scale = [w_scale]
    b.tensors[bias].quantization.scale = [0.02 * w_scale] * 16
    big = np.random.default_rng(1).integers(-(2**30) + 2**22, 2**30 - 2**22, size=16).astype(np.int32)
    b.buffers[b.tensors[bias].buffer].data = np.frombuffer(big.tobytes(), np.uint8)
    model = b.build()
    graph = load_tflite(model)
    engine = _engine(graph, dsp=True)
    assert bool(FAST_CALL.search(engine.files["model.c"])) == (shift == -21)
    x = np.random.default_rng(2).integers(-128, 128, size=(2, 3, 3, 63), dtype=np.int8)
    expected = np.asarray(run_tflm(model, x)).reshape(2, -1)
    assert_varied(expected)
    np.testing.assert_array_equal(host_dsp.run_engine(engine, x), expected)
