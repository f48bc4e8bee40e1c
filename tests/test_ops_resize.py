"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR (int8): randomized sizes and both flags against the
TFLite Micro interpreter in the simulator and the generated engine on the host (ASan/UBSan),
and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
from data_movement_builder import resize
from host_engine import HostRuntime
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.errors import UserError
from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as sim_run

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
        graph = load_tflite(model)
        x = rng.integers(-128, 128, size=(6, *graph.input_tensors[0].shape[1:]), dtype=np.int8)
        np.testing.assert_array_equal(sim_run(graph, x), run_tflm(model, x), err_msg=f"{flags} seed {seed}")


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> HostRuntime:
    return HostRuntime(tmp_path_factory.mktemp("resize"))


@pytest.mark.parametrize("bilinear", [False, True], ids=["nearest", "bilinear"])
@pytest.mark.parametrize("flags", FLAGS[:3], ids=["plain", "align_corners", "half_pixel"])
def test_engine_on_the_host_matches_tflite_micro(host, bilinear, flags):
    rng = np.random.default_rng(7 + FLAGS.index(flags) + 10 * bilinear)
    model = _model(rng, bilinear, flags)
    graph = load_tflite(model)
    x = rng.integers(-128, 128, size=(24, *graph.input_tensors[0].shape[1:]), dtype=np.int8)
    expected = np.asarray(run_tflm(model, x)).reshape(len(x), -1)
    np.testing.assert_array_equal(host.run_engine(generate_engine(graph), x), expected)


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
