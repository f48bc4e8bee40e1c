"""The DSP-extension depthwise kernel (ek_depthwise_dsp.c) against the simulator.

- Host: engines generated with ``dsp=True`` are built with gcc, ASan and UBSan, the ACLE
  intrinsics replaced by tests/acle_emulation.h, on randomised shapes, strides, paddings,
  dilations, channel counts (full groups of four and tails) and quantization; the plain
  engine of the same model runs beside it. Both must equal the simulator bit for bit.
- QEMU: chains of depthwise ops (every stride-1 op of a chain runs in place over its dying
  input) built for qemu-m4 and qemu-m33, where the core picks the DSP path, run on random
  inputs and compared with TensorFlow Lite Micro (``op_checks.firmware_matches_tflm``).
"""

from __future__ import annotations

import numpy as np
import pytest
from host_engine import HostRuntime
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from op_checks import firmware_matches_tflm
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.codegen import dsp_depthwise_paths, dsp_layout
from mcu_effnet.codegen.dsp_depthwise_paths import DepthwiseGeometry, plane_fits
from mcu_effnet.codegen.engine import EngineSources, generate_engine
from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as sim_run

pytestmark = pytest.mark.filterwarnings("ignore")


# conftest's host builds the DSP runtime (portable ACLE intrinsics) for this module.
HOST_DSP = True


def _out_size(size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    eff = (k - 1) * dilation + 1
    return (size + stride - 1) // stride if padding == "SAME" else (size - eff + stride) // stride


def _dsp_calls(engine: EngineSources) -> int:
    return engine.files["model.c"].count("_dsp(&")


def _check_both_engines(host: HostRuntime, b: ModelBuilder, case: dict) -> EngineSources:
    """Runs the one-op model through the DSP engine and the plain engine on four random inputs;
    both must equal the simulator. Returns the DSP engine for checks on its kernel calls."""
    graph = load_tflite(b.build())
    xs = np.random.default_rng(case["seed"]).integers(-128, 128, size=(4, case["h"], case["w"], case["c"]))
    xs = xs.astype(np.int8)
    expected = np.asarray(sim_run(graph, xs)).reshape(4, -1)
    dsp = generate_engine(graph, dsp=True)
    np.testing.assert_array_equal(host.run_engine(dsp, xs), expected)
    np.testing.assert_array_equal(host.run_engine(generate_engine(graph), xs), expected)
    return dsp


def _host_examples(count: int):
    """Hypothesis settings of the host tests: ``count`` derandomized examples, no deadline (each
    compiles and runs an engine under the sanitizers)."""
    return settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "h": st.integers(1, 9),
        "w": st.integers(1, 9),
        "c": st.integers(1, 13),
        "kernel": st.tuples(st.integers(1, 5), st.integers(1, 5)),
        "stride": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "dilation": st.tuples(st.integers(1, 2), st.integers(1, 2)),
        "padding": st.sampled_from(["SAME", "VALID"]),
        "activation": st.sampled_from(["NONE", "RELU", "RELU6"]),
        "per_channel": st.booleans(),
        "bias": st.booleans(),
    }
)


def _valid(case: dict) -> bool:
    return all(
        _out_size(size, k, s, d, case["padding"]) >= 1
        for size, k, s, d in zip(
            (case["h"], case["w"]), case["kernel"], case["stride"], case["dilation"], strict=True
        )
    )


@_host_examples(24)
@given(case=cases.filter(_valid))
def test_depthwise_dsp_on_host(host, case):
    b = ModelBuilder(np.random.default_rng(case["seed"]))
    x = b.input((1, case["h"], case["w"], case["c"]))
    y = b.depthwise(
        x, case["kernel"], case["stride"], case["padding"], case["dilation"], 1,
        case["activation"], case["per_channel"], case["bias"],
    )  # fmt: skip
    b.outputs = [y]
    dsp = _check_both_engines(host, b, case)
    assert _dsp_calls(dsp) == 1


window3x3_cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "h": st.integers(1, 8),
        "w": st.integers(1, 9),
        "c": st.sampled_from([4, 8, 12, 16, 20]),  # whole groups of four: the straight-line path
        "kernel": st.just((3, 3)),
        "stride": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "dilation": st.just((1, 1)),
        "padding": st.sampled_from(["SAME", "VALID"]),
        "activation": st.sampled_from(["NONE", "RELU", "RELU6"]),
        "per_channel": st.booleans(),
        "bias": st.booleans(),
    }
)


@_host_examples(20)
@given(case=window3x3_cases.filter(_valid))
def test_depthwise_3x3_windows_inside_the_input_on_host(host, case):
    """3x3, dilation 1, channels in groups of four: pixels whose window lies inside the input take
    the straight-line window (ek_depthwise_dsp.c window3x3_k), the border pixels the general one."""
    test_depthwise_dsp_on_host.hypothesis.inner_test(host, case)


def _four_channel_case(h: int, w: int, c: int, stride: int, padding: str) -> dict:
    """A 3x3 case that the four-channel kernel runs (the paths' mirror says so), in place (one op)."""
    out = [_out_size(n, 3, stride, 1, padding) for n in (h, w)]
    pads = [
        max((o - 1) * stride + 3 - n, 0) // 2 if padding == "SAME" else 0
        for o, n in zip(out, (h, w), strict=True)
    ]
    geometry = DepthwiseGeometry(1, h, w, c, out[0], out[1], c, 3, 3, stride, stride, 1, 1, pads[0], pads[1])
    assert dsp_depthwise_paths.path(geometry, in_place=stride == 1) == "four"
    return dict(
        h=h, w=w, c=c, kernel=(3, 3), stride=(stride, stride), dilation=(1, 1), padding=padding,
    )  # fmt: skip


