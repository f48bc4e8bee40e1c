"""mcu_effnet.oracle: reading reference outputs as codes, top-1 agreement, the interpreter's arena."""

from __future__ import annotations

import numpy as np
from tflite_builder import random_mbconv

from mcu_effnet.graph import load_tflite
from mcu_effnet.oracle import TflmRunner, arena_size, float_codes, top1, top1_agreement


def test_float_codes_round_half_away_from_zero_and_saturate():
    # TFLite's QUANTIZE rounds ties away from zero (ONNX's QuantizeLinear would give 2 and -2)
    got = float_codes(np.array([2.5, -2.5, 0.5, -0.4, 1e4, -1e4]), 1.0, 0)
    assert got.dtype == np.int8 and got.tolist() == [3, -3, 1, 0, 127, -128]
    assert float_codes(np.array([0.0, 300.0]), 1.0, -128, "uint8").tolist() == [0, 172]


def test_float_codes_recover_the_codes_of_dequantized_values():
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 128, size=1000)
    scale, zero_point = np.float32(0.0371), -7
    y = ((q - zero_point) * scale).astype(np.float32)  # what a DequantizeLinear output holds
    np.testing.assert_array_equal(float_codes(y, scale, zero_point), q)


def test_top1_agreement_admits_any_of_the_references_tied_maxima():
    reference = np.array([[5, 5, 1], [1, 2, 3]], dtype=np.int8)
    actual = np.array([[0, 9, 0], [3, 2, 1]], dtype=np.int8)
    assert top1(actual).tolist() == [1, 0]
    assert top1_agreement(reference, actual) == 0.5
    assert top1_agreement(reference, reference) == 1.0


def test_runner_keeps_one_interpreter_and_reads_a_model_file(tmp_path):
    model = random_mbconv(np.random.default_rng(5))
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    assert arena_size(model) > 10 * len(model)
    shape = load_tflite(model).input_tensors[0].shape
    x = np.random.default_rng(1).integers(-128, 128, size=(3, *shape[1:]), dtype=np.int8)
    runner = TflmRunner(path)
    batched = runner.run(x)[0]
    np.testing.assert_array_equal(batched[1:2], runner.run_one(x[1:2])[0])
    np.testing.assert_array_equal(batched, TflmRunner(model).run(x)[0])
