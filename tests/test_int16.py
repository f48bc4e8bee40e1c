"""16x8 models (int16 activations, int8 weights, int64 biases) against the TFLite Micro interpreter.

Randomized single-op models from ``builder16x8`` run through TFLite Micro and ``sim.run`` (and,
where the engine has the op, the host-built C engine under ASan/UBSan) and must agree element
for element; the loader's refusals of what is not run are checked to name the op.
"""

from __future__ import annotations

import json

import data_movement_builder as dm
import numpy as np
import pytest
from builder16x8 import Builder16x8, random_16x8_cnn, random_int16
from host_engine import HostRuntime
from op_checks import assert_varied, engine_matches_tflm, random_batches, refusal, sim_matches_tflm
from tflite_builder import run_tflm

from mcu_effnet.codegen import engine_int16
from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.graph import load_tflite
from mcu_effnet.ops import int16

CASES = 6
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def _check(
    b: Builder16x8,
    out: int | list[int],
    rng: np.random.Generator,
    host: HostRuntime | None = None,
    dsp: bool = False,
    x: np.ndarray | None = None,
) -> np.ndarray:
    """Sim vs TFLite Micro on a random batch (one per model input), then (``host``) the engine
    built for the host under ASan/UBSan against TFLite Micro; returns the batch."""
    b.outputs = out if isinstance(out, list) else [out]
    model = b.build()
    graph = load_tflite(model)
    if x is None:
        xs = random_batches(rng, graph, 3)
        x = xs[0] if len(xs) == 1 else xs
    expected = sim_matches_tflm(model, x, graph)
    if isinstance(out, list):
        assert all(e.dtype == np.dtype("int16") for e in expected)
        return x
    assert expected.dtype == np.dtype(graph.tensors[out].dtype)
    assert_varied(expected)
    if host is not None:
        engine_matches_tflm(host, model, x, graph, dsp=dsp)
    return x


def _conv_case(seed: int, kind: str, bias_dtype: str = "int64") -> tuple[Builder16x8, int]:
    rng = np.random.default_rng(16_000 + seed)
    b = Builder16x8(rng, bias_dtype)
    h, w = (int(v) for v in rng.integers(2, 10, size=2))
    x = b.input((1, h, w, int(rng.integers(1, 7))))
    k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    act = ACTIVATIONS[seed % 4]
    if kind == "CONV_2D":
        y = b.conv2d(x, int(rng.integers(1, 7)), k, stride, "SAME", activation=act, bias=seed % 5 != 4)
    elif kind == "DEPTHWISE_CONV_2D":
        y = b.depthwise(
            x, k, stride, "VALID" if seed % 2 else "SAME", depth_multiplier=1 + seed % 2, activation=act
        )
    else:
        flat = b.reshape(x, (1, h * w * b.info[x].shape[3]))
        y = b.fully_connected(flat, int(rng.integers(1, 9)), activation=act, per_channel=seed % 2 == 0)
    return b, y


@pytest.mark.parametrize("kind", ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"])
@pytest.mark.parametrize("seed", range(CASES))
def test_weighted_ops_int64_bias(kind: str, seed: int, host: HostRuntime) -> None:
    b, y = _conv_case(seed, kind)
    _check(b, y, b.rng, host)


@pytest.mark.parametrize("kind", ["CONV_2D", "FULLY_CONNECTED"])
@pytest.mark.parametrize("seed", range(3))
def test_int32_bias_accumulates_in_int32(kind: str, seed: int, host: HostRuntime) -> None:
    """An int32 bias makes TFLite Micro accumulate in int32 and requantize with double rounding."""
    b, y = _conv_case(seed, kind, "int32")
    _check(b, y, b.rng, host)


@pytest.mark.parametrize("kind", ["ADD", "MUL"])
@pytest.mark.parametrize("seed", range(CASES))
def test_add_mul(kind: str, seed: int, host: HostRuntime) -> None:
    rng = np.random.default_rng(16_100 + seed)
    b = Builder16x8(rng)
    shape = (1, int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 6)))
    a = b.input(shape)
    other_shape = shape if seed % 2 == 0 else (1, 1, 1, shape[3])  # broadcast on odd seeds
    data = rng.integers(-32768, 32768, size=other_shape)
    c = b.add_tensor(
        "const", other_shape, "int16", float(rng.uniform(0.5, 2.0)) * b.qparams(a)[0], 0, data=data
    )
    y = b.add(a, c, activation=ACTIVATIONS[seed % 4], kind=kind)
    _check(b, y, rng, host)


