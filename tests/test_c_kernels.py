"""Each C kernel of the native engine against the TFLite Micro interpreter, element by element.

Single-op (or two-op) int8 models with randomised shapes, strides, paddings and quantization
are built with the test builder, turned into C by ``generate_engine``, compiled for the host
with ``gcc -fsanitize=address,undefined -Wall -Wextra -Werror -std=c99`` and run on random
inputs. The outputs must equal TFLite Micro's (the oracle) and the simulator's.
"""

from __future__ import annotations

import numpy as np
import pytest
from host_engine import HostRuntime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.graph import load_tflite
from mcu_effnet.graph.planner import plan_arena
from mcu_effnet.sim import run as sim_run

pytestmark = pytest.mark.filterwarnings("ignore")

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
CONV_SETTINGS = settings(SETTINGS, max_examples=25)  # interior and border windows, dilations
ACTIVATIONS = st.sampled_from(["NONE", "RELU", "RELU6"])


def check(host: HostRuntime, model_bytes: bytes, seed: int, n: int = 8) -> None:
    graph = load_tflite(model_bytes)
    shape = graph.tensors[graph.inputs[0]].shape
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(n, *shape[1:]), dtype=np.int8)
    expected = np.asarray(run_tflm(model_bytes, x)).reshape(n, -1)
    got = host.run_engine(generate_engine(graph), x)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.asarray(sim_run(graph, x)).reshape(n, -1), expected)


def _builder(seed: int) -> ModelBuilder:
    return ModelBuilder(np.random.default_rng(seed))


def _out_size(size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    eff = (k - 1) * dilation + 1
    return (size + stride - 1) // stride if padding == "SAME" else (size - eff + stride) // stride


conv_cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**16),
        "h": st.integers(1, 9),
        "w": st.integers(1, 9),
        "c": st.integers(1, 6),
        "oc": st.integers(1, 6),
        "kernel": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "stride": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "dilation": st.tuples(st.integers(1, 2), st.integers(1, 2)),
        "padding": st.sampled_from(["SAME", "VALID"]),
        "activation": ACTIVATIONS,
        "per_channel": st.booleans(),
        "bias": st.booleans(),
        "multiplier": st.integers(1, 3),
    }
)


def _valid(case: dict) -> bool:
    return all(
        _out_size(size, k, s, d, case["padding"]) >= 1
        for size, k, s, d in zip(
            (case["h"], case["w"]), case["kernel"], case["stride"], case["dilation"], strict=True
        )
    )


@CONV_SETTINGS
@given(case=conv_cases.filter(_valid))
def test_conv2d(host, case):
    b = _builder(case["seed"])
    x = b.input((1, case["h"], case["w"], case["c"]))
    y = b.conv2d(
        x,
        case["oc"],
        case["kernel"],
        case["stride"],
        case["padding"],
        case["dilation"],
        case["activation"],
        case["per_channel"],
        case["bias"],
    )
    b.outputs = [y]
    check(host, b.build(), case["seed"])


