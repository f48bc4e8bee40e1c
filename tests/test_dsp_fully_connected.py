"""The DSP fully connected kernels over widened weights (ek_conv_dsp.c): each row widened once,
the units in quads, then the last 1 to 3 in pairs (``ek_fully_connected_wide_dsp``); two units
over a depth in blocks of 64, the input widened as it is read (``ek_fully_connected_pair_dsp``).

- layout: the groups (``dsp_layout.fc_groups``), the flash it adds against the int8 kernel
  (``widening_extra_bytes``) and the generated ``EK_CONV_DSP_TAIL``;
- host: engines built with gcc under ASan/UBSan, ACLE emulated (the session's runtimes, shared
  with the other modules), on randomized layers (depth,
  units, rows, activation, per-channel weights), against TensorFlow Lite Micro, the simulator and
  the plain C kernel;
- firmware: one model on qemu-m4 and qemu-m33 (the kernel's assembly), against TensorFlow Lite
  Micro.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from op_checks import firmware_matches_tflm
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.codegen import dsp_layout
from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.graph import load_tflite
from mcu_effnet.graph.planner import plan_arena
from mcu_effnet.sim import run as sim_run

pytestmark = pytest.mark.filterwarnings("ignore")

SETTINGS = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@given(units=st.integers(1, 60))
def test_fc_groups_cover_every_unit_in_quads_then_pairs(units):
    groups = dsp_layout.fc_groups(units)
    assert sum(groups) == units and groups[: units // 4] == [4] * (units // 4)
    assert all(n in (1, 2) for n in groups[units // 4 :]) and len(groups) - units // 4 == -(-(units % 4) // 2)


@pytest.mark.parametrize("units", [1, 2, 3, 5, 10, 12, 13])
def test_fc_layout_bytes_are_what_the_layout_holds(units):
    depth = 32
    w = np.random.default_rng(units).integers(-127, 128, size=(units, depth))
    ones = np.ones(units, np.int64)
    layout = dsp_layout.fc_layout(w, 0 * ones, (1 << 30) * ones, -2 * ones, 3, 0, -128, 127)
    assert 4 * layout.weights.size == dsp_layout.fc_layout_bytes(depth, units)


def _fc_model(seed: int, rows: int, depth: int, units: int, activation: str, per_channel: bool) -> bytes:
    b = ModelBuilder(np.random.default_rng(seed))
    x = b.input((1, rows, depth))
    b.outputs = [b.fully_connected(x, units, activation, per_channel=per_channel, keep_num_dims=True)]
    return b.build()


cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "rows": st.integers(1, 5),
        # the kernel's depths (multiples of 16), and others (the k x k or the int8 kernel)
        "depth": st.one_of(st.integers(1, 20).map(lambda q: 16 * q), st.integers(4, 75).map(lambda q: 4 * q)),
        "units": st.integers(1, 13),
        "activation": st.sampled_from(["NONE", "RELU", "RELU6"]),
        "per_channel": st.booleans(),
    }
)


@SETTINGS
@given(case=cases)
def test_fc_kernel_matches_tflm_the_simulator_and_the_plain_kernel(host_dsp, host_plain, case):
    model = _fc_model(**case)
    graph = load_tflite(model)
    engine = generate_engine(graph, dsp=True, max_recompute=None)
    model_c = engine.files["model.c"]
    units, depth = case["units"], case["depth"]
    takes = dsp_layout.takes_fc_kernel(depth, units)
    assert (f"{dsp_layout.fc_kernel(depth, units)}(&" in model_c) == takes
    assert "EK_CONV_DSP_TAIL 0" in engine.files["ek_dsp_paths.h"] or not takes
    x = np.random.default_rng(case["seed"]).integers(-128, 128, size=(3, case["rows"], depth), dtype=np.int8)
    expected = np.asarray(run_tflm(model, x)).reshape(len(x), -1)
    np.testing.assert_array_equal(np.asarray(sim_run(graph, x)).reshape(len(x), -1), expected)
    np.testing.assert_array_equal(host_dsp.run_engine(engine, x), expected)
    plain = generate_engine(graph, dsp=False, max_recompute=None)
    np.testing.assert_array_equal(host_plain.run_engine(plain, x), expected)


def test_conv_tail_path_is_compiled_in_only_for_convolutions_that_need_it():
    b = ModelBuilder(np.random.default_rng(3))
    x = b.input((1, 4, 4, 16))
    y = b.conv2d(x, 16, (3, 3))
    b.outputs = [b.fully_connected(b.reshape(y, (1, 256)), 10)]  # the FC's last pair
    without = generate_engine(load_tflite(b.build()), dsp=True, max_recompute=None).files
    assert f"{dsp_layout.FC_KERNEL}(&" in without["model.c"]
    assert "EK_CONV_DSP_TAIL 0" in without["ek_dsp_paths.h"]
    b = ModelBuilder(np.random.default_rng(3))
    x = b.input((1, 4, 4, 16))
    b.outputs = [b.conv2d(x, 10, (3, 3))]  # 2 channels past two groups
    with_tail = generate_engine(load_tflite(b.build()), dsp=True, max_recompute=None).files
    assert "ek_conv2d_dsp(&" in with_tail["model.c"] and "EK_CONV_DSP_TAIL 1" in with_tail["ek_dsp_paths.h"]


def test_fc_kernel_reads_only_arena_buffers():
    """The FC kernels load rows with LDM (word-aligned): a model input read where the caller
    keeps it (io_in_arena=False, any alignment) goes through the k x k kernel instead."""
    b = ModelBuilder(np.random.default_rng(5))
    x = b.input((1, 64))
    b.outputs = [b.fully_connected(x, 10)]
    graph = load_tflite(b.build())
    in_arena = generate_engine(graph, dsp=True, max_recompute=None).files["model.c"]
    assert f"{dsp_layout.FC_KERNEL}(&" in in_arena
    caller = generate_engine(graph, plan_arena(graph, io_in_arena=False), dsp=True, max_recompute=None)
    assert f"{dsp_layout.FC_KERNEL}(&" not in caller.files["model.c"]
    assert "ek_conv2d_dsp(&" in caller.files["model.c"]


@pytest.mark.toolchain
@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m33"])
def test_fc_kernel_in_qemu(tmp_path, board):
    """The FC kernels' assembly: two rows of 128 -> 2 per-channel with RELU (the pair kernel,
    rows looped), 4 -> 64 (the narrow kernel), four rows of 16 -> 12 (quads, rows looped), 48 ->
    7 with RELU6 (a quad, a pair and a half-used pair), 7 -> 64 (depth 7: the int8 kernel), 64 ->
    10 (two quads and a pair), 10 -> 32 (the int8 kernel) and 32 -> 1."""
    b = ModelBuilder(np.random.default_rng(13))
    x = b.input((1, 2, 128), scale=0.05, zero_point=-9)
    y = b.fully_connected(x, 2, "RELU", per_channel=True, keep_num_dims=True)
    y = b.fully_connected(b.reshape(y, (1, 4)), 64)
    y = b.fully_connected(b.reshape(y, (1, 4, 16)), 12, per_channel=True, keep_num_dims=True)
    y = b.fully_connected(b.reshape(y, (1, 48)), 7, "RELU6")
    y = b.fully_connected(b.fully_connected(y, 64), 10)
    y = b.fully_connected(b.fully_connected(y, 32), 1)
    b.outputs = [y]
    model = b.build()
    x = np.random.default_rng(7).integers(-128, 128, size=(3, 2, 128), dtype=np.int8)
    model_c = firmware_matches_tflm(model, board, tmp_path / "m", x, max_recompute=None)
    assert model_c.count(f"{dsp_layout.FC_PAIR_KERNEL}(&") == 1
    assert model_c.count(f"{dsp_layout.FC_KERNEL}(&") == 4  # 16 -> 12, 48 -> 7, 64 -> 10, 32 -> 1