@pytest.mark.parametrize("seed", range(3))
def test_pad_reshape_concatenation(seed: int, host: HostRuntime) -> None:
    rng = np.random.default_rng(16_200 + seed)
    b = Builder16x8(rng)
    x = b.input((1, int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 4))))
    padded = b.pad(x, [(0, 0), (1, 0), (0, 2), (int(seed), 1)])
    n, h, w, c = b.info[padded].shape
    flat = b.reshape(padded, (1, h * w, c))
    scale, _ = b.qparams(flat)
    const = b.add_tensor("const", (1, 2, c), "int16", scale, 0, data=rng.integers(-32768, 32768, (1, 2, c)))
    y = b.add_tensor("concat", (1, h * w + 2, c), "int16", scale, 0)
    b.add_op("CONCATENATION", [flat, const], [y], axis=1)
    _check(b, y, rng, host)


@pytest.mark.parametrize("seed", range(3))
def test_mean(seed: int, host: HostRuntime) -> None:
    rng = np.random.default_rng(16_400 + seed)
    b = Builder16x8(rng)
    x = b.input((1, int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(1, 5))))
    axes = [(1, 2), (2,), (3,)][seed]
    scale = b.qparams(x)[0] * float(rng.uniform(0.3, 1.5))
    _check(b, b.mean(x, axes, keep_dims=seed != 1, out_scale=scale), rng, host)


@pytest.mark.parametrize("seed", range(4))
def test_softmax(seed: int, host: HostRuntime) -> None:
    """int16 SOFTMAX: exp and 1 / (1 + x) tables built as TFLite Micro's Prepare builds them."""
    rng = np.random.default_rng(16_500 + seed)
    b = Builder16x8(rng)
    x = b.input((1, int(rng.integers(1, 4)), int(rng.integers(2, 12))))
    beta = float(rng.uniform(0.3, 3.0)) / (4096 * b.qparams(x)[0])  # a 4096-LSB gap ~ e^-beta'
    y = b.unary("SOFTMAX", x, out_scale=1.0 / 32768, out_zp=0, beta=beta)
    _check(b, y, rng, host)


@pytest.mark.parametrize("scale", [2.0**-12, 2.0**-11, 0.00021, 0.0011])
def test_logistic(scale: float, host: HostRuntime) -> None:
    """int16 LOGISTIC: power-of-two input scales (the shift-only path) and general ones."""
    rng = np.random.default_rng(16_600)
    b = Builder16x8(rng)
    x = b.input((1, 5, 7), scale=scale)
    _check(b, b.unary("LOGISTIC", x, out_scale=2.0**-15, out_zp=0), rng, host)


@pytest.mark.parametrize("scale", [2.0**-12, 2.0**-11, 2.0**-13, 0.00021, 0.0011])
def test_tanh(scale: float, host: HostRuntime) -> None:
    """int16 TANH: LOGISTIC's table read at twice the input; 2^-12 and 2^-11 take the shift-only
    path (TANH's Prepare allows an input shift of 0 or 1), the others the multiplier."""
    rng = np.random.default_rng(16_650)
    b = Builder16x8(rng)
    x = b.input((1, 5, 7), scale=scale)
    _check(b, b.unary("TANH", x, out_scale=2.0**-15, out_zp=0), rng, host)


def test_tanh_every_input() -> None:
    """All 65,536 int16 inputs at one general scale, the simulator against TFLite Micro."""
    b = Builder16x8(np.random.default_rng(16_651))
    x = b.input((1, 256, 256), scale=0.00037)
    b.outputs = [b.unary("TANH", x, out_scale=2.0**-15, out_zp=0)]
    model = b.build()
    every = np.arange(-32768, 32768, dtype=np.int16).reshape(1, 256, 256)
    assert_varied(sim_matches_tflm(model, every))


