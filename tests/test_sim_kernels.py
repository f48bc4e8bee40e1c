"""Every int8 kernel of ours against the TFLite Micro interpreter, element for element.

Each case builds a one-op (or two-op) model with random shapes, strides, paddings,
dilations, per-channel scales, zero points and fused activations drawn from a seeded
Generator, runs a random int8 batch through both TFLite Micro and ``mcu_effnet.sim.run``,
and requires identical outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run

CASES = 24  # per op; each case is one model and a batch of BATCH samples
BATCH = 6
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def _check(b: ModelBuilder, out: int, rng: np.random.Generator, batch: int = BATCH) -> None:
    b.outputs = [out]
    model = b.build()
    graph = load_tflite(model)
    shape = graph.tensors[graph.inputs[0]].shape
    x = rng.integers(-128, 128, size=(batch, *shape[1:])).astype(np.int8)
    expected = run_tflm(model, x)
    got = run(graph, x)
    assert got.dtype == np.int8 and got.shape == expected.shape
    diff = np.flatnonzero(got != expected)
    assert diff.size == 0, (
        f"{diff.size}/{got.size} elements differ; first at {np.unravel_index(diff[0], got.shape)}: "
        f"sim {got.flat[diff[0]]} vs tflm {expected.flat[diff[0]]}"
    )
    # A test that only ever sees saturated outputs would prove little: require some spread.
    assert len(np.unique(expected)) > 1 or expected.size <= 2


def _scale_jitter(rng: np.random.Generator) -> float:
    return float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))


def _window(rng: np.random.Generator, size: int, dilated: bool) -> tuple[int, int, int, str]:
    """Kernel, stride, dilation and padding that give at least one output along an axis of `size`."""
    while True:
        k = int(rng.integers(1, 5))
        s = int(rng.integers(1, 4))
        d = int(rng.integers(1, 4)) if dilated and rng.random() < 0.4 else 1
        padding = "SAME" if rng.random() < 0.5 else "VALID"
        if padding == "SAME" or (k - 1) * d + 1 <= size:
            return k, s, d, padding


@pytest.mark.parametrize("seed", range(CASES))
def test_conv_2d(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    h, w = (int(v) for v in rng.integers(1, 13, size=2))
    kh, sh, dh, padding = _window(rng, h, True)
    kw, sw, dw, _ = _window(rng, w, True)
    if padding == "VALID" and ((kw - 1) * dw + 1 > w):
        padding = "SAME"
    b = ModelBuilder(rng)
    x = b.input((1, h, w, int(rng.integers(1, 9))))
    y = b.conv2d(
        x,
        int(rng.integers(1, 9)),
        (kh, kw),
        (sh, sw),
        padding,
        (dh, dw),
        activation=ACTIVATIONS[seed % 4],
        per_channel=bool(rng.random() < 0.7),
        bias=bool(rng.random() < 0.8),
    )
    _set_output_quant(b, y, rng)
    _check(b, y, rng)


@pytest.mark.parametrize("seed", range(CASES))
def test_depthwise_conv_2d(seed: int) -> None:
    rng = np.random.default_rng(2000 + seed)
    h, w = (int(v) for v in rng.integers(1, 13, size=2))
    kh, sh, dh, padding = _window(rng, h, True)
    kw, sw, dw, _ = _window(rng, w, True)
    if padding == "VALID" and ((kw - 1) * dw + 1 > w):
        padding = "SAME"
    b = ModelBuilder(rng)
    x = b.input((1, h, w, int(rng.integers(1, 9))))
    y = b.depthwise(
        x,
        (kh, kw),
        (sh, sw),
        padding,
        (dh, dw),
        depth_multiplier=int(rng.integers(1, 4)),
        activation=ACTIVATIONS[seed % 4],
        per_channel=bool(rng.random() < 0.7),
        bias=bool(rng.random() < 0.8),
    )
    _set_output_quant(b, y, rng)
    _check(b, y, rng)


def _set_output_quant(b: ModelBuilder, y: int, rng: np.random.Generator, zp: bool = True) -> None:
    """Jitters the output scale (and zero point) the builder chose, so clamps and rounding vary."""
    scale = float(b.info[y].scale[0]) * _scale_jitter(rng)
    b.tensors[y].quantization.scale = [scale]
    b.info[y].scale[:] = scale
    if zp:
        z = int(rng.integers(-128, 128))
        b.tensors[y].quantization.zeroPoint = [z]
        b.info[y].zero_point[:] = z


@pytest.mark.parametrize("seed", range(CASES))
def test_fully_connected(seed: int) -> None:
    rng = np.random.default_rng(3000 + seed)
    b = ModelBuilder(rng)
    depth = int(rng.integers(1, 40))
    form = seed % 3
    if form == 0:
        x = b.input((1, depth))
    elif form == 1:
        x = b.input((1, 1, 1, depth))
    else:
        x = b.input((1, int(rng.integers(1, 4)), depth))
    y = b.fully_connected(
        x,
        int(rng.integers(1, 12)),
        activation=ACTIVATIONS[(seed // 3) % 4],
        per_channel=bool(rng.random() < 0.5),
        keep_num_dims=form == 2,
    )
    _set_output_quant(b, y, rng)
    _check(b, y, rng)


def _broadcast_pair(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    h, w, c = (int(v) for v in rng.integers(1, 7, size=3))
    full = (1, h, w, c)
    choice = int(rng.integers(0, 6))
    # (1, c) has a lower rank: in the file it lines up with the last two axes, (w, c).
    other = [full, (1, 1, 1, c), (1, h, w, 1), (1, h, 1, c), (1, 1, w, 1), (1, c)][choice]
    return (full, other) if rng.random() < 0.5 else (other, full)


@pytest.mark.parametrize("kind", ["ADD", "MUL"])
@pytest.mark.parametrize("seed", range(CASES))
def test_add_mul(kind: str, seed: int) -> None:
    rng = np.random.default_rng(4000 + seed + (0 if kind == "ADD" else 500))
    b = ModelBuilder(rng)
    shape_a, shape_b = _broadcast_pair(rng)
    a = b.input(shape_a)
    if seed % 3 == 2:  # second operand a constant, as SE gates and scalars are in real models
        const = rng.integers(-128, 128, size=shape_b).astype(np.int8)
        c = b.add_tensor(
            "const", shape_b, "int8", float(rng.uniform(0.005, 0.05)), int(rng.integers(-50, 50)), data=const
        )
    else:
        c = b.input(shape_b)
    y = b.add(a, c, activation=ACTIVATIONS[seed % 4], kind=kind)
    _set_output_quant(b, y, rng)
    b.outputs = [y]
    model = b.build()
    graph = load_tflite(model)
    xs = [
        rng.integers(-128, 128, size=(BATCH, *graph.tensors[i].shape[1:])).astype(np.int8)
        for i in graph.inputs
    ]
    expected = run_tflm(model, xs if len(xs) > 1 else xs[0])
    got = run(graph, xs)
    np.testing.assert_array_equal(got, expected)
    assert len(np.unique(expected)) > 1 or expected.size <= 2


@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("seed", range(CASES))
def test_pooling(kind: str, seed: int) -> None:
    rng = np.random.default_rng(5000 + seed + (0 if kind == "MAX_POOL_2D" else 500))
    h, w = (int(v) for v in rng.integers(1, 12, size=2))
    fh, sh, _, padding = _window(rng, h, False)
    fw, sw, _, _ = _window(rng, w, False)
    if padding == "VALID" and fw > w:
        padding = "SAME"
    b = ModelBuilder(rng)
    x = b.input((1, h, w, int(rng.integers(1, 6))))
    y = b.pool(kind, x, (fh, fw), (sh, sw), padding, activation=ACTIVATIONS[seed % 4])
    _check(b, y, rng)


def test_global_average_pool_rounds_halves_away_from_zero() -> None:
    """2 taps summing to odd values, both signs: the C rounding of `(acc ± n/2) / n`."""
    rng = np.random.default_rng(7)
    b = ModelBuilder(rng)
    x = b.input((1, 1, 2, 4), scale=0.1, zero_point=0)
    y = b.pool("AVERAGE_POOL_2D", x, (1, 2), (1, 2), "VALID")
    b.outputs = [y]
    model = b.build()
    xs = np.array([[[[1, -1, 3, -3], [0, 0, 0, 0]]], [[[-128, 127, 5, -6], [-127, 126, 4, -5]]]], np.int8)
    expected = run_tflm(model, xs)
    np.testing.assert_array_equal(run(load_tflite(model), xs), expected)
    assert expected[0, 0, 0].tolist() == [1, -1, 2, -2]


@pytest.mark.parametrize("seed", range(CASES // 2))
def test_pad(seed: int) -> None:
    rng = np.random.default_rng(6000 + seed)
    b = ModelBuilder(rng)
    rank = 4 if seed % 3 else 3
    shape = (1, *(int(v) for v in rng.integers(1, 6, size=rank - 1)))
    x = b.input(shape)
    paddings = [(0, 0)] + [(int(p), int(q)) for p, q in rng.integers(0, 3, size=(rank - 1, 2))]
    y = b.pad(x, paddings)
    _check(b, y, rng)


@pytest.mark.parametrize("seed", range(CASES // 2))
def test_reshape_and_concatenation(seed: int) -> None:
    rng = np.random.default_rng(7000 + seed)
    b = ModelBuilder(rng)
    h, w, c = (int(v) for v in rng.integers(1, 5, size=3))
    scale, zp = float(rng.uniform(0.01, 0.1)), int(rng.integers(-100, 100))
    axis = int(rng.integers(1, 4))
    parts = []
    for _ in range(int(rng.integers(2, 4))):
        shape = [1, h, w, c]
        shape[axis] = int(rng.integers(1, 4))
        parts.append(b.input(tuple(shape), scale=scale, zero_point=zp))
    total = [1, h, w, c]
    total[axis] = sum(b.info[p].shape[axis] for p in parts)
    cat = b.activation("concat", tuple(total), scale, zp)
    b.add_op("CONCATENATION", parts, [cat], axis=axis - 4 if seed % 2 else axis)
    flat = b.reshape(cat, (1, int(np.prod(total))))
    b.outputs = [flat]
    model = b.build()
    graph = load_tflite(model)
    xs = [
        rng.integers(-128, 128, size=(BATCH, *graph.tensors[i].shape[1:])).astype(np.int8)
        for i in graph.inputs
    ]
    np.testing.assert_array_equal(run(graph, xs), run_tflm(model, xs))


@pytest.mark.parametrize("kind", ["RELU", "RELU6", "QUANTIZE"])
@pytest.mark.parametrize("seed", range(CASES // 2))
def test_unary_requantizing(kind: str, seed: int) -> None:
    rng = np.random.default_rng(8000 + seed + {"RELU": 0, "RELU6": 300, "QUANTIZE": 600}[kind])
    b = ModelBuilder(rng)
    shape = (1, *(int(v) for v in rng.integers(1, 6, size=3)))
    # Scales chosen so that 6.0 lands inside or outside the int8 range, zero points anywhere.
    x = b.input(shape, scale=float(rng.uniform(0.005, 0.08)), zero_point=int(rng.integers(-128, 128)))
    in_scale, _ = b.qparams(x)
    y = b.unary(kind, x, out_scale=in_scale * _scale_jitter(rng), out_zp=int(rng.integers(-128, 128)))
    _check(b, y, rng)


@pytest.mark.parametrize("seed", range(4))
def test_deep_accumulations_take_the_float64_path(seed: int) -> None:
    """K above 514 (3x3x64 conv, 600-deep FC) is past float32's exact range: still bit-exact."""
    rng = np.random.default_rng(9000 + seed)
    b = ModelBuilder(rng)
    x = b.input((1, 5, 5, 64))
    y = b.conv2d(x, 6, (3, 3), (1, 1), "SAME", per_channel=bool(seed % 2))
    _set_output_quant(b, y, rng)
    _check(b, y, rng)
    b = ModelBuilder(rng)
    x = b.input((1, 600))
    y = b.fully_connected(x, 7, per_channel=bool(seed % 2))
    _set_output_quant(b, y, rng)
    _check(b, y, rng)


