"""MEAN, LOGISTIC, SOFTMAX and HARD_SWISH against the TFLite Micro interpreter, element for element.

Every case builds a one-op int8 model with random shapes and random quantization (very small
and very large scales included), feeds it random batches that include the saturating values
-128 and 127, and runs it through both the real TFLite Micro interpreter and
``mcu_effnet.sim.run`` on the loaded graph. LOGISTIC and HARD_SWISH have a 256-value input
domain, so they are also checked exhaustively under many random scales.
"""

from __future__ import annotations

import numpy as np
import pytest
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.errors import UserError
from mcu_effnet.graph import load_tflite
from mcu_effnet.ops.hard_swish import HardSwishParams
from mcu_effnet.sim import run

ALL_INT8 = np.arange(-128, 128, dtype=np.int8)


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.float32(10 ** rng.uniform(np.log10(low), np.log10(high))))


def random_batch(rng: np.random.Generator, shape: tuple[int, ...], n: int = 6) -> np.ndarray:
    """n samples of a (1, ...) tensor: uniform ones, plus all -128, all 127 and a mixed extreme one."""
    x = rng.integers(-128, 128, size=(n, *shape[1:]), dtype=np.int8)
    x[0] = -128
    x[1] = 127
    x[2] = rng.choice(np.array([-128, 127], dtype=np.int8), size=shape[1:])
    return x


def random_shape(
    rng: np.random.Generator, min_rank: int = 2, max_rank: int = 4, max_dim: int = 9
) -> tuple[int, ...]:
    rank = int(rng.integers(min_rank, max_rank + 1))
    return (1, *(int(d) for d in rng.integers(1, max_dim + 1, size=rank - 1)))


def assert_same_as_tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    expected = run_tflm(model, x)
    got = run(load_tflite(model), x)
    assert got.dtype == np.int8
    assert got.shape == expected.shape
    differ = np.flatnonzero(got != expected)
    assert differ.size == 0, (
        f"{differ.size} of {expected.size} elements differ; first at flat index {differ[0]}: "
        f"sim {got.flat[differ[0]]}, TFLite Micro {expected.flat[differ[0]]}"
    )
    return expected


def unary_model(kind: str, shape, in_q, out_q, **options) -> bytes:
    b = ModelBuilder()
    x = b.add_tensor("x", shape, "int8", *in_q)
    y = b.add_tensor("y", shape, "int8", *out_q)
    b.add_op(kind, [x], [y], **options)
    return b.build(inputs=[x], outputs=[y])


# ---- LOGISTIC ---------------------------------------------------------------------------------

LOGISTIC_EDGE_SCALES = [2.0**-24, 1e-6, 1.0 / 256, 0.1, 1.0, 2.0, 16.0, 300.0]


def test_logistic_exhaustive_over_random_scales():
    rng = np.random.default_rng(1)
    scales = LOGISTIC_EDGE_SCALES + [log_uniform(rng, 1e-6, 300.0) for _ in range(600)]
    for scale in scales:
        zp = int(rng.integers(-128, 128))
        model = unary_model("LOGISTIC", (1, 256), (scale, zp), (1.0 / 256, -128))
        out = assert_same_as_tflm(model, ALL_INT8[None])
        assert out[0].min() >= -128 and np.all(np.diff(out[0].astype(int)) >= 0)  # monotone