@pytest.mark.parametrize(("src", "dst"), [("int8", "int16"), ("int16", "int8"), ("int16", "int16")])
def test_quantize(src: str, dst: str, host: HostRuntime) -> None:
    rng = np.random.default_rng(16_300 + len(src + dst))
    b = Builder16x8(rng)
    shape = (1, 3, 4, 5)
    x = b.input(shape) if src == "int16" else b.int8_input(shape)
    y = b.quantize(x, dst, zero_point=int(rng.integers(-20, 21)) if dst == "int8" else 0)
    _check(b, y, rng, host)


def test_planner_counts_two_bytes_per_int16_activation() -> None:
    """Arena buffers, the arena and the engine's figures hold 2 bytes per int16 value."""
    graph = load_tflite(random_16x8_cnn(np.random.default_rng(9)))
    engine = generate_engine(graph)
    plan = engine.plan
    for buf in plan.buffers:
        if buf.tensors:
            values = max(int(np.prod(graph.tensors[t].shape)) for t in buf.tensors)
            assert buf.size == 2 * values
    tin = graph.input_tensors[0]
    assert engine.input_bytes == 2 * int(np.prod(tin.shape))
    assert plan.arena_bytes >= max(b.offset + b.size for b in plan.buffers)
    assert "typedef int16_t model_input_t;" in engine.files["model.h"]


@pytest.mark.parametrize("seed", range(CASES))
def test_sub(seed: int, host: HostRuntime) -> None:
    """SUB with the 2^15 lift of 16x8, broadcasting a constant or a second model input."""
    rng = np.random.default_rng(16_400 + seed)
    b = Builder16x8(rng)
    shape = (1, *(int(v) for v in rng.integers(1, 6, size=3)))
    x = b.input(shape)
    other = [shape[1:], (1, 1, shape[3]), (shape[3],), (shape[2], 1)][seed % 4]
    second = b.operand(x, other, constant=seed % 3 == 0)
    first, second = (x, second) if seed % 2 == 0 else (second, x)
    _check(b, b.sub(first, second, activation=ACTIVATIONS[seed % 4]), rng, host)


@pytest.mark.parametrize("seed", range(CASES))
def test_leaky_relu(seed: int, host: HostRuntime) -> None:
    rng = np.random.default_rng(16_500 + seed)
    b = Builder16x8(rng)
    x = b.input((1, int(rng.integers(1, 6)), int(rng.integers(1, 40)), int(rng.integers(1, 9))))
    alpha = float(rng.choice([0.01, 0.2, 0.3, rng.uniform(-1.0, 1.5)]))
    _check(b, b.leaky_relu(x, alpha), rng, host)


@pytest.mark.parametrize("seed", range(CASES))
def test_transpose_conv(seed: int, host: HostRuntime) -> None:
    """int64 scratch accumulators and bias, the int64 requantization, per-channel or not."""
    rng = np.random.default_rng(16_700 + seed)
    b = Builder16x8(rng)
    x = b.input((1, int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(1, 9))))
    y = b.transpose_conv(
        x,
        int(rng.integers(1, 9)),
        (int(rng.integers(1, 5)), int(rng.integers(1, 5))),
        (int(rng.integers(1, 3)), int(rng.integers(1, 4))),
        "SAME" if seed % 2 else "VALID",
        activation=ACTIVATIONS[seed % 4],
        per_channel=seed % 3 != 2,
        bias=seed % 5 != 4,
    )
    _check(b, y, rng, host)


@pytest.mark.parametrize("seed", range(CASES))
def test_mean_over_axes(seed: int) -> None:
    """The int32 sum of int16 values and one multiplier folded with 1 / count."""
    rng = np.random.default_rng(16_800 + seed)
    b = Builder16x8(rng)
    h, w = (int(v) for v in rng.integers(1, 12, size=2)) if seed != 5 else (64, 64)
    x = b.input((1, h, w, int(rng.integers(1, 6))))
    axes = [(1, 2), (2,), (1, 2, 3), (3,), (1,), (2, 1)][seed]
    _check(b, b.mean(x, axes, keep_dims=seed % 2 == 0), rng)