# (h, w, c, stride, padding, activation, per-channel): the windows inside the input (at least two a call)
# through window3x3_k's group records; 65 groups (260 channels) past its table: pixel()
WINDOW3X3_K_CASES = [
    (5, 5, 8, 2, "VALID", "RELU6", True),  # 2x2 windows, all inside
    (6, 6, 12, 2, "SAME", "NONE", False),  # VWW's 3x3 stride 2: 4 of 9 inside, the last row and column not
    (3, 5, 4, 1, "SAME", "RELU", True),  # in place, 3 of 15 inside
    (4, 4, 256, 1, "VALID", "RELU6", False),  # in place, the table's 64 groups
    (4, 4, 260, 1, "VALID", "NONE", True),  # 65 groups: pixel()
]


@pytest.mark.parametrize(("h", "w", "c", "stride", "padding", "activation", "per_channel"), WINDOW3X3_K_CASES)
def test_depthwise_window3x3_records_on_host(host, h, w, c, stride, padding, activation, per_channel):
    """ek_depthwise_dsp.c's window3x3_k (requantize_k's form from a table of group records built
    per call) and its fallback on small maps, per-channel and per-tensor quantization."""
    case = {**_four_channel_case(h, w, c, stride, padding), "seed": h * w + c, "activation": activation}
    case.update(per_channel=per_channel, bias=True)
    test_depthwise_dsp_on_host.hypothesis.inner_test(host, case)


@pytest.mark.parametrize("shift", [-21, -22])
def test_window3x3_records_constant_at_its_largest(host, shift):
    """window3x3_k at requantize_k's largest constant (output zero point 127, s = 20: 511 << 20)
    with accumulators near 2^30; at s = 21 pixel() takes its windows (requantize_u8)."""
    _check_largest_constant(
        host, shift, size=5, stride=(2, 2), padding="VALID", kernel="ek_depthwise_conv2d_dsp(&"
    )


def _rows_path(case: dict) -> bool:
    """Whether ek_depthwise_conv2d_dsp takes its channel-major path (ek_depthwise_rows_width)."""
    (kh, kw), (sh, sw) = case["kernel"], case["stride"]
    out_h = _out_size(case["h"], kh, sh, 1, case["padding"])
    out_w = _out_size(case["w"], kw, sw, 1, case["padding"])
    pixels = out_w + out_w % 2
    pad_left = max((out_w - 1) * sw + kw - case["w"], 0) // 2 if case["padding"] == "SAME" else 0
    width = max((pixels - 1) * sw + kw + 1, pad_left + case["w"])
    width += width % 2
    return (
        kh == kw in (3, 5) and sw in (1, 2) and case["dilation"] == (1, 1) and out_h >= 2
        and out_w >= (14 if kw == 5 else 20) and kw * width <= 1152 and not _plane_path(case)
    )  # fmt: skip


rows_cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "h": st.integers(2, 7),
        "w": st.integers(14, 49),  # odd and even output widths: the pairs' last pixel
        "c": st.integers(1, 6),
        "kernel": st.sampled_from([(3, 3), (5, 5)]),
        "stride": st.tuples(st.integers(1, 3), st.integers(1, 2)),
        "dilation": st.just((1, 1)),
        "padding": st.sampled_from(["SAME", "VALID"]),
        "activation": st.sampled_from(["NONE", "RELU", "RELU6"]),
        "per_channel": st.booleans(),
        "bias": st.booleans(),
    }
)


@_host_examples(16)
@given(case=rows_cases.filter(_valid).filter(_rows_path))
def test_depthwise_rows_on_host(host, case):
    """3x3 and 5x5, stride_w 1 or 2, wide enough: the channel-major path
    (ek_depthwise_rows_dsp.c), padding columns and rows as zeros in its ring."""
    test_depthwise_dsp_on_host.hypothesis.inner_test(host, case)


def _rows_chain(seed: int, shape: tuple[int, int, int], layers: list[dict]) -> bytes:
    b = ModelBuilder(np.random.default_rng(seed))
    x = b.input((1, *shape))
    for layer in layers:
        x = b.depthwise(x, **layer)
    b.outputs = [x]
    return b.build()


# depthwise ops over their dying inputs, wide enough for the channel-major path (in place)
ROWS_CHAINS = [
    (
        31,
        (5, 44, 6),
        [dict(kernel=(3, 3), stride=(2, 2)), dict(kernel=(3, 3)), dict(kernel=(5, 5), activation="RELU6")],
    ),
    (
        32,
        (12, 23, 5),
        [
            dict(kernel=(5, 5), stride=(2, 1)),
            dict(kernel=(5, 5), activation="RELU"),
            dict(kernel=(3, 3), padding="VALID"),
        ],
    ),
]


@pytest.mark.parametrize("seed, shape, layers", ROWS_CHAINS)
def test_depthwise_rows_in_place_on_host(host, seed, shape, layers):
    """The channel-major path writing over its own input (ek_depthwise_rows_in_place)."""
    graph = load_tflite(_rows_chain(seed, shape, layers))
    dsp = generate_engine(graph, dsp=True)
    assert "ek_depthwise_conv2d_in_place_dsp(&" in dsp.files["model.c"]
    xs = np.random.default_rng(seed).integers(-128, 128, size=(3, *shape), dtype=np.int8)
    np.testing.assert_array_equal(host.run_engine(dsp, xs), np.asarray(sim_run(graph, xs)).reshape(3, -1))


@pytest.mark.toolchain
@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m33"])
def test_depthwise_rows_in_qemu(tmp_path, board):
    """The channel-major path on the cores (SMUAD / SMULTB inline assembly), in place and not,
    against TFLite Micro."""
    seed, shape, layers = ROWS_CHAINS[0]
    x = np.random.default_rng(seed).integers(-128, 128, size=(3, *shape), dtype=np.int8)
    model_c = firmware_matches_tflm(
        _rows_chain(seed, shape, layers), board, tmp_path / "m", x, max_recompute=None
    )
    assert "ek_depthwise_conv2d_in_place_dsp(&" in model_c and "ek_depthwise_conv2d_dsp(&" in model_c