@CONV_SETTINGS
@given(case=conv_cases.filter(_valid))
def test_depthwise_conv2d(host, case):
    b = _builder(case["seed"])
    x = b.input((1, case["h"], case["w"], case["c"]))
    y = b.depthwise(
        x,
        case["kernel"],
        case["stride"],
        case["padding"],
        case["dilation"],
        case["multiplier"],
        case["activation"],
        case["per_channel"],
        case["bias"],
    )
    b.outputs = [y]
    check(host, b.build(), case["seed"])


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    rows=st.integers(1, 3),
    depth=st.integers(1, 48),
    units=st.integers(1, 12),
    activation=ACTIVATIONS,
    per_channel=st.booleans(),
)
def test_fully_connected(host, seed, rows, depth, units, activation, per_channel):
    b = _builder(seed)
    shape = (1, depth) if rows == 1 else (1, rows, depth)
    x = b.input(shape)
    b.outputs = [b.fully_connected(x, units, activation, per_channel, keep_num_dims=rows > 1)]
    check(host, b.build(), seed)


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    hwc=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 6)),
    other=st.sampled_from(["same", "channels", "rank1", "row", "column", "scalar"]),
    const_first=st.booleans(),
    kind=st.sampled_from(["ADD", "MUL"]),
    activation=ACTIVATIONS,
)
def test_add_mul_with_a_constant(host, seed, hwc, other, const_first, kind, activation):
    h, w, c = hwc
    b = _builder(seed)
    x = b.input((1, h, w, c))
    shape = {
        "same": (1, h, w, c),
        "channels": (1, 1, 1, c),
        "rank1": (c,),
        "row": (1, h, 1, c),
        "column": (1, 1, w, 1),
        "scalar": (1,),
    }[other]
    rng = np.random.default_rng(seed + 1)
    k = b.add_tensor(
        "k",
        shape,
        "int8",
        float(rng.uniform(0.005, 0.05)),
        int(rng.integers(-40, 41)),
        data=rng.integers(-128, 128, size=shape),
    )
    a, bb = (k, x) if const_first else (x, k)
    b.outputs = [b.add(a, bb, activation, kind)]
    check(host, b.build(), seed)


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    hwc=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 8)),
    kind=st.sampled_from(["ADD", "MUL"]),
    activation=ACTIVATIONS,
)
def test_add_mul_of_activations_with_broadcast(host, seed, hwc, kind, activation):
    """Squeeze-excitation's shape: x [1,H,W,C] with its own MEAN [1,1,1,C]; also x with itself."""
    b = _builder(seed)
    x = b.input((1, *hwc))
    pooled = b.mean(x, (1, 2), keep_dims=True)
    y = b.add(x, pooled, activation, kind)
    b.outputs = [b.add(y, y, "NONE", "ADD")]
    check(host, b.build(), seed)


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    scales=st.tuples(st.floats(1e-3, 1.0), st.floats(1e-3, 1.0), st.floats(1e-3, 4.0)),
    zero_points=st.tuples(st.integers(-128, 127), st.integers(-128, 127), st.integers(-128, 127)),
    activation=ACTIVATIONS,
)
def test_add_of_two_activations_of_one_shape(host, seed, scales, zero_points, activation):
    """ADD without broadcasting takes the kernel's shortcut (one rounded high multiply per
    scaling): any pair of input scales and zero points, output scales from far finer to coarser,
    over every int8 value of the first input."""
    b = _builder(seed)
    x = b.input((1, 16, 16, 2), scale=scales[0], zero_point=zero_points[0])
    y = b.activation("requantized", (1, 16, 16, 2), scales[1], zero_points[1])
    b.add_op("QUANTIZE", [x], [y])
    out = b.activation("sum", (1, 16, 16, 2), scales[2] * (scales[0] + scales[1]), zero_points[2])
    b.add_op("ADD", [x, y], [out], fused_activation_function=activation)
    b.outputs = [out]
    model = b.build()
    graph = load_tflite(model)
    x_all = np.arange(-128, 128, dtype=np.int8).repeat(2).reshape(1, 16, 16, 2)
    x_all[..., 1] = np.roll(x_all[..., 1], 37)
    xs = np.concatenate(
        [x_all, np.random.default_rng(seed).integers(-128, 128, (3, 16, 16, 2), dtype=np.int8)]
    )
    expected = np.asarray(run_tflm(model, xs)).reshape(len(xs), -1)
    np.testing.assert_array_equal(host.run_engine(generate_engine(graph), xs), expected)


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    hwc=st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 8)),
    axes=st.sampled_from([(1, 2), (1, 2), (2,), (3,), (1,)]),
    keep_dims=st.booleans(),
    out_scale_factor=st.floats(0.1, 3.0),
)
def test_mean(host, seed, hwc, axes, keep_dims, out_scale_factor):
    b = _builder(seed)
    x = b.input((1, *hwc))
    b.outputs = [b.mean(x, axes, keep_dims, out_scale=b.qparams(x)[0] * out_scale_factor)]
    check(host, b.build(), seed)


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    hwc=st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 5)),
    kind=st.sampled_from(["AVERAGE_POOL_2D", "MAX_POOL_2D"]),
    filt=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.sampled_from(["SAME", "VALID"]),
    activation=ACTIVATIONS,
)
def test_pooling(host, seed, hwc, kind, filt, stride, padding, activation):
    h, w, _ = hwc
    if padding == "VALID" and (filt[0] > h or filt[1] > w):
        filt = (min(filt[0], h), min(filt[1], w))
    b = _builder(seed)
    x = b.input((1, *hwc))
    b.outputs = [b.pool(kind, x, filt, stride, padding, activation)]
    check(host, b.build(), seed)


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    hwc=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5)),
    pads=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=3, max_size=3),
)
def test_pad(host, seed, hwc, pads):
    b = _builder(seed)
    x = b.input((1, *hwc))
    b.outputs = [b.pad(x, [(0, 0), *pads])]
    check(host, b.build(), seed)


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    shape=st.sampled_from([(1, 1), (1, 5), (1, 10), (1, 33), (1, 3, 4), (1, 2, 3, 7)]),
    beta_factor=st.floats(0.3, 4.0),
)
def test_softmax(host, seed, shape, beta_factor):
    b = _builder(seed)
    x = b.input(shape)
    beta = 4.0 / (64.0 * b.qparams(x)[0]) * beta_factor
    b.outputs = [b.softmax(x, beta)]
    check(host, b.build(), seed)


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    kind=st.sampled_from(["LOGISTIC", "HARD_SWISH", "RELU", "RELU6", "QUANTIZE"]),
    in_scale=st.floats(0.002, 0.3),
    in_zp=st.integers(-128, 127),
    out_scale_factor=st.floats(0.05, 3.0),
    out_zp=st.integers(-128, 127),
)
def test_elementwise_activations(host, seed, kind, in_scale, in_zp, out_scale_factor, out_zp):
    b = _builder(seed)
    x = b.input((1, 4, 5, 16), scale=in_scale, zero_point=in_zp)  # 320 inputs
    if kind == "LOGISTIC":
        y = b.logistic(x)
    elif kind == "RELU6":
        y = b.unary("RELU6", x)
    else:
        y = b.unary(kind, x, out_scale=in_scale * out_scale_factor, out_zp=out_zp)
    b.outputs = [y]
    check(host, b.build(), seed, n=4)