def _data_movement_case(kind: str, b: Builder16x8) -> int | list[int]:
    rng = b.rng
    x = b.input((1, *(int(v) for v in rng.integers(2, 6, size=3))))
    shape = b.info[x].shape
    if kind == "STRIDED_SLICE":
        while True:  # draw until the slice is not empty (the loader refuses empty tensors)
            begin = [0] + [int(rng.integers(-d, d)) for d in shape[1:]]
            end = [1] + [int(rng.integers(-d, d + 1)) for d in shape[1:]]
            strides = [1] + [int(rng.choice([-2, -1, 1, 2, 3])) for _ in shape[1:]]
            masks = {key: int(rng.integers(0, 16)) & ~1 for key in ("begin_mask", "end_mask")}
            if np.zeros(shape)[dm.strided_index(shape, begin, end, strides, **masks)].size:
                return dm.strided_slice(b, x, begin, end, strides, **masks)
    if kind == "TRANSPOSE":
        return dm.transpose(b, x, [0, *(1 + rng.permutation(3))])
    if kind == "SLICE":
        begin = [0] + [int(rng.integers(0, d)) for d in shape[1:]]
        return dm.slice_(
            b,
            x,
            begin,
            [1] + [int(rng.integers(1, d - s + 1)) for d, s in zip(shape[1:], begin[1:], strict=True)],
        )
    if kind == "SQUEEZE":
        return dm.squeeze(b, dm.expand_dims(b, x, 2), [2])
    if kind == "PACK":
        return dm.pack(b, [x, b.operand(x, shape[1:], constant=False)], 1)
    if kind == "UNPACK":
        return dm.unpack(b, x, 3)
    if kind == "SPLIT":
        return dm.split(b, x, 1, shape[1])
    return dm.split_v(b, x, [1, -1], 2)


@pytest.mark.parametrize(
    "kind", ["STRIDED_SLICE", "TRANSPOSE", "SLICE", "SQUEEZE", "PACK", "UNPACK", "SPLIT", "SPLIT_V"]
)
@pytest.mark.parametrize("seed", range(3))
def test_data_movement(kind: str, seed: int, host: HostRuntime) -> None:
    """Ops that move int16 elements as TFLite Micro moves int8 ones."""
    rng = np.random.default_rng(16_600 + 10 * seed + len(kind))
    b = Builder16x8(rng)
    _check(b, _data_movement_case(kind, b), rng, host)


# ---- refusals -----------------------------------------------------------------------------------


def _refused(b: Builder16x8, out: int) -> str:
    b.outputs = [out]
    return refusal(b.build())


@pytest.mark.parametrize("kind", ["HARD_SWISH", "RELU"])
def test_op_without_an_int16_path_is_refused_naming_it(kind: str) -> None:
    """Ops without an int16 path here (TFLite Micro has none for HARD_SWISH; RELU's is not
    implemented) are refused in one line naming the op, its index and its types."""
    b = Builder16x8(np.random.default_rng(1))
    x = b.input((1, 4))
    message = _refused(b, b.unary(kind, x, out_scale=1 / 32768, out_zp=0))
    assert f"op 0 ({kind}, int16 in, int16 out): 16-bit activations" in message


def test_codegen_refuses_an_op_outside_the_16x8_list_with_exit_2(cli, tmp_path) -> None:
    """The command line: one stderr line naming the op, its index and its types, exit code 2."""
    b = Builder16x8(np.random.default_rng(1))
    x = b.input((1, 4))
    b.outputs = [b.unary("HARD_SWISH", x, out_scale=1 / 32768, out_zp=0)]
    model = tmp_path / "m16.tflite"
    model.write_bytes(b.build())
    result = cli("codegen", model, "--board", "qemu-m4", "--out", tmp_path / "fw", "--no-build")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert line.startswith("mcu-effnet: error: ") and "op 0 (HARD_SWISH, int16 in, int16 out)" in line


def test_space_to_depth_is_refused_for_int16() -> None:
    """TFLite Micro's SPACE_TO_DEPTH takes int8 and float32 only."""
    b = Builder16x8(np.random.default_rng(5))
    x = b.input((1, 4, 4, 2))
    message = _refused(b, dm.space_to_depth(b, x, 2))
    assert "op 0 (SPACE_TO_DEPTH, int16 in, int16 out): 16-bit activations" in message


def test_engine_has_an_int16_kernel_for_every_int16_op() -> None:
    """Every op the loader lets through with int16 activations has a 16x8 handler in the engine
    or moves elements only (its int8 handler serves), so the engine refuses none of them."""
    missing = int16.INT16_KINDS - set(engine_int16.HANDLERS) - engine_int16.BYTE_MOVING
    assert not missing, sorted(missing)