def _plane_path(case: dict) -> bool:
    """Whether ek_depthwise_conv2d_dsp takes its whole-plane path (ek_depthwise_plane_fits, which
    it tries first; the generator's mirror, held to the C by test_dsp_depthwise_paths): 3x3 stride
    1, or 2 where four planes fit with rows 16 or 32 halfwords apart, with at least 16 output
    pixels, the padded plane (the map transposed when taller than wide) within 896 halfwords."""
    if case["kernel"] != (3, 3) or case["dilation"] != (1, 1):
        return False
    stride = case["stride"][0]
    sides = (case["h"], case["w"])
    size = [_out_size(n, 3, s, 1, case["padding"]) for n, s in zip(sides, case["stride"], strict=True)]
    pads = [max((o - 1) * s + 3 - n, 0) // 2 if case["padding"] == "SAME" else 0
            for o, s, n in zip(size, case["stride"], sides, strict=True)]  # fmt: skip
    geometry = DepthwiseGeometry(
        1, case["h"], case["w"], case["c"], size[0], size[1], case["c"], 3, 3, stride, case["stride"][1], 1, 1,
        pads[0], pads[1],
    )  # fmt: skip
    return plane_fits(geometry)


plane_cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "h": st.integers(3, 40),  # taller than wide (transposed) and not
        "w": st.integers(3, 30),  # odd and even widths: an odd row's dropped pixel
        "c": st.integers(1, 9),  # groups of four and tails
        "kernel": st.just((3, 3)),
        "stride": st.sampled_from([(1, 1), (1, 1), (2, 2)]),  # stride 2: the pitched planes only
        "dilation": st.just((1, 1)),
        "padding": st.sampled_from(["SAME", "VALID"]),
        "activation": st.sampled_from(["NONE", "RELU", "RELU6"]),
        "per_channel": st.booleans(),
        "bias": st.booleans(),
    }
)


def _check_plane_case(host, case: dict) -> None:
    b = ModelBuilder(np.random.default_rng(case["seed"]))
    x = b.input((1, case["h"], case["w"], case["c"]))
    y = b.depthwise(
        x, (3, 3), case["stride"], case["padding"], activation=case["activation"],
        per_channel=case["per_channel"], bias=case["bias"],
    )  # fmt: skip
    b.outputs = [y]
    xs = np.random.default_rng(case["seed"]).integers(-128, 128, size=(4, case["h"], case["w"], case["c"]))
    xs = xs.astype(np.int8)
    expected = np.asarray(run_tflm(b.build(), xs)).reshape(4, -1)
    graph = load_tflite(b.build())
    np.testing.assert_array_equal(host.run_engine(generate_engine(graph, dsp=True), xs), expected)
    np.testing.assert_array_equal(np.asarray(sim_run(graph, xs)).reshape(4, -1), expected)


@_host_examples(12)
@given(case=plane_cases.filter(_valid).filter(_plane_path))
def test_depthwise_plane_on_host(host, case):
    """Small 3x3 maps, stride 1 or 2: the whole-plane path (ek_depthwise_plane_dsp.c), transposed
    when taller than wide, rows pitched or not, against TFLite Micro and the simulator."""
    _check_plane_case(host, case)


@_host_examples(8)
@given(
    case=plane_cases,
    h=st.integers(4, 9),
    w=st.integers(4, 9),
    c=st.sampled_from([4, 7, 8, 12]),
)
def test_depthwise_plane_small_maps_on_host(host, case, h, w, c):
    """Maps of 16 to 81 pixels (VWW's 6x6, EfficientNet's 7x7): four channels' planes filled at
    once, the rows' accumulators requantized as one run (a remainder of 1-3 one by one), the last
    1-3 channels a plane at a time."""
    case = {**case, "h": h, "w": w, "c": c}
    assume(_valid(case) and _plane_path(case))
    _check_plane_case(host, case)


def _check_largest_constant(host, shift: int, size: int, stride: tuple, padding: str, kernel: str) -> None:
    """A per-tensor 3x3 depthwise op on a size x size x 16 map with the real multiplier 0.75 *
    2^shift, output zero point 127, no activation and biases near 2^30, against TFLite Micro."""
    b = ModelBuilder(np.random.default_rng(9))
    x = b.input((1, size, size, 16), scale=0.02, zero_point=0)
    y = b.depthwise(x, (3, 3), stride, padding, per_channel=False)
    _, weights, bias = b.operators[-1].inputs
    w_scale = 0.75 * 2.0**shift / 0.02  # the real multiplier 0.75 * 2^shift
    b.tensors[weights].quantization.scale = [w_scale]
    b.tensors[bias].quantization.scale = [0.02 * w_scale] * 16
    b.tensors[y].quantization.scale = [1.0]
    b.tensors[y].quantization.zeroPoint = [127]
    big = np.random.default_rng(1).integers(-(2**30) + 2**22, 2**30 - 2**22, size=16).astype(np.int32)
    b.buffers[b.tensors[bias].buffer].data = np.frombuffer(big.tobytes(), np.uint8)
    b.outputs = [y]
    model = b.build()
    engine = generate_engine(load_tflite(model), dsp=True)
    assert kernel in engine.files["model.c"]
    xs = np.random.default_rng(2).integers(-128, 128, size=(2, size, size, 16), dtype=np.int8)
    expected = np.asarray(run_tflm(model, xs)).reshape(2, -1)
    assert len(np.unique(expected)) > 4  # channels apart, not all saturated
    np.testing.assert_array_equal(host.run_engine(engine, xs), expected)


