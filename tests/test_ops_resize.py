"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR (int8): randomized sizes and both flags against the
TFLite Micro interpreter in the simulator and the generated engine on the host (ASan/UBSan),
and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
from data_movement_builder import resize
from op_checks import engine_matches_tflm, random_batch, sim_matches_tflm
from tflite_builder import ModelBuilder

from mcu_effnet.errors import UserError
from mcu_effnet.graph import load_tflite

FLAGS = [(False, False), (True, False), (False, True), (True, True)]


def _model(rng: np.random.Generator, bilinear: bool, flags: tuple[bool, bool]) -> bytes:
    b = ModelBuilder(rng)
    h, w, c = (int(v) for v in rng.integers(1, 7, size=3))
    size = tuple(int(v) for v in rng.integers(1, 13, size=2))
    b.outputs = [resize(b, b.input((1, h, w, c)), size, bilinear, *flags)]
    return b.build()


def _cases(bilinear: bool):
    flags = FLAGS[:3] if bilinear else FLAGS  # bilinear refuses both flags at once
    return [(f, s) for f in flags for s in range(8)]


@pytest.mark.parametrize("bilinear", [False, True], ids=["nearest", "bilinear"])
def test_simulator_matches_tflite_micro(bilinear):
    for flags, seed in _cases(bilinear):
        rng = np.random.default_rng(seed + 100 * FLAGS.index(flags) + 1000 * bilinear)
        model = _model(rng, bilinear, flags)
        sim_matches_tflm(model, random_batch(rng, load_tflite(model), 6))


@pytest.mark.parametrize("bilinear", [False, True], ids=["nearest", "bilinear"])
@pytest.mark.parametrize("flags", FLAGS[:3], ids=["plain", "align_corners", "half_pixel"])
def test_engine_on_the_host_matches_tflite_micro(host, bilinear, flags):
    rng = np.random.default_rng(7 + FLAGS.index(flags) + 10 * bilinear)
    model = _model(rng, bilinear, flags)
    graph = load_tflite(model)
    engine_matches_tflm(host, model, random_batch(rng, graph, 24), graph)


def test_bilinear_with_both_flags_is_refused():
    b = ModelBuilder(np.random.default_rng(0))
    b.outputs = [resize(b, b.input((1, 4, 4, 2)), (8, 8), True, True, True)]
    with pytest.raises(UserError, match=r"op 0 \(RESIZE_BILINEAR\): align_corners and half_pixel_centers"):
        load_tflite(b.build())


def test_bilinear_reading_past_the_input_is_refused():
    """1 row upsampled to 55: the Q10 scale rounds 18.6 up to 19, so the last output row's lower
    bound is row 1 (54 * 19 = 1026), past the input."""
    b = ModelBuilder(np.random.default_rng(0))
    b.outputs = [resize(b, b.input((1, 1, 2, 2)), (55, 2), True)]
    with pytest.raises(UserError, match="reads past the input"):
        load_tflite(b.build())


def test_size_that_disagrees_with_the_output_is_refused():
    b = ModelBuilder(np.random.default_rng(0))
    x = b.input((1, 4, 4, 2))
    y = b.activation("r", (1, 8, 8, 2), *b.qparams(x))
    size = b.add_tensor("size", (2,), "int32", data=np.array([8, 6], np.int32))
    b.add_op("RESIZE_NEAREST_NEIGHBOR", [x, size], [y])
    b.outputs = [y]
    with pytest.raises(
        UserError, match=r"op 0 \(RESIZE_NEAREST_NEIGHBOR\): output .* expected \[1, 8, 6, 2\]"
    ):
        load_tflite(b.build())
