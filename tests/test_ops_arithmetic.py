"""SUB, MAXIMUM, MINIMUM, PRELU, LEAKY_RELU and TANH (int8) against the TFLite Micro interpreter.

Randomized single-op models (shapes, broadcasting, scales, zero points, fused activations,
alphas) run through TFLite Micro and the simulator, then through the generated C engine built
for the host under ASan/UBSan; a chain of all six runs as firmware in QEMU (qemu-m4); malformed
ops are refused with one line naming the op.
"""

from __future__ import annotations

import numpy as np
import pytest
from host_engine import HostRuntime
from op_checks import (
    assert_varied,
    engine_matches_tflm,
    random_batch,
    random_batches,
    refusal,
    sim_matches_tflm,
)
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.graph import load_tflite
from mcu_effnet.ops.common import quantize_multiplier
from mcu_effnet.ops.elementwise import ADD_LEFT_SHIFT, BinaryParams, add_params
from mcu_effnet.sim import run as sim_run

KINDS = ("SUB", "MAXIMUM", "MINIMUM", "PRELU", "LEAKY_RELU", "TANH")
BATCH = 6


def _shapes(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A 4-D activation shape and a second operand that broadcasts onto it (or equals it)."""
    h, w, c = (int(v) for v in rng.integers(1, 6, size=3))
    full = (1, h, w, c)
    other = [full, (1, 1, 1, c), (1, h, w, 1), (1, h, 1, c), (1, 1, w, 1), (c,), (w, c)][
        int(rng.integers(0, 7))
    ]
    return full, other


def single_op_model(kind: str, seed: int) -> bytes:
    """One ``kind`` op with random shapes and quantization drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder(rng)
    full, other = _shapes(rng)
    x = b.input(full, scale=float(rng.uniform(0.004, 0.1)), zero_point=int(rng.integers(-100, 101)))
    if kind in ("SUB", "MAXIMUM", "MINIMUM"):
        if rng.random() < 0.3:  # a constant operand, as biases and thresholds are in real models
            data = rng.integers(-128, 128, size=other).astype(np.int8)
            second = b.add_tensor("k", other, "int8", *b.qparams(x), data=data)
        else:  # an activation has the batch axis first: a lower-rank operand gets unit axes
            shape = (1,) * (4 - len(other)) + other
            second = b.input(shape, *(b.qparams(x) if rng.random() < 0.5 else (None, None)))
        first, second = (x, second) if rng.random() < 0.5 else (second, x)
        if kind == "SUB":
            y = b.sub(first, second, activation=str(rng.choice(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])))
        else:
            y = b.min_max(kind, first, second)
    elif kind == "PRELU":
        y = b.prelu(x, other)
    elif kind == "LEAKY_RELU":
        y = b.leaky_relu(x, float(rng.choice([0.01, 0.1, 0.2, 0.3, rng.uniform(-1.0, 1.5)])))
    else:
        y = b.tanh(x)
    b.outputs = [y]
    return b.build()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(12))
def test_simulator_matches_tflite_micro(kind: str, seed: int) -> None:
    model = single_op_model(kind, 100 * KINDS.index(kind) + seed)
    xs = random_batches(np.random.default_rng(seed), load_tflite(model), BATCH)
    assert_varied(sim_matches_tflm(model, xs if len(xs) > 1 else xs[0]))


def _float32_sub_params(s1: float, s2: float, so: float) -> BinaryParams:
    """SUB's parameters as newer sub_common.cc computes them: every scale ratio in float32."""
    f1, f2, fo = np.float32(s1), np.float32(s2), np.float32(so)
    twice_max = np.float32(2.0) * max(f1, f2)
    reals = (f1 / twice_max, f2 / twice_max, twice_max / (np.float32(1 << ADD_LEFT_SHIFT) * fo))
    (m1, e1), (m2, e2), (mo, eo) = (quantize_multiplier(np.float64(r)) for r in reals)
    multipliers = (int(m1), int(e1), int(m2), int(e2), int(mo), int(eo))
    return BinaryParams(-3, 7, 5, ADD_LEFT_SHIFT, *multipliers, -128, 127)


def _sub_pairs_model(s1: float, s2: float, so: float) -> bytes:
    """SUB of a (1, 256, 1) and a (1, 1, 256) input: every pair of int8 codes in one sample."""
    b = ModelBuilder(np.random.default_rng(0))
    x1 = b.input((1, 256, 1), scale=s1, zero_point=3)
    x2 = b.input((1, 1, 256), scale=s2, zero_point=-7)
    y = b.activation("sub", (1, 256, 256), so, 5)
    b.add_op("SUB", [x1, x2], [y], fused_activation_function="NONE")
    b.outputs = [y]
    return b.build()


