"""The DSP fully connected kernel over widened weights (``ek_fully_connected_wide_dsp``,
ek_conv_dsp.c): ek_conv2d_dsp's groups of four units without its pixel bookkeeping, a unit count
that is not a multiple of 4 ending with a group that overlaps the one before.

- layout: the units' order (``dsp_layout.fc_units``) and the generated ``EK_CONV_DSP_TAIL``;
- host: engines built with gcc under ASan/UBSan, ACLE emulated (the session's runtimes, shared
  with the other modules), on randomized layers (depth,
  units, rows, activation, per-channel weights), against TensorFlow Lite Micro, the simulator and
  the plain C kernel;
- firmware: one model on qemu-m4 (the real run_groups assembly), against TensorFlow Lite Micro.
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
from mcu_effnet.sim import run as sim_run

pytestmark = pytest.mark.filterwarnings("ignore")

SETTINGS = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@given(units=st.integers(4, 60))
def test_fc_units_cover_every_unit_in_groups_of_four(units):
    order = dsp_layout.fc_units(units)
    assert len(order) % 4 == 0 and len(order) == -(-units // 4) * 4
    assert set(order.tolist()) == set(range(units))
    full = units // 4 * 4
    assert order[:full].tolist() == list(range(full))  # whole groups in place
    assert order[-4:].tolist() == list(range(units - 4, units))  # the last group ends at the last unit


def _fc_model(seed: int, rows: int, depth: int, units: int, activation: str, per_channel: bool) -> bytes:
    b = ModelBuilder(np.random.default_rng(seed))
    x = b.input((1, rows, depth))
    b.outputs = [b.fully_connected(x, units, activation, per_channel=per_channel, keep_num_dims=True)]
    return b.build()


cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "rows": st.integers(1, 5),
        "depth": st.integers(4, 75).map(lambda q: 4 * q),  # 16..300: the kernel's depths
        "units": st.integers(1, 40),
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
    takes = dsp_layout.widen_1x1(depth, units) and dsp_layout.takes_fc_kernel(depth, units)
    assert (f"{dsp_layout.FC_KERNEL}(&" in model_c) == takes
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
    b.outputs = [b.fully_connected(b.reshape(y, (1, 256)), 10)]  # the FC's overlapping group
    without = generate_engine(load_tflite(b.build()), dsp=True, max_recompute=None).files
    assert f"{dsp_layout.FC_KERNEL}(&" in without["model.c"]
    assert "EK_CONV_DSP_TAIL 0" in without["ek_dsp_paths.h"]
    b = ModelBuilder(np.random.default_rng(3))
    x = b.input((1, 4, 4, 16))
    b.outputs = [b.conv2d(x, 10, (3, 3))]  # 2 channels past two groups
    with_tail = generate_engine(load_tflite(b.build()), dsp=True, max_recompute=None).files
    assert "ek_conv2d_dsp(&" in with_tail["model.c"] and "EK_CONV_DSP_TAIL 1" in with_tail["ek_dsp_paths.h"]


@pytest.mark.toolchain
def test_fc_kernel_in_qemu(tmp_path):
    """run_groups' assembly behind the FC kernel: three rows of 96 -> 12 per-channel (one call for
    the rows), 36 -> 20, 20 -> 5 with RELU6 and 64 -> 10 (overlapping last groups)."""
    b = ModelBuilder(np.random.default_rng(13))
    x = b.input((1, 3, 96), scale=0.05, zero_point=-9)
    y = b.fully_connected(x, 12, "RELU", per_channel=True, keep_num_dims=True)
    y = b.fully_connected(b.reshape(y, (1, 36)), 20)  # depth 36
    y = b.fully_connected(y, 5, "RELU6")
    y = b.fully_connected(b.fully_connected(y, 64), 10)  # 5 -> 64 stays on the int8 kernel
    b.outputs = [y]
    model = b.build()
    x = np.random.default_rng(7).integers(-128, 128, size=(3, 3, 96), dtype=np.int8)
    model_c = firmware_matches_tflm(model, "qemu-m4", tmp_path / "m", x, max_recompute=None)
    assert model_c.count(f"{dsp_layout.FC_KERNEL}(&") == 4  # all but 5 -> 64 (depth 5)