@pytest.mark.parametrize("shift", [-21, -22])
def test_plane_requantization_constant_at_its_largest(host, shift):
    """The plane path adds requantize_k's (1 + 2 * (out_offset - act_min)) << s to SMMULR's v: at
    s = 20 (TFLite shift -21), the largest constant (output zero point 127, no activation: 511 <<
    20) and accumulators near 2^30 it still fits int32; at s = 21 the plane keeps requantize_u8's
    form."""
    _check_largest_constant(host, shift, size=6, stride=(1, 1), padding="SAME",
                            kernel="ek_depthwise_conv2d_in_place_dsp(&")  # fmt: skip


# stride-1 3x3 depthwise ops over their dying inputs on small maps (the plane path in place), a
# taller-than-wide one transposed (plane rows 32 halfwords apart), and a stride-2 one between
# (four transposed planes, rows 32 halfwords apart: 23x3 -> 12x2)
PLANE_CHAIN = (
    41,
    (25, 5, 12),
    [
        dict(kernel=(3, 3), activation="RELU"),
        dict(kernel=(3, 3), padding="VALID", activation="RELU6"),
        dict(kernel=(3, 3), stride=(2, 2)),
        dict(kernel=(3, 3)),
    ],
)


# VWW-like small square maps (untransposed): 7x7 then 5x5 and 3x3 (VALID), ten channels (two
# groups of four planes and two planes alone); the 3x3 map stays on the four-channel kernel
SMALL_PLANE_CHAIN = (
    43,
    (7, 7, 10),
    [
        dict(kernel=(3, 3), activation="RELU6"),
        dict(kernel=(3, 3), padding="VALID", activation="RELU"),
        dict(kernel=(3, 3), padding="VALID"),
    ],
)


def test_depthwise_plane_in_place_on_host(host):
    """The whole-plane path writing over its own input (untiled), and on the band views of the
    tiled plan (a band's first rows below the image's top), against TFLite Micro."""
    seed, shape, layers = PLANE_CHAIN
    model = _rows_chain(seed, shape, layers)
    xs = np.random.default_rng(seed).integers(-128, 128, size=(3, *shape), dtype=np.int8)
    expected = np.asarray(run_tflm(model, xs)).reshape(3, -1)
    untiled = generate_engine(load_tflite(model), dsp=True, max_recompute=None)
    assert untiled.files["model.c"].count("ek_depthwise_conv2d_in_place_dsp(&") >= 2
    np.testing.assert_array_equal(host.run_engine(untiled, xs), expected)
    tiled = generate_engine(load_tflite(model), dsp=True)
    assert "ek_depthwise_conv2d_dsp_band(&" in tiled.files["model.c"]
    np.testing.assert_array_equal(host.run_engine(tiled, xs), expected)


@pytest.mark.toolchain
@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m33"])
def test_depthwise_plane_in_qemu(tmp_path, board):
    """The whole-plane path on the cores (its pair loops and requantization are inline assembly
    there: rows 16 or 32 halfwords apart, stride 1 and 2), in place, transposed and not, on 25x5
    and on small square maps (four planes filled at once), against TFLite Micro."""
    for n, (seed, shape, layers) in enumerate((PLANE_CHAIN, SMALL_PLANE_CHAIN)):
        x = np.random.default_rng(seed).integers(-128, 128, size=(3, *shape), dtype=np.int8)
        model_c = firmware_matches_tflm(
            _rows_chain(seed, shape, layers), board, tmp_path / f"m{n}", x, max_recompute=None
        )
        assert "ek_depthwise_conv2d_in_place_dsp(&" in model_c


conv_cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "h": st.integers(1, 9),
        "w": st.integers(1, 9),
        "c": st.sampled_from([1, 2, 3, 4, 5, 6, 8, 12, 16]),  # 4k: the gather's word path
        "oc": st.integers(1, 9),
        "kernel": st.sampled_from([(3, 3), (2, 2), (1, 3), (3, 1), (5, 5), (1, 1)]),
        "stride": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "dilation": st.tuples(st.integers(1, 2), st.integers(1, 2)),
        "padding": st.sampled_from(["SAME", "VALID"]),
        "activation": st.sampled_from(["NONE", "RELU", "RELU6"]),
        "per_channel": st.booleans(),
        "bias": st.booleans(),
    }
)


@_host_examples(16)
@given(case=conv_cases.filter(_valid))
def test_conv_dsp_on_host(host, case):
    """k x k CONV_2D (1x1 windows go to the pointwise kernels, also checked here)."""
    b = ModelBuilder(np.random.default_rng(case["seed"]))
    x = b.input((1, case["h"], case["w"], case["c"]))
    y = b.conv2d(
        x, case["oc"], case["kernel"], case["stride"], case["padding"], case["dilation"],
        case["activation"], case["per_channel"], case["bias"],
    )  # fmt: skip
    b.outputs = [y]
    dsp = _check_both_engines(host, b, case)
    if case["kernel"] != (1, 1):
        first = case["c"] <= 3 and case["dilation"][1] == 1  # a horizontal dilation keeps the k x k kernel
        kernel = "ek_conv2d_first_dsp(&" if first else "ek_conv2d_dsp(&"
        assert kernel in dsp.files["model.c"]


first_cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "h": st.integers(1, 14),
        "w": st.integers(1, 12),
        "c": st.integers(1, 3),
        "oc": st.integers(1, 18),  # groups of four and tails
        # 1 x N, N x 1, KWS's 10 x 4 (rows of one word), 3 x 3 (rows of 9 over RGB)
        "kernel": st.one_of(
            st.tuples(st.integers(1, 7), st.integers(1, 7)).filter(lambda k: k != (1, 1)),
            st.sampled_from([(10, 4), (3, 3), (1, 5), (4, 1)]),
        ),
        "stride": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "dilation": st.tuples(st.integers(1, 2), st.integers(1, 2)),
        "padding": st.sampled_from(["SAME", "VALID"]),
        "activation": st.sampled_from(["NONE", "RELU", "RELU6"]),
        "per_channel": st.booleans(),
        "bias": st.booleans(),
    }
)