def test_sub_prepares_as_add_does_in_double() -> None:
    """Newer sub_common.cc sources divide SUB's scales in float32, ADD's in double. Find scales
    where the two give different outputs: the TFLite Micro interpreter sides with double."""
    codes = np.arange(-128, 128, dtype=np.int8)
    xs = [codes.reshape(1, 256, 1), codes.reshape(1, 1, 256)]
    rng = np.random.default_rng(3)
    for _ in range(3000):
        s1, s2, so = (float(np.float32(v)) for v in rng.uniform(0.001, 0.1, size=3))
        in_float32 = _float32_sub_params(s1, s2, so)
        if in_float32 == add_params(s1, 3, s2, -7, so, 5):
            continue
        model = _sub_pairs_model(s1, s2, so)
        graph, other = load_tflite(model), load_tflite(model)
        other.__dict__["_sim_cache"] = {(other.ops[0].index, "params"): in_float32}
        got = sim_run(graph, xs)
        if np.array_equal(got, sim_run(other, xs)):
            continue
        np.testing.assert_array_equal(got, run_tflm(model, xs))
        return
    pytest.fail("no scales found where float32 and double Prepare give different outputs")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_c_engine_matches_tflite_micro(host: HostRuntime, kind: str, seed: int) -> None:
    rng = np.random.default_rng(900 + 10 * KINDS.index(kind) + seed)
    model = None
    for attempt in range(50):  # the engine runs one-input models: draw until the second operand is constant
        candidate = single_op_model(kind, 5000 + 100 * KINDS.index(kind) + 10 * seed + attempt)
        if len(load_tflite(candidate).inputs) == 1:
            model = candidate
            break
    assert model is not None
    graph = load_tflite(model)
    x = random_batch(rng, graph, 8)
    sim_matches_tflm(model, x, graph)
    engine_matches_tflm(host, model, x, graph)


def chain_model(seed: int) -> bytes:
    """SUB -> MAXIMUM -> PRELU -> LEAKY_RELU -> TANH -> MINIMUM over a map of 8x8x6 (past the
    256 elements where the unary kernels switch to a table), constant second operands."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder(rng)
    x = b.input((1, 8, 8, 6))

    def const(shape: tuple[int, ...], like: int) -> int:
        return b.add_tensor(
            f"k_{len(b.tensors)}", shape, "int8", *b.qparams(like), data=rng.integers(-128, 128, size=shape)
        )

    y = b.sub(x, const((6,), x), activation="RELU6")
    y = b.min_max("MAXIMUM", y, const((1, 8, 1, 6), y))
    y = b.prelu(y, (1, 1, 6))
    y = b.leaky_relu(y, 0.2)
    y = b.tanh(y)
    y = b.min_max("MINIMUM", const((1, 1, 8, 1), y), y)
    b.outputs = [y]
    return b.build()


@pytest.mark.toolchain
@pytest.mark.parametrize("runtime", ["native", "tflm"])
def test_chain_runs_bit_exact_in_qemu(cli, tmp_path, runtime: str) -> None:
    model = tmp_path / "chain.tflite"
    model.write_bytes(chain_model(11))
    graph = load_tflite(model.read_bytes())
    x = np.random.default_rng(12).integers(-128, 128, size=(3, 8, 8, 6), dtype=np.int8)
    np.testing.assert_array_equal(sim_run(graph, x), run_tflm(model.read_bytes(), x))
    out = tmp_path / "fw"
    result = cli("codegen", model, "--board", "qemu-m4", "--runtime", runtime, "--out", out)
    assert result.returncode == 0, result.stderr
    np.save(tmp_path / "x.npy", x)
    result = cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), sim_run(graph, x))


def _malformed(kind: str) -> bytes:
    b = ModelBuilder(np.random.default_rng(1))
    x = b.input((1, 4, 4, 3))
    if kind == "SUB":  # shapes that do not broadcast
        other = b.input((1, 4, 2, 3))
        y = b.activation("sub", (1, 4, 4, 3), 0.05, 0)
        b.add_op("SUB", [x, other], [y], fused_activation_function="NONE")
    elif kind == "MAXIMUM":  # output shaped unlike the broadcast
        other = b.add_tensor("k", (3,), "int8", 0.05, 0, data=np.zeros(3))
        y = b.activation("max", (1, 4, 4, 1), 0.05, 0)
        b.add_op("MAXIMUM", [x, other], [y])
    elif kind == "PRELU":  # alpha larger than the input
        alpha = b.add_tensor("alpha", (2, 4, 4, 3), "int8", 0.01, 0, data=np.zeros((2, 4, 4, 3)))
        y = b.activation("prelu", (2, 4, 4, 3), 0.05, 0)
        b.add_op("PRELU", [x, alpha], [y])
    elif kind == "LEAKY_RELU":  # output shaped unlike the input
        y = b.activation("leaky", (1, 4, 4, 2), 0.05, 0)
        b.add_op("LEAKY_RELU", [x], [y], alpha=0.1)
    else:  # TANH with two inputs
        y = b.activation("tanh", (1, 4, 4, 3), 1 / 128, 0)
        b.add_op("TANH", [x, x], [y])
    b.outputs = [y]
    return b.build()


@pytest.mark.parametrize(
    "kind,reason",
    [
        ("SUB", "do not broadcast"),
        ("MAXIMUM", "expected [1, 4, 4, 3]"),
        ("PRELU", "does not broadcast to the input shape"),
        ("LEAKY_RELU", "expected [1, 4, 4, 3]"),
        ("TANH", "has 2 inputs, expected 1"),
    ],
)
def test_malformed_op_is_refused_naming_it(kind: str, reason: str) -> None:
    message = refusal(_malformed(kind))
    assert f"op 0 ({kind})" in message and reason in message


def test_malformed_op_exits_2_through_the_cli(cli, tmp_path) -> None:
    model = tmp_path / "bad.tflite"
    model.write_bytes(_malformed("SUB"))
    result = cli("inspect", model)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcu-effnet: error: ") and "op 0 (SUB)" in lines[0]