@pytest.mark.parametrize("repeat", [1, 3], ids=["direct", "table"])  # > 256 elements: a table first
def test_activations_on_every_input_value(host, repeat):
    """Each element-wise kernel on all 256 int8 values, for a few quantizations."""
    every = np.tile(np.arange(-128, 128, dtype=np.int8), repeat).reshape(1, repeat, 256)
    for seed, (in_scale, in_zp, factor, out_zp) in enumerate(
        [(0.01, 0, 0.7, -90), (0.1, -128, 1.2, 5), (0.004, 127, 0.06, -128), (0.25, 3, 2.5, 100)]
    ):
        for kind in ("LOGISTIC", "HARD_SWISH", "RELU", "RELU6", "QUANTIZE"):
            b = _builder(seed)
            x = b.input((1, repeat, 256), scale=in_scale, zero_point=in_zp)
            if kind == "LOGISTIC":
                y = b.logistic(x)
            elif kind == "RELU6":
                y = b.unary("RELU6", x)
            else:
                y = b.unary(kind, x, out_scale=in_scale * factor, out_zp=out_zp)
            b.outputs = [y]
            model = b.build()
            expected = np.asarray(run_tflm(model, every)).reshape(1, -1)
            np.testing.assert_array_equal(host.run(model, every), expected, err_msg=kind)


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    hwc=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
    axis=st.sampled_from([1, 2, 3, -1]),
    extra=st.integers(1, 4),
)
def test_concatenation(host, seed, hwc, axis, extra):
    b = _builder(seed)
    x = b.input((1, *hwc))
    scale, zp = b.qparams(x)
    shape = list((1, *hwc))
    shape[axis] = extra
    rng = np.random.default_rng(seed)
    k = b.add_tensor("k", tuple(shape), "int8", scale, zp, data=rng.integers(-128, 128, size=shape))
    out_shape = list((1, *hwc))
    out_shape[axis] += extra + hwc[axis % 4 - 1]
    y = b.activation("concat", tuple(out_shape), scale, zp)
    b.add_op("CONCATENATION", [x, k, x], [y], axis=axis, fused_activation_function="NONE")
    b.outputs = [y]
    check(host, b.build(), seed)