@st.composite
def _first_layer_quantization(draw) -> dict:
    """The input's scale and zero point: the padding's taps hold the zero point, so any."""
    return {"scale": draw(st.sampled_from([0.004, 0.02, 0.5])), "zero_point": draw(st.integers(-128, 127))}


@_host_examples(12)
@given(case=first_cases.filter(_valid), quant=_first_layer_quantization())
def test_first_layer_dsp_on_host(host, case, quant):
    """k x k CONV_2D over 1 to 3 input channels: the first-layer kernel (ek_conv_first_dsp.c),
    every window from a band of its input rows (several bands a row where they pass 1 KB); a
    horizontal dilation keeps the k x k kernel."""
    b = ModelBuilder(np.random.default_rng(case["seed"]))
    x = b.input((1, case["h"], case["w"], case["c"]), **quant)
    y = b.conv2d(
        x, case["oc"], case["kernel"], case["stride"], case["padding"], case["dilation"],
        case["activation"], case["per_channel"], case["bias"],
    )  # fmt: skip
    b.outputs = [y]
    dsp = _check_both_engines(host, b, case)
    assert dsp.files["model.c"].count("ek_conv2d_first_dsp(&") == (case["dilation"][1] == 1)


def _chain(seed: int, size: int, channels: int, layers: list[dict]) -> bytes:
    """A chain of depthwise ops (and k x k convs: "conv" = output channels); each stride-1
    depthwise op's input dies there, so it runs in place."""
    b = ModelBuilder(np.random.default_rng(seed))
    x = b.input((1, size, size, channels))
    for layer in layers:
        layer = dict(layer)
        x = b.conv2d(x, layer.pop("conv"), **layer) if "conv" in layer else b.depthwise(x, **layer)
    b.outputs = [x]
    return b.build()


CHAINS = [
    # a 3x3 stride-2 stem to 7 channels (one group of four and a tail of three), then
    # depthwise ops with borders on every side
    (
        11,
        17,
        3,
        [
            dict(conv=7, kernel=(3, 3), stride=(2, 2), activation="RELU6"),
            dict(kernel=(3, 3), activation="RELU6"),
            dict(kernel=(5, 5), stride=(2, 2)),
            dict(kernel=(3, 3), dilation=(2, 1), activation="RELU"),
            dict(kernel=(2, 3), padding="VALID"),
        ],
    ),
    # 16 channels (four groups), 5x5 in place, a 1x4 window, stride 2 VALID, a 2x3 conv, a 1x1 conv
    (
        12,
        10,
        16,
        [
            dict(kernel=(5, 5)),
            dict(conv=16, kernel=(2, 3), padding="SAME", activation="RELU"),
            dict(kernel=(3, 3), stride=(2, 2), padding="VALID", activation="RELU6"),
            dict(kernel=(1, 4), bias=False),
            dict(kernel=(3, 3), stride=(1, 2), per_channel=False),
            dict(conv=12, kernel=(1, 1), stride=(2, 1)),  # a 1x1 through the k x k kernel
        ],
    ),
    # small maps with per-channel shifts through window3x3_k's assembly (ek_depthwise_dsp.c):
    # 3x3 stride (1, 2) on 5x5, 3 of 15 windows inside, then 3x3 in place on 5x3 (3 of 15)
    (
        13,
        5,
        8,
        [
            dict(kernel=(3, 3), stride=(1, 2), activation="RELU6"),
            dict(conv=12, kernel=(1, 3), padding="SAME"),
            dict(kernel=(3, 3), activation="RELU"),
        ],
    ),
]


@pytest.mark.toolchain
@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m33"])
def test_depthwise_dsp_in_qemu(tmp_path, board):
    kernels = (
        "ek_depthwise_conv2d_dsp(&", "ek_depthwise_conv2d_in_place_dsp(&", "ek_conv2d_dsp(&", "ek_conv2d_first_dsp(&"
    )  # fmt: skip
    for n, (seed, size, channels, layers) in enumerate(CHAINS):
        x = np.random.default_rng(seed).integers(-128, 128, size=(3, size, size, channels), dtype=np.int8)
        model_c = firmware_matches_tflm(_chain(seed, size, channels, layers), board, tmp_path / f"m{n}", x)
        assert sum(model_c.count(k) for k in kernels) == len(layers)
        assert "ek_depthwise_conv2d_in_place_dsp(&" in model_c


FIRST_INPUT = (13, 50, 3)


def _first_layers_model() -> bytes:
    """Convolutions over 1 to 3 input channels, each path of the first-layer kernel: a 7x3
    stride-2 stem over RGB whose rows of the band (7 rows of 153 bytes) pass its 1 KB, so each
    output row takes two bands (6 channels: a group and a tail of 2); a (3, 2) window with
    horizontal dilation over 2 channels (the k x k kernel's); a 3x3 over 3 channels (rows of 9:
    two words and a staged byte each; one group); KWS's 10 x 4 stride 2 over one channel (rows
    of one word, borders on every side; two groups)."""
    b = ModelBuilder(np.random.default_rng(21))
    x = b.input((1, *FIRST_INPUT), scale=0.02, zero_point=-9)
    x = b.conv2d(x, 6, (7, 3), (2, 2), activation="RELU6")
    x = b.conv2d(x, 2, (1, 1))
    x = b.conv2d(x, 5, (3, 2), (1, 1), "SAME", (1, 2), "RELU")
    x = b.conv2d(x, 3, (1, 1))
    x = b.conv2d(x, 4, (3, 3), activation="RELU", out_zp=-7)
    x = b.conv2d(x, 1, (1, 1))
    x = b.conv2d(x, 8, (10, 4), (2, 2))
    b.outputs = [x]
    return b.build()


