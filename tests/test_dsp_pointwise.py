"""The DSP 1x1 CONV_2D and FULLY_CONNECTED kernels (ek_pointwise_dsp.c) against the simulator.

Two levels:

- host: engines generated with ``dsp=True`` built with gcc under ASan/UBSan, the ACLE intrinsics
  emulated (tests/acle_emulation.h), on randomised shapes, strides, paddings and quantization
  (hypothesis); the output must equal the simulator's (itself bit-exact with TFLite Micro) and
  the plain C engine's;
- firmware: one model with several such ops per board, built for qemu-m4 and qemu-m33 (the
  real SMLAD / SXTB16 instructions) and run in QEMU on random inputs, bit-exact with the
  simulator; the generated sources must name the DSP kernels.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tflite_builder import ModelBuilder

from mcu_effnet.codegen import dsp_layout
from mcu_effnet.codegen.dsp_pointwise import (
    FC_KERNEL,
    fast_requantize_ok,
    interleave,
    pointwise_layout,
    records,
)
from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as sim_run

pytestmark = pytest.mark.filterwarnings("ignore")

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
# the kernels, called directly or through a chunked mode (ek_chunks_dsp.h: 1x1 in place, ADD fused)
DSP_KERNEL = re.compile(
    r"\b(ek_(?:conv2d_1x1_narrow|conv2d_1x1|conv2d|fully_connected_wide|fully_connected)_dsp(?:_fast)?)(?:_in_place|_add)?\("
)


# conftest's host builds the DSP runtime (portable ACLE intrinsics) for this module.
HOST_DSP = True


def _inputs(graph, n: int, seed: int) -> np.ndarray:
    shape = graph.tensors[graph.inputs[0]].shape
    return np.random.default_rng(seed).integers(-128, 128, size=(n, *shape[1:]), dtype=np.int8)


def _exact(b: ModelBuilder, slow: bool = True) -> None:
    """Makes the last op (per-channel) use the kernels' ek_multiply_by_quantized_multiplier requantization: channel 0's
    weight scale grows 1000-fold, so its shift is >= 0 and the SMMULR one does not apply to
    the op (channel 0 saturates; the others keep their spread)."""
    if slow:
        op = b.operators[-1]
        b.tensors[op.inputs[1]].quantization.scale[0] *= 1000.0


# ---- the layout ---------------------------------------------------------------------------------


def _sxtb16(word: int) -> tuple[int, int]:
    """The two halfwords SXTB16 makes of an unsigned 32-bit word: bytes 0 and 2, sign-extended."""
    b = [(word >> (8 * i)) & 0xFF for i in range(4)]
    return tuple(v - 256 if v > 127 else v for v in (b[0], b[2]))


@settings(SETTINGS, max_examples=30)
@given(seed=st.integers(0, 2**16), channels=st.integers(1, 9), depth=st.integers(1, 14))
def test_interleave_gives_the_inputs_lanes(seed, channels, depth):
    """Word A / B of each (pair, block), taken apart as the kernel does, are channel 0's and
    channel 1's weights at the depth indices of the input's lanes (k, k+2) and (k+1, k+3)."""
    w = np.random.default_rng(seed).integers(-128, 128, size=(channels, depth))
    words = interleave(w).view(np.uint32)
    blocks = -(-depth // 4)
    assert words.size == 2 * blocks * (-(-channels // 2))
    padded = np.zeros((channels + 1, blocks * 4), np.int64)
    padded[:channels, :depth] = w
    i = 0
    for pair in range(0, channels, 2):
        for block in range(blocks):
            for lo in (0, 1):  # word A: lanes (k, k+2); word B: (k+1, k+3)
                word = int(words[i])
                k = 4 * block + lo
                assert _sxtb16(word) == (padded[pair, k], padded[pair, k + 2])
                rotated = (word >> 8) | ((word << 24) & 0xFFFFFFFF)
                assert _sxtb16(rotated) == (padded[pair + 1, k], padded[pair + 1, k + 2])
                i += 1


def test_records_pair_the_channels_constants():
    r = records(np.array([1, 2, 3]), np.array([10, 20, 30]), np.array([-1, -2, -3])).reshape(-1, 6)
    assert r.tolist() == [[1, 2, 10, 20, -1, -2], [3, 0, 30, 0, -3, 0]]
    fc = records(np.array([4, 5]), np.array([7]), np.array([2])).reshape(-1, 6)  # per-tensor
    assert fc.tolist() == [[4, 5, 7, 7, 2, 2]]


def test_layout_stores_s_for_fast_kernels_and_tflite_shifts_otherwise():
    w = np.ones((2, 3), np.int8)
    fast = pointwise_layout(FC_KERNEL, w, np.array([0, 0]), np.array([1 << 30] * 2), np.array([-1, -4]))
    assert fast.kernel == FC_KERNEL + "_fast" and fast.records.tolist()[4:] == [0, 3]
    exact = pointwise_layout(FC_KERNEL, w, np.array([0, 0]), np.array([1 << 30] * 2), np.array([0, -4]))
    assert exact.kernel == FC_KERNEL and exact.records.tolist()[4:] == [0, -4]
    assert exact.struct == "ek_fc_dsp_params"


def test_fast_requantize_needs_negative_shifts_and_small_accumulators():
    w = np.full((2, 4), 127)
    assert fast_requantize_ok(np.array([-1, -5]), np.array([0, 0]), w)
    assert not fast_requantize_ok(np.array([-1, 0]), np.array([0, 0]), w)
    assert fast_requantize_ok(np.array([-21, -5]), np.array([0, 0]), w)  # s = 20: k + v fits int32
    assert not fast_requantize_ok(np.array([-22, -5]), np.array([0, 0]), w)
    limit = 2**30 - 128 * 127 * 4
    assert fast_requantize_ok(np.array([-1, -1]), np.array([limit - 1, -(limit - 1)]), w)
    assert not fast_requantize_ok(np.array([-1, -1]), np.array([0, -limit]), w)


# ---- host: the kernels under the sanitizers -----------------------------------------------------

cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "h": st.integers(1, 6),
        "w": st.integers(1, 6),
        "c": st.integers(1, 13),
        "oc": st.integers(1, 11),
        "oc2": st.integers(1, 6),
        "stride": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "padding": st.sampled_from(["SAME", "VALID"]),
        "activation": st.sampled_from(["NONE", "RELU", "RELU6"]),
        "per_channel": st.booleans(),
        "slow": st.sampled_from([(False, False), (True, False), (False, True)]),
        "units": st.integers(1, 9),
        "fc_rows": st.booleans(),  # FULLY_CONNECTED over every pixel (keep_num_dims) or flattened
    }
)


def _model(case: dict) -> bytes:
    """1x1 conv (stride 1) -> 1x1 conv (the case's stride) -> FULLY_CONNECTED."""
    b = ModelBuilder(np.random.default_rng(case["seed"]))
    x = b.input((1, case["h"], case["w"], case["c"]))
    slow1, slow2 = case["slow"]
    y = b.conv2d(
        x, case["oc"], (1, 1), activation=case["activation"], per_channel=case["per_channel"] or slow1
    )
    _exact(b, slow1)
    y = b.conv2d(y, case["oc2"], (1, 1), case["stride"], case["padding"])
    _exact(b, slow2)
    if case["fc_rows"]:
        y = b.fully_connected(y, case["units"], per_channel=case["per_channel"], keep_num_dims=True)
    else:
        n, h, w, c = b.info[y].shape
        y = b.fully_connected(b.reshape(y, (n, h * w * c)), case["units"], activation=case["activation"])
    b.outputs = [y]
    return b.build()


@SETTINGS
@given(case=cases)
def test_dsp_kernels_match_the_simulator(host, case):
    graph = load_tflite(_model(case))
    engine = generate_engine(graph, dsp=True, max_recompute=None)  # the layers' own kernels, untiled
    kernels = DSP_KERNEL.findall(engine.files["model.c"])
    chunked = [
        m.group(0).endswith(("_in_place(", "_add(")) for m in DSP_KERNEL.finditer(engine.files["model.c"])
    ]
    # layers whose depth fills steps of four take widened weights (dsp_layout.widen_1x1) when
    # their requantization allows the short form (not the "slow" ones): the narrow kernel up to
    # a depth of 12 (the k x k kernel in a chunked mode, which the narrow one lacks), deeper the
    # k x k kernel; a FULLY_CONNECTED whose depth fills blocks of 16 the FC kernel
    # (dsp_layout.takes_fc_kernel); the others these kernels
    expected_kernels, pointwise = [], []
    weighted = [op for op in graph.ops if op.kind in ("CONV_2D", "FULLY_CONNECTED")]
    for op, slow in zip(weighted, (*case["slow"], False), strict=True):
        units, depth = graph.tensors[op.inputs[1]].shape[0], graph.tensors[op.inputs[1]].shape[-1]
        if op.kind == "FULLY_CONNECTED" and dsp_layout.takes_fc_kernel(depth, units) and not slow:
            expected_kernels.append(dsp_layout.FC_KERNEL)
        elif dsp_layout.widen_1x1(depth, units) and not slow:
            narrow = depth <= dsp_layout.NARROW_MAX_DEPTH and not chunked[len(expected_kernels)]
            expected_kernels.append(dsp_layout.NARROW_1X1_KERNEL if narrow else dsp_layout.CONV_KERNEL)
        else:
            expected_kernels.append("ek_conv2d_1x1_dsp" if op.kind == "CONV_2D" else "ek_fully_connected_dsp")
            pointwise.append(len(expected_kernels) - 1)
    assert [k.replace("_fast", "") for k in kernels] == expected_kernels
    slow1, slow2 = case["slow"]
    for position, slow in ((0, slow1), (1, slow2)):
        if position in pointwise:
            assert kernels[position].endswith("_fast") != slow
    x = _inputs(graph, 4, case["seed"])
    expected = np.asarray(sim_run(graph, x)).reshape(len(x), -1)
    np.testing.assert_array_equal(host.run_engine(engine, x), expected)


def test_plain_engine_has_no_dsp_kernels():
    case = dict(
        seed=1, h=3, w=3, c=5, oc=3, oc2=2, stride=(1, 1), padding="SAME", activation="NONE",
        per_channel=True, slow=(False, False), units=3, fc_rows=False,
    )  # fmt: skip
    engine = generate_engine(load_tflite(_model(case)))
    assert not DSP_KERNEL.search(engine.files["model.c"])
    assert (
        "ek_pointwise_dsp.c" not in engine.files and "#define MODEL_DSP_KERNELS 0" in engine.files["model.h"]
    )


def test_the_boards_core_picks_the_kernels(tmp_path):
    """write_project generates the DSP engine for a core with the DSP extension, the plain one
    for a core without (a Cortex-M3-like variant of qemu-m4)."""
    import dataclasses

    from mcu_effnet.boards import get_board
    from mcu_effnet.codegen.project import write_project

    case = dict(
        seed=2, h=2, w=2, c=4, oc=2, oc2=2, stride=(1, 1), padding="SAME", activation="NONE",
        per_channel=True, slow=(False, False), units=2, fc_rows=False,
    )  # fmt: skip
    graph = load_tflite(_model(case))
    m4 = get_board("qemu-m4")
    no_dsp = dataclasses.replace(m4, has_dsp=False)
    for board, dsp in ((m4, True), (no_dsp, False)):
        out = tmp_path / str(dsp)
        write_project(graph, board, out, build=False)
        assert ("#define MODEL_DSP_KERNELS 1" if dsp else "#define MODEL_DSP_KERNELS 0") in (
            out / "model" / "model.h"
        ).read_text()
        assert bool(DSP_KERNEL.search((out / "model" / "model.c").read_text())) == dsp
        assert (out / "model" / "ek_pointwise_dsp.c").exists() == dsp


# ---- firmware: the real instructions in QEMU ---------------------------------------------------


def _firmware_model(seed: int) -> bytes:
    """Several 1x1 convs and FCs in one model (one build per board): odd and even depths,
    channel counts and pixel counts, strides, per-tensor and per-channel FC, both requantizations."""
    b = ModelBuilder(np.random.default_rng(seed))
    x = b.input((1, 5, 7, 9))
    # 35 pixels (8 blocks of four, one of three), depth 9 (tail of 1), 25 channels (the last alone)
    y = b.conv2d(x, 25, (1, 1), activation="RELU")
    y = b.conv2d(y, 259, (1, 1))  # depth 25 (no step of 4: int8 weights)
    y = b.conv2d(y, 9, (1, 1), activation="RELU6")  # depth 259: two chunks (256 + 3)
    y = b.conv2d(y, 7, (1, 1))  # depth 9, odd channels
    _exact(b)
    y = b.conv2d(y, 10, (1, 1), (2, 2), "VALID", activation="RELU6")  # stride 2: 3 x 4 pixels
    y = b.conv2d(y, 6, (1, 1), (1, 2), "SAME")  # stride (1, 2): 3 x 2 pixels, depth 10 (tail of 2)
    y = b.fully_connected(y, 5, per_channel=True, keep_num_dims=True)  # 6 rows
    n, h, w, c = b.info[y].shape
    y = b.fully_connected(b.reshape(y, (n, h * w * c)), 12, activation="RELU")  # depth 30, one row
    # two units: int8 weights even at a depth of whole steps (dsp_layout.WIDE_1X1_MIN_CHANNELS)
    y = b.fully_connected(y, 2)
    b.outputs = [y]
    return b.build()


@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m33"])
@pytest.mark.toolchain
def test_dsp_firmware_in_qemu_is_bit_exact(tmp_path, board):
    from mcu_effnet.codegen import toolchain
    from mcu_effnet.codegen.project import write_project

    model = _firmware_model(7)
    graph = load_tflite(model)
    project = write_project(
        graph, board, tmp_path / "fw", model_bytes=model, model_source="pointwise.tflite", max_recompute=None
    )
    sources = (project.path / "model" / "model.c").read_text()
    kernels = DSP_KERNEL.findall(sources)
    assert (
        len(kernels) == 9 and "ek_conv2d_1x1_dsp" in kernels and kernels[-1] == "ek_fully_connected_dsp_fast"
    )
    assert "#define MODEL_DSP_KERNELS 1" in (project.path / "model" / "model.h").read_text()
    x = _inputs(graph, 5, 3)
    elf = project.path / project.report["elf"]
    result = toolchain.run_qemu(project.board, elf, inputs=x.reshape(len(x), -1), output_bytes=2)
    assert result.check_ok, result.stdout[-2000:]
    np.testing.assert_array_equal(result.outputs, np.asarray(sim_run(graph, x)).reshape(len(x), -1))
    # the firmware holds the DSP kernels, compiled to SMLAD / SXTB16
    dis = subprocess.run(
        ["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    body = re.split(r"\n[0-9a-f]+ <", dis.split("<run_fast>:")[1])[0]  # ek_conv2d_1x1_dsp_fast's loop
    assert "smlad" in body and "sxtb16" in body