def test_reshape_aliases_or_copies_between_caller_buffers(host):
    b = _builder(3)
    x = b.input((1, 2, 3, 4))
    b.outputs = [b.reshape(x, (1, 24))]
    model = b.build()
    graph = load_tflite(model)
    inputs = np.random.default_rng(3).integers(-128, 128, size=(4, 2, 3, 4), dtype=np.int8)
    engine = generate_engine(graph)  # input and output in the arena: one buffer, no kernel
    assert engine.plan.aliased_ops == [0] and "aliased: no code" in engine.files["model.c"]
    np.testing.assert_array_equal(host.run_engine(engine, inputs), inputs.reshape(4, -1))
    engine = generate_engine(graph, plan_arena(graph, io_in_arena=False))  # the caller's buffers
    assert engine.plan.aliased_ops == [] and "ek_copy(24, input, output);" in engine.files["model.c"]
    assert engine.arena_bytes == 0 and "arena[" not in engine.files["model.c"]
    np.testing.assert_array_equal(host.run_engine(engine, inputs), inputs.reshape(4, -1))

    b = _builder(4)
    x = b.input((1, 4, 4, 3))
    y = b.conv2d(x, 4, (1, 1))
    r = b.reshape(y, (1, 64))
    b.outputs = [b.fully_connected(r, 5)]
    model = b.build()
    engine = generate_engine(load_tflite(model))
    assert engine.plan.aliased_ops == [1] and engine.files["model.c"].count("ek_copy") == 2  # in and out
    check(host, model, 4)


def test_engine_with_the_callers_buffers(host):
    """The plan that keeps the input and output out of the arena runs bit-exact too."""
    from tflite_builder import random_mbconv

    model = random_mbconv(np.random.default_rng(5))
    graph = load_tflite(model)
    engine = generate_engine(graph, plan_arena(graph, io_in_arena=False))
    x = np.random.default_rng(5).integers(-128, 128, size=(16, *graph.tensors[0].shape[1:]), dtype=np.int8)
    assert "model_input_buffer" not in engine.files["model.h"]
    np.testing.assert_array_equal(host.run_engine(engine, x), np.asarray(run_tflm(model, x)).reshape(16, -1))


@pytest.mark.parametrize(
    "hw,kernel,stride,channels",
    [
        ((5, 5), (5, 5), (2, 2), 70),
        ((1, 1), (5, 5), (1, 1), 33),
        ((2, 3), (3, 3), (1, 1), 64),
        ((7, 6), (3, 3), (2, 1), 96),
    ],
)
def test_depthwise_wide_channels(host, hw, kernel, stride, channels):
    """Channel counts beyond the kernel's block of accumulators, maps smaller than the filter."""
    b = _builder(channels)
    x = b.input((1, *hw, channels))
    b.outputs = [b.depthwise(x, kernel, stride, "SAME", activation="RELU6")]
    check(host, b.build(), channels)


@pytest.mark.parametrize(
    "in_c,kernel,dilation", [(45, (1, 1), (1, 1)), (19, (3, 3), (1, 1)), (7, (3, 2), (2, 2))]
)
def test_conv2d_long_rows(host, in_c, kernel, dilation):
    b = _builder(in_c)
    x = b.input((1, 7, 6, in_c))
    b.outputs = [b.conv2d(x, 9, kernel, (1, 1), "SAME", dilation, "RELU")]
    check(host, b.build(), in_c)


@pytest.mark.parametrize(
    "h,w,in_c,out_c", [(3, 3, 5, 7), (2, 2, 16, 8), (1, 1, 3, 1), (5, 4, 1, 2), (1, 3, 9, 3)]
)
def test_pointwise_conv_blocks(host, h, w, in_c, out_c):
    """1x1 stride-1 convs (the blocked matrix-product path): odd pixel and channel counts."""
    b = _builder(h * 100 + out_c)
    x = b.input((1, h, w, in_c))
    b.outputs = [b.conv2d(x, out_c, (1, 1), activation="RELU6", per_channel=out_c % 2 == 1)]
    check(host, b.build(), h)