@pytest.mark.toolchain
@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m33"])
def test_first_layer_dsp_in_qemu(tmp_path, board):
    """The first-layer kernel's assembly on the cores, against TensorFlow Lite Micro."""
    x = np.random.default_rng(5).integers(-128, 128, size=(3, *FIRST_INPUT), dtype=np.int8)
    model_c = firmware_matches_tflm(_first_layers_model(), board, tmp_path / "m", x, max_recompute=None)
    assert model_c.count("ek_conv2d_first_dsp(&") == 3  # kernels, not tiling (max_recompute None)


def test_first_layers_model_on_host(host):
    """The same model through the host engine (the assembly's C twin), against TensorFlow Lite Micro."""
    model = _first_layers_model()
    x = np.random.default_rng(5).integers(-128, 128, size=(2, *FIRST_INPUT), dtype=np.int8)
    engine = generate_engine(load_tflite(model), dsp=True, max_recompute=None)
    assert engine.files["model.c"].count("ek_conv2d_first_dsp(&") == 3
    np.testing.assert_array_equal(host.run_engine(engine, x), np.asarray(run_tflm(model, x)).reshape(2, -1))


def _groups_model() -> bytes:
    """Entries into the k x k kernel's loop of eight steps (steps & 7 = 5, 7, 6, 1, 2, 0, 3;
    windows of 4 and 8 steps run run_groups16 and run_groups32, in place and strided), full
    groups of four and tails of 1 to 3 channels (none but a tail: 3 units), a strided 1x1 over
    an odd pixel count (its pixels widened in one call, 16 bytes an LDM), window rows of 60
    and 12 bytes (widened 8 bytes at a time, a 4-byte remainder first), a dilated window (its
    taps widened as strided pixels), a 1x1 in place over its own input, a fully connected layer,
    each activation clamp."""
    b = ModelBuilder(np.random.default_rng(31))
    x = b.input((1, 9, 10, 20), scale=0.03, zero_point=5)
    x = b.conv2d(x, 16, (1, 1))  # 5 steps, in place over 90 pixels: two calls of run_groups
    x = b.conv2d(x, 16, (1, 1), activation="RELU6")  # 4 steps (run_groups16) in place, 90 pixels
    x = b.conv2d(x, 20, (1, 1), (2, 2))  # 4 steps (run_groups16), 5 groups, 5x5 pixels
    x = b.conv2d(x, 13, (1, 3), activation="RELU")  # 15 steps, a tail of 1
    x = b.conv2d(x, 4, (3, 3), activation="RELU6")  # 30 steps over an unaligned depth
    x = b.conv2d(x, 8, (3, 3), out_zp=-7)  # 9 steps
    x = b.conv2d(x, 32, (3, 3), dilation=(2, 2))  # 18 steps
    x = b.conv2d(x, 32, (1, 1), activation="RELU6")  # 8 steps (run_groups32), 25 pixels
    x = b.conv2d(x, 12, (3, 3), activation="RELU")  # 72 steps: whole passes
    x = b.fully_connected(b.reshape(x, (1, 300)), 3, activation="RELU")  # 75 steps, a tail of 3
    b.outputs = [x]
    return b.build()


def _groups_calls(model_c: str) -> None:
    assert model_c.count("ek_conv2d_dsp(&") == 8 and model_c.count("ek_conv2d_dsp_in_place(&") == 2


@pytest.mark.toolchain
@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m33"])
def test_conv_groups_assembly_in_qemu(tmp_path, board):
    """The k x k kernel's assembly (ek_conv_dsp.c run_groups) on the cores, against TensorFlow Lite
    Micro: the host tests run its C twin."""
    x = np.random.default_rng(6).integers(-128, 128, size=(3, 9, 10, 20), dtype=np.int8)
    model_c = firmware_matches_tflm(_groups_model(), board, tmp_path / "m", x, max_recompute=None)
    _groups_calls(model_c)  # kernels, not tiling (max_recompute None)


def test_conv_groups_model_on_host(host):
    """The same model through the host engine's C twin of the assembly, against the simulator."""
    b_model = _groups_model()
    graph = load_tflite(b_model)
    x = np.random.default_rng(6).integers(-128, 128, size=(4, 9, 10, 20), dtype=np.int8)
    engine = generate_engine(graph, dsp=True, max_recompute=None)
    _groups_calls(engine.files["model.c"])
    np.testing.assert_array_equal(host.run_engine(engine, x), np.asarray(run_tflm(b_model, x)).reshape(4, -1))


def test_depthwise_layout_round_trips():
    w = np.random.default_rng(0).integers(-128, 128, size=(1, 3, 2, 7)).astype(np.int8)
    words = dsp_layout.depthwise_weights(w).reshape(2, 6)  # groups, taps
    channels = words.view(np.int8).reshape(2, 6, 4).transpose(1, 0, 2).reshape(6, 8)  # little-endian
    np.testing.assert_array_equal(channels[:, :7], w.reshape(6, 7))
    assert not channels[:, 7].any()


def test_conv_layout_round_trips():
    w = np.random.default_rng(1).integers(-128, 128, size=(5, 3, 2, 3)).astype(np.int8)  # rows of 6
    words = dsp_layout.conv_weights(w).view(np.uint32).reshape(2, 6, 2, 4)  # group, step, word, channel
    halves = np.stack([words & 0xFFFF, words >> 16], axis=-1).astype(np.uint16).view(np.int16)
    # value k = 4 step + 2 half + word; each window row padded from 6 to 8 values
    per_channel = halves.transpose(0, 3, 1, 4, 2).reshape(8, 3, 8)  # output channel, row, position
    np.testing.assert_array_equal(per_channel[:5, :, :6], 2 * w.reshape(5, 3, 6).astype(np.int16))
    assert not per_channel[5:].any() and not per_channel[:, :, 6:].any()
    assert dsp_layout.conv_window(3, 2, 3) == 24 and dsp_layout.conv_window(3, 3, 16) == 144