def _shrink_weights(b: ModelBuilder, op_index: int, rng: np.random.Generator) -> float:
    """Small weights and a zero bias for op `op_index`; returns the mean weight scale."""
    op = b.operators[op_index]
    w, bias = op.inputs[1], op.inputs[2]
    b.buffers[b.tensors[w].buffer].data = (
        rng.integers(-3, 4, size=b.buffers[b.tensors[w].buffer].data.size).astype(np.int8).view(np.uint8)
    )
    b.buffers[b.tensors[bias].buffer].data = np.zeros(b.buffers[b.tensors[bias].buffer].data.size, np.uint8)
    return float(np.mean(b.info[w].scale))


@pytest.mark.parametrize("kind", ["CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "QUANTIZE"])
def test_multipliers_above_one_shift_left(kind: str) -> None:
    """Output scales finer than the input product: QuantizeMultiplier gives shift > 0."""
    from mcu_effnet.ops.common import quantize_multiplier

    rng = np.random.default_rng(9100)
    b = ModelBuilder(rng)
    x = b.input((1, 4, 4, 8), scale=0.05, zero_point=3)
    if kind in ("CONV_2D", "FULLY_CONNECTED"):
        y = (
            b.conv2d(x, 5, (1, 1), per_channel=False)
            if kind == "CONV_2D"
            else b.fully_connected(b.reshape(x, (1, 128)), 5)
        )
        scale = 0.05 * _shrink_weights(b, len(b.operators) - 1, rng) / 3.0  # real multiplier 3
    elif kind in ("ADD", "MUL"):
        other = b.input((1, 4, 4, 8), scale=0.04, zero_point=-2)
        y = b.add(x, other, kind=kind)
        scale = 0.01 if kind == "ADD" else 6e-4
    else:
        y = b.unary("QUANTIZE", x, out_scale=0.013, out_zp=-7)
        scale = 0.013
    b.tensors[y].quantization.scale = [scale]
    b.tensors[y].quantization.zeroPoint = [0]
    b.outputs = [y]
    model = b.build()
    graph = load_tflite(model)
    if kind in ("CONV_2D", "FULLY_CONNECTED", "QUANTIZE"):
        op = graph.ops[-1]
        w_scale = graph.tensors[op.inputs[1]].scale[0] if kind != "QUANTIZE" else 1.0
        _, shift = quantize_multiplier(0.05 * float(w_scale) / scale)
        assert int(shift) > 0  # the premise of this test
    # Inputs close to their zero points keep the amplified results inside int8.
    xs = []
    for i in graph.inputs:
        t = graph.tensors[i]
        xs.append((int(t.zero_point[0]) + rng.integers(-3, 4, size=(BATCH, *t.shape[1:]))).astype(np.int8))
    expected = run_tflm(model, xs if len(xs) > 1 else xs[0])
    np.testing.assert_array_equal(run(graph, xs), expected)
    assert len(np.unique(expected)) > 3