def test_int16_zero_point_must_be_zero() -> None:
    b = Builder16x8(np.random.default_rng(2))
    x = b.add_tensor("x", (1, 4, 4, 2), "int16", 0.001, 5)
    b.inputs.append(x)
    message = _refused(b, b.conv2d(x, 3))
    assert "op 0 (CONV_2D)" in message and "zero point 5; the 16x8 scheme needs 0" in message


def test_mixed_int8_and_int16_inputs_are_refused() -> None:
    b = Builder16x8(np.random.default_rng(3))
    a = b.input((1, 4))
    c = b.int8_input((1, 4))
    message = _refused(b, b.add(a, c))
    assert "op 0 (ADD)" in message and "int8, input 0 is int16" in message


def test_transpose_conv_needs_an_int64_bias() -> None:
    """TFLite Micro's 16x8 TRANSPOSE_CONV reads its bias as int64: an int32 one is refused."""
    b = Builder16x8(np.random.default_rng(7), bias_dtype="int32")
    x = b.input((1, 3, 3, 2))
    message = _refused(b, b.transpose_conv(x, 2))
    assert "op 0 (TRANSPOSE_CONV)" in message and "bias must be a constant int64 tensor" in message


def test_depthwise_needs_an_int64_bias() -> None:
    """TFLite Micro reads a 16x8 depthwise bias as int64 whatever its type: an int32 one is refused."""
    b = Builder16x8(np.random.default_rng(4), bias_dtype="int32")
    x = b.input((1, 4, 4, 2))
    message = _refused(b, b.depthwise(x))
    assert "op 0 (DEPTHWISE_CONV_2D)" in message and "bias must be a constant int64 tensor" in message


# ---- firmware ------------------------------------------------------------------------------------


def _random_inputs(path, n: int, seed: int) -> np.ndarray:
    graph = load_tflite(path)
    x = random_int16(np.random.default_rng(seed), graph.input_tensors[0].shape, batch=n)
    return x


# The TFLite Micro runtime takes the same model too (``--runtime tflm``, with int8_output=True
# for an int16 -> int8 QUANTIZE at the end); its run costs 80 s here, so only the native one is
# in the suite.
@pytest.mark.toolchain
@pytest.mark.parametrize("runtime", ["native"])
def test_16x8_firmware_runs_bit_exact_in_qemu(cli, tmp_path, runtime: str) -> None:
    """A small 16x8 CNN through codegen and run on qemu-m4: int16 test vector and int16 --input
    samples, bit-exact with TFLite Micro. Its tail (SUB, LEAKY_RELU, TRANSPOSE_CONV, TANH) runs
    every int16 kernel the other firmware tests do not."""
    model = tmp_path / "m16.tflite"
    model.write_bytes(random_16x8_cnn(np.random.default_rng(7), int8_output=runtime == "tflm", math_ops=True))
    out = tmp_path / "fw"
    result = cli("codegen", model, "--board", "qemu-m4", "--runtime", runtime, "--out", out)
    assert result.returncode == 0, result.stderr
    x = _random_inputs(model, 3, seed=11)
    np.save(tmp_path / "x.npy", x)
    result = cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 of 3 samples bit-exact" in result.stdout and "bit-exact: yes" in result.stdout
    graph = load_tflite(model)
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == graph.output_tensors[0].dtype
    np.testing.assert_array_equal(y, run_tflm(model.read_bytes(), x))
    report = json.loads((out / "report.json").read_text())
    assert report["input_dtype"] == "int16" and report["input_bytes"] == 2 * 8 * 8 * 3


def test_run_wants_int16_inputs_for_a_16x8_model(cli, tmp_path) -> None:
    """A 16x8 project takes int16 samples: int8 ones get one line and exit code 2."""
    model = tmp_path / "m16.tflite"
    model.write_bytes(random_16x8_cnn(np.random.default_rng(8)))
    out = tmp_path / "fw"
    assert cli("codegen", model, "--board", "qemu-m4", "--out", out, "--no-build").returncode == 0
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8, 3), np.int8))
    result = cli("run", out, "--input", tmp_path / "x.npy")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert line.startswith("mcu-effnet: error: --input") and "int16 (a leading batch axis N)" in line