def test_depthwise_falls_back_to_the_plain_kernel():
    b = ModelBuilder(np.random.default_rng(3))
    x = b.input((1, 5, 5, 4))
    y = b.depthwise(x, (3, 3), depth_multiplier=2)  # multiplier 2: plain kernel
    b.outputs = [y]
    engine = generate_engine(load_tflite(b.build()), dsp=True)
    assert _dsp_calls(engine) == 0 and "ek_depthwise_conv2d(&" in engine.files["model.c"]
    # an accumulator that could reach 2^30, a window larger than the k x k kernel's buffer
    w = np.full((1, 3, 3, 4), 127, np.int8)
    assert dsp_layout.depthwise_layout(w, np.zeros(4), 1, np.full(4, -3), 0) is not None
    assert dsp_layout.depthwise_layout(w, np.full(4, 2**30 - 1000), 1, np.full(4, -3), 0) is None
    big = np.ones((2, 3, 3, 129), np.int8)  # 1161 window values
    assert dsp_layout.conv_layout(big, np.zeros(2), np.full(2, -3), 0) is None
    assert dsp_layout.conv_layout(big[..., :128], np.zeros(2), np.full(2, -3), 0) is not None
    # the requantization's conditions
    assert dsp_layout.requant_ok(np.array([-1, -5]), np.array([2**30 - 1]))
    assert not dsp_layout.requant_ok(np.array([-1, 0]), np.array([10]))
    assert not dsp_layout.requant_ok(np.array([-3]), np.array([2**30]))
    bound = dsp_layout.accumulator_bound(np.array([[1, -2]]), np.array([-5]), in_offset=128)
    assert bound.tolist() == [5 + 3 * 255]


def test_first_layer_kernel_choice_and_bias():
    """1 to 3 input channels and a window of at most 256 values take the first-layer kernel,
    with the input offset folded into its (doubled) bias; deeper inputs, larger windows and a
    horizontal dilation the k x k kernel with the op's own bias."""
    rng = np.random.default_rng(4)
    bias, shift = np.array([5, -7]), np.full(2, -3)
    for shape, kernel in [
        ((2, 3, 3, 3), dsp_layout.FIRST_KERNEL),
        ((2, 1, 2, 1), dsp_layout.FIRST_KERNEL),
        ((2, 3, 3, 4), dsp_layout.CONV_KERNEL),
        ((2, 9, 10, 3), dsp_layout.CONV_KERNEL),  # 270 window values
    ]:
        w = rng.integers(-128, 128, size=shape).astype(np.int8)
        layout = dsp_layout.conv_layout(w, bias, shift, in_offset=17)
        assert layout is not None and layout.kernel == kernel
        sums = w.reshape(2, -1).astype(np.int64).sum(axis=1)
        folded = bias + 17 * sums if kernel == dsp_layout.FIRST_KERNEL else bias
        np.testing.assert_array_equal(layout.bias, 2 * folded)
    dilated = dsp_layout.conv_layout(rng.integers(-128, 128, size=(2, 3, 3, 3)), bias, shift, 17, dil_w=2)
    assert dilated is not None and dilated.kernel == dsp_layout.CONV_KERNEL  # rows are no runs of bytes


def test_dsp_path_keeps_the_memory_plan():
    """The DSP kernels honour the planner's in-place contract: the same arena, the same places
    and scratch ring as the plain engine, depthwise ops still in place."""
    for seed, size, channels, layers in CHAINS:
        graph = load_tflite(_chain(seed, size, channels, layers))
        plain, dsp = generate_engine(graph), generate_engine(graph, dsp=True)
        assert dsp.arena_bytes == plain.arena_bytes and dsp.model_ram_bytes == plain.model_ram_bytes
        assert dsp.plan.scratch == plain.plan.scratch and dsp.plan.scratch
        assert plain.files["model.c"].count("ek_depthwise_conv2d_in_place(&") == dsp.files["model.c"].count(
            "ek_depthwise_conv2d_in_place_dsp(&"
        )


def test_widened_1x1_weights_stay_within_the_flash_budget(host):
    """Widened 1x1 weights cost twice their flash: a board short of flash passes what it has
    left, the layer with the most output pixels per weight is widened first, and the engine
    stays bit-exact with any choice (a 1 MB board ran out of flash on an EfficientNet before)."""
    b = ModelBuilder(np.random.default_rng(7))
    x = b.input((1, 8, 8, 16), scale=0.05, zero_point=3)
    y = b.conv2d(x, 32, (1, 1), activation="RELU6")  # 512 weights over 64 pixels
    y = b.conv2d(y, 32, (3, 3), (2, 2))
    y = b.conv2d(y, 32, (1, 1))  # 1024 weights over 16 pixels
    b.outputs = [y]
    model = b.build()
    graph = load_tflite(model)
    # Untiled (max_recompute None): a tiled segment's layers run their band views, which take no widened weights.
    every = generate_engine(graph, dsp=True, max_recompute=None)
    none = generate_engine(graph, dsp=True, widen_budget=0, max_recompute=None)
    first = generate_engine(graph, dsp=True, widen_budget=1000, max_recompute=None)
    assert none.weights_bytes < first.weights_bytes < every.weights_bytes
    assert first.weights_bytes - none.weights_bytes <= 1000 + 64  # the records of 32 channels
    assert every.files == generate_engine(graph, dsp=True, widen_budget=10**9, max_recompute=None).files
    x_in = np.random.default_rng(1).integers(-128, 128, size=(3, 8, 8, 16)).astype(np.int8)
    expected = sim_run(graph, x_in).reshape(3, -1)
    for engine in (none, first, every):
        np.testing.assert_array_equal(host.run_engine(engine, x_in), expected)