@pytest.mark.parametrize("seed", range(4))
def test_logistic_random_shapes(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(20):
        shape = random_shape(rng)
        model = unary_model(
            "LOGISTIC", shape, (log_uniform(rng, 1e-4, 50.0), int(rng.integers(-128, 128))), (1.0 / 256, -128)
        )
        assert_same_as_tflm(model, random_batch(rng, shape))


def test_logistic_output_scale_is_not_checked_but_zero_point_is():
    """TFLite Micro runs a wrong output scale silently (values stay on 1/256); a wrong zero point is refused."""
    model = unary_model("LOGISTIC", (1, 256), (0.05, 3), (0.01, -128))
    assert_same_as_tflm(model, ALL_INT8[None])
    bad = unary_model("LOGISTIC", (1, 8), (0.05, 3), (1.0 / 256, 0))
    with pytest.raises(UserError, match="zero point"):
        run(load_tflite(bad), np.zeros((1, 8), np.int8))


# ---- HARD_SWISH -------------------------------------------------------------------------------


def _hard_swish_case(rng: np.random.Generator) -> tuple[float, int, float, int]:
    in_scale = log_uniform(rng, 1e-5, 100.0)
    # out/in from 1/100 (above that the kernel refuses) to 10^5 (output shift >= 16, int16 mask wraps).
    out_scale = float(np.float32(in_scale * 10 ** rng.uniform(-2.0, 5.0)))
    return in_scale, int(rng.integers(-128, 128)), out_scale, int(rng.integers(-128, 128))


def test_hard_swish_exhaustive_over_random_scales():
    rng = np.random.default_rng(2)
    cases = [(0.05, 3, 0.03, -100), (0.1, 0, 0.1, 0), (1.0, -128, 1.0 / 64, 127), (1e-3, 10, 10.0, -5)]
    cases += [_hard_swish_case(rng) for _ in range(800)]
    shifts = []
    for in_scale, in_zp, out_scale, out_zp in cases:
        try:
            params = HardSwishParams.from_quantization(in_scale, in_zp, out_scale, out_zp)
        except ValueError:
            continue  # TFLite Micro refuses these too (see the test below)
        shifts.append(params.out_exponent)
        model = unary_model("HARD_SWISH", (1, 256), (in_scale, in_zp), (out_scale, out_zp))
        assert_same_as_tflm(model, ALL_INT8[None])
    # The cases reached the corners of the arithmetic: no right shift at all, and shifts of
    # 16 or more where gemmlowp's int16 RoundingDivideByPOT mask wraps.
    assert len(shifts) > 600 and 0 in shifts and min(shifts) <= -16


@pytest.mark.parametrize("seed", range(3))
def test_hard_swish_random_shapes(seed):
    rng = np.random.default_rng(200 + seed)
    for _ in range(20):
        shape = random_shape(rng)
        in_scale = log_uniform(rng, 1e-3, 1.0)
        model = unary_model(
            "HARD_SWISH",
            shape,
            (in_scale, int(rng.integers(-128, 128))),
            (in_scale * float(rng.uniform(0.3, 3.0)), int(rng.integers(-128, 128))),
        )
        assert_same_as_tflm(model, random_batch(rng, shape))


def test_hard_swish_refuses_an_input_scale_far_above_the_output_scale():
    model = unary_model("HARD_SWISH", (1, 4), (1.0, 0), (0.001, 0))
    with pytest.raises(UserError, match="HARD_SWISH"):
        run(load_tflite(model), np.zeros((1, 4), np.int8))


# ---- SOFTMAX ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_softmax_random_shapes_scales_and_beta(seed):
    rng = np.random.default_rng(300 + seed)
    for _ in range(30):
        shape = random_shape(rng, max_dim=12)
        if rng.random() < 0.3:
            shape = (*shape[:-1], int(rng.integers(20, 120)))  # long rows, like logits
        in_scale = log_uniform(rng, 1e-4, 30.0)
        beta = float(np.float32(rng.choice([1.0, rng.uniform(0.05, 4.0)])))
        model = unary_model(
            "SOFTMAX", shape, (in_scale, int(rng.integers(-128, 128))), (1.0 / 256, -128), beta=beta
        )
        x = random_batch(rng, shape)
        x[3, ..., 0] = 127  # one clear winner per row
        assert_same_as_tflm(model, x)


def test_softmax_large_scales_saturate_and_small_scales_flatten():
    rng = np.random.default_rng(4)
    for in_scale in (2.0**-20, 1e-5, 1.0, 40.0, 1000.0):
        shape = (1, 2, 37)
        model = unary_model("SOFTMAX", shape, (in_scale, 5), (1.0 / 256, -128), beta=1.0)
        assert_same_as_tflm(model, random_batch(rng, shape, n=8))


def test_softmax_thousand_classes():
    rng = np.random.default_rng(5)
    model = unary_model("SOFTMAX", (1, 1000), (0.1, -10), (1.0 / 256, -128), beta=1.0)
    x = rng.integers(-128, 128, size=(4, 1000), dtype=np.int8)
    x[1, :400] = 127  # 400 ties at the maximum: the sum of exps stays below 512
    assert_same_as_tflm(model, x)


def test_softmax_refuses_rows_that_abort_tflite_micro():
    """Over 512 ties at the maximum make the sum of exps reach 512: TFLite Micro's
    TFLITE_CHECK(exponent <= 31) aborts the process (so it cannot be the oracle here)."""
    model = unary_model("SOFTMAX", (1, 1000), (0.1, -10), (1.0 / 256, -128), beta=1.0)
    graph = load_tflite(model)
    x = np.zeros((2, 1000), np.int8)
    x[1, :600] = 127
    with pytest.raises(UserError, match="512"):
        run(graph, x)


def test_softmax_refuses_a_beta_times_scale_too_small_for_tflite_micro():
    """beta * input_scale * 2^26 <= 1 fails QuantizeMultiplierGreaterThanOne's TFLITE_CHECK,
    which aborts TFLite Micro; the simulator says so instead."""
    model = unary_model("SOFTMAX", (1, 10), (1e-9, 0), (1.0 / 256, -128), beta=1.0)
    with pytest.raises(UserError, match="too small"):
        run(load_tflite(model), np.zeros((1, 10), np.int8))


def test_softmax_refuses_an_output_scale_other_than_1_256():
    model = unary_model("SOFTMAX", (1, 10), (0.1, 0), (1.0 / 128, -128), beta=1.0)
    with pytest.raises(UserError, match="1/256"):
        run(load_tflite(model), np.zeros((1, 10), np.int8))


# ---- MEAN -------------------------------------------------------------------------------------


def mean_model(shape, axes, keep_dims, in_q, out_q) -> bytes:
    b = ModelBuilder()
    rank = len(shape)
    resolved = {a % rank for a in axes}
    if keep_dims:
        out_shape = tuple(1 if i in resolved else d for i, d in enumerate(shape))
    else:
        out_shape = tuple(d for i, d in enumerate(shape) if i not in resolved)
    x = b.add_tensor("x", shape, "int8", *in_q)
    axes_t = b.add_tensor("axes", (len(axes),), "int32", data=np.array(axes, np.int32))
    y = b.add_tensor("y", out_shape, "int8", *out_q)
    b.add_op("MEAN", [x, axes_t], [y], keep_dims=keep_dims)
    return b.build(inputs=[x], outputs=[y])


@pytest.mark.parametrize("same_quantization", [True, False])
def test_mean_global_average_pool(same_quantization):
    """MEAN over axes (1, 2) with keep_dims: the EfficientNet head."""
    rng = np.random.default_rng(6 + same_quantization)
    for _ in range(30):
        shape = (1, int(rng.integers(1, 15)), int(rng.integers(1, 15)), int(rng.integers(1, 40)))
        in_q = (log_uniform(rng, 1e-4, 10.0), int(rng.integers(-128, 128)))
        out_q = (
            in_q
            if same_quantization
            else (in_q[0] * float(rng.uniform(0.05, 3.0)), int(rng.integers(-128, 128)))
        )
        axes = [1, 2] if rng.random() < 0.7 else [2, 1]
        assert_same_as_tflm(mean_model(shape, axes, True, in_q, out_q), random_batch(rng, shape))


@pytest.mark.parametrize("seed", range(4))
def test_mean_random_axes_keep_dims_and_scales(seed):
    rng = np.random.default_rng(400 + seed)
    for _ in range(30):
        shape = random_shape(rng, min_rank=2, max_rank=4)
        rank = len(shape)
        keep_dims = bool(rng.integers(0, 2))
        # Axis 0 is the batch: the runner refuses reductions across it, so draw from the others.
        candidates = list(range(1, rank)) + [-a for a in range(1, rank)]
        axes = [
            int(a) for a in rng.choice(candidates, size=int(rng.integers(1, rank + 1)))
        ]  # duplicates allowed
        in_q = (log_uniform(rng, 1e-5, 100.0), int(rng.integers(-128, 128)))
        out_q = (log_uniform(rng, 1e-5, 100.0), int(rng.integers(-128, 128)))
        assert_same_as_tflm(mean_model(shape, axes, keep_dims, in_q, out_q), random_batch(rng, shape))


def test_mean_extreme_scale_ratios_saturate_like_tflm():
    rng = np.random.default_rng(8)
    shape = (1, 3, 5, 7)
    for in_scale, out_scale in ((100.0, 1e-5), (1e-5, 100.0), (1.0, 1.0), (0.5, 2.0**-20)):
        model = mean_model(shape, [1, 2], True, (in_scale, 7), (out_scale, -9))
        assert_same_as_tflm(model, random_batch(rng, shape))
