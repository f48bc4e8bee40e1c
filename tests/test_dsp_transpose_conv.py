"""The DSP-extension TRANSPOSE_CONV kernel (ek_transpose_conv_dsp.c) against TFLite Micro.

- Host: engines generated with ``dsp=True`` built with gcc, ASan and UBSan, the ACLE intrinsics
  replaced by tests/acle_emulation.h, on randomized single-op models (strides 1 to 3, SAME and
  VALID, odd sizes, channel counts off multiples of 4, per-tensor and per-channel weights,
  input zero points up to the int8 extremes): bit for bit with the interpreter.
- QEMU: a small decoder on qemu-m4 and qemu-m33, where the core picks the DSP kernel.
"""

from __future__ import annotations

import numpy as np
import pytest
from host_engine import HostRuntime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from op_checks import firmware_matches_tflm
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.graph import load_tflite

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> HostRuntime:
    return HostRuntime(tmp_path_factory.mktemp("dsp_tconv"), dsp=True)  # portable ACLE intrinsics


cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "h": st.integers(1, 6),
        "w": st.integers(1, 6),
        "c": st.integers(1, 11),
        "out_c": st.integers(1, 10),
        "kernel": st.tuples(st.integers(1, 5), st.integers(1, 5)),
        "stride": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "padding": st.sampled_from(["SAME", "VALID"]),
        "activation": st.sampled_from(["NONE", "RELU", "RELU6"]),
        "per_channel": st.booleans(),
        "bias": st.booleans(),
        "in_zp": st.sampled_from([None, -128, 127]),  # None: the builder's random one
    }
)


def _model(case: dict) -> bytes:
    b = ModelBuilder(np.random.default_rng(case["seed"]))
    x = b.input((1, case["h"], case["w"], case["c"]), zero_point=case["in_zp"])
    y = b.transpose_conv(
        x,
        case["out_c"],
        case["kernel"],
        case["stride"],
        case["padding"],
        case["activation"],
        case["per_channel"],
        case["bias"],
    )
    b.outputs = [y]
    return b.build()


@settings(
    max_examples=14,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases)
def test_dsp_kernel_matches_tflite_micro_on_host(host: HostRuntime, case: dict) -> None:
    model = _model(case)
    graph = load_tflite(model)
    engine = generate_engine(graph, dsp=True)
    assert engine.files["model.c"].count("ek_transpose_conv_dsp(&") == 1
    xs = np.random.default_rng(case["seed"]).integers(-128, 128, size=(4, case["h"], case["w"], case["c"]))
    xs = xs.astype(np.int8)
    expected = np.asarray(run_tflm(model, xs)).reshape(4, -1)
    np.testing.assert_array_equal(host.run_engine(engine, xs), expected)


def _decoder() -> bytes:
    """Stride 2 SAME (groups of four and a tail of 2 over 7 input channels), stride 3 VALID with a
    tail only (3 channels), stride 1 SAME over a depth of 3."""
    b = ModelBuilder(np.random.default_rng(41))
    x = b.input((1, 5, 4, 7), scale=0.03, zero_point=-128)
    x = b.transpose_conv(x, 6, (3, 3), (2, 2), "SAME", activation="RELU")
    x = b.transpose_conv(x, 3, (4, 2), (3, 1), "VALID", per_channel=False)
    x = b.transpose_conv(x, 5, (3, 3), (1, 1), "SAME", activation="RELU6", bias=False)
    b.outputs = [x]
    return b.build()


@pytest.mark.toolchain
@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m33"])
def test_dsp_kernel_in_qemu(tmp_path, board: str) -> None:
    x = np.random.default_rng(7).integers(-128, 128, size=(2, 5, 4, 7), dtype=np.int8)
    model_c = firmware_matches_tflm(_decoder(), board, tmp_path / "m", x)
    assert model_c.count("ek_transpose_conv_dsp(&") == 3