def test_widening_never_spends_more_flash_than_its_budget():
    """The widened layers' weights and records together stay within the budget, whatever it is
    (counting the doubled weights alone left out the k x k kernel's 16-word records, and fitted
    phi -1 firmwares overran the application's flash reserve by a kilobyte)."""
    b = ModelBuilder(np.random.default_rng(11))
    x = b.input((1, 6, 6, 16), scale=0.05, zero_point=3)
    y = b.conv2d(x, 36, (1, 1), activation="RELU6")  # depth 16, 36 units
    y = b.conv2d(y, 20, (1, 1))  # depth 36, 20 units: a group padded
    y = b.conv2d(y, 64, (1, 1), (2, 2))
    b.outputs = [b.fully_connected(b.reshape(y, (1, 3 * 3 * 64)), 10)]
    graph = load_tflite(b.build())
    none = generate_engine(graph, dsp=True, widen_budget=0, max_recompute=None)
    every = generate_engine(graph, dsp=True, widen_budget=10**9, max_recompute=None)
    assert every.weights_bytes > none.weights_bytes
    for budget in range(0, every.weights_bytes - none.weights_bytes + 256, 128):
        engine = generate_engine(graph, dsp=True, widen_budget=budget, max_recompute=None)
        assert engine.weights_bytes - none.weights_bytes <= budget, budget


batch_cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "hw": st.sampled_from([(9, 9), (5, 7), (3, 1)]),  # 81 pixels: past a 1x1 16-deep call's 72
        "c": st.sampled_from([16, 24, 32, 48]),
        "oc": st.sampled_from([4, 8, 12, 7, 10]),  # whole groups (several pixels a call), tails
        "kernel": st.sampled_from([(1, 1), (3, 3)]),
        "stride": st.sampled_from([1, 2]),
        "activation": st.sampled_from(["NONE", "RELU", "RELU6"]),
        "out_zp": st.integers(-128, 127),
        # the default, then multipliers of about 2^-16 and 2^-22 (shifts s = 15 .. 21, the
        # requantization constant near 2^30)
        "out_scale": st.sampled_from([None, 50.0, 1000.0]),
    }
)


@_host_examples(8)
@given(case=batch_cases)
def test_conv_dsp_pixel_batches_on_host(host, case):
    """ek_conv2d_dsp's windows gathered several pixels a call and its SMMLAR requantization
    (ek_conv_dsp.c run_groups, the C twin) against TensorFlow Lite Micro: depths 16 to 48, odd
    pixel counts, stride 2, clamped activations, output zero points and small multipliers (a
    1x1 with no more output than input channels runs in place, a few pixels a call)."""
    b = ModelBuilder(np.random.default_rng(case["seed"]))
    x = b.input((1, *case["hw"], case["c"]), scale=0.05, zero_point=3)
    y = b.conv2d(
        x, case["oc"], case["kernel"], (case["stride"],) * 2, activation=case["activation"],
        out_scale=case["out_scale"], out_zp=case["out_zp"],
    )  # fmt: skip
    b.outputs = [y]
    model = b.build()
    engine = generate_engine(load_tflite(model), dsp=True, max_recompute=None)
    assert (
        "ek_conv2d_dsp(&" in engine.files["model.c"] or "ek_conv2d_dsp_in_place(&" in engine.files["model.c"]
    )
    xs = np.random.default_rng(case["seed"] + 1).integers(
        -128, 128, size=(3, *case["hw"], case["c"]), dtype=np.int8
    )
    np.testing.assert_array_equal(host.run_engine(engine, xs), np.asarray(run_tflm(model, xs)).reshape(3, -1))


def test_conv_layout_keeps_the_requantization_constant_within_int32():
    """The rounding constant (1 + 2 * (out_offset - act_min)) << s joins SMMULR's result in one
    int32: a shift where it would not fit keeps the plain kernel; the narrow and first-layer
    kernels keep their 12-word records (the shared constant), ek_conv2d_dsp takes 16."""
    w = np.ones((4, 1, 1, 16), np.int8)
    fits = dsp_layout.conv_layout(w, np.zeros(4), np.full(4, -23), 0, np.full(4, 2**30), out_offset=90)
    assert fits is not None and fits.kernel == "ek_conv2d_dsp" and len(fits.records) == 16
    k = fits.records[5]  # the first channel's constant, after four biases and its multiplier
    assert k == (1 + 2 * (90 + 128)) << 22  # s = -shift - 1
    assert (
        dsp_layout.conv_layout(w, np.zeros(4), np.full(4, -24), 0, np.full(4, 2**30), out_offset=90) is None
    )
    narrow = dsp_layout.conv_layout(
        w[..., :8], np.zeros(4), np.full(4, -24), 0, np.full(4, 2**30), out_offset=90
    )
    assert narrow is not None and narrow.kernel == "ek_conv2d_1x1_narrow_dsp" and len(narrow.records) == 12


def _batches_model() -> bytes:
    """1x1 16 -> 20 over 81 pixels (a call of 72, then 9), with a large output zero point and a
    shift of -21 or -22 (the constant near 2^30), then a clamped 3x3 with whole groups."""
    b = ModelBuilder(np.random.default_rng(12))
    x = b.input((1, 9, 9, 16), scale=0.05, zero_point=3)
    y = b.conv2d(x, 20, (1, 1), out_scale=1000.0, out_zp=90)
    y = b.conv2d(y, 12, (3, 3), (2, 2), activation="RELU6")
    b.outputs = [y]
    return b.build()


@pytest.mark.toolchain
def test_conv_dsp_pixel_batches_in_qemu(tmp_path):
    """The same on qemu-m4 (the assembly: SMMLAR, several pixels a call) against TensorFlow Lite Micro."""
    x = np.random.default_rng(4).integers(-128, 128, size=(3, 9, 9, 16), dtype=np.int8)
    model_c = firmware_matches_tflm(_batches_model(), "qemu-m4", tmp_path / "m", x, max_recompute=None)
    assert model_c.count("ek_conv2d_dsp(&") == 2
