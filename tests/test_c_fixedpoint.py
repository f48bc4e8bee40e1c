"""The engine's fixed-point primitives (ek_fixedpoint.h/.c) against the simulator's numpy
versions of TFLite Micro's arithmetic, on edge values (INT32_MIN/MAX, halves, every shift)
and random ones. Compiled once into a shared library and called through ctypes."""

from __future__ import annotations

import ctypes
import subprocess

import numpy as np
import pytest

from mcu_effnet.codegen.engine import runtime_sources
from mcu_effnet.sim import fixedpoint as fp
from mcu_effnet.sim.requantize import (
    multiply_by_quantized_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

I32 = np.iinfo(np.int32)
EDGES = np.array(
    [
        I32.min,
        I32.min + 1,
        -(2**30),
        -(2**30) - 1,
        -3,
        -2,
        -1,
        0,
        1,
        2,
        3,
        2**30,
        2**30 + 1,
        I32.max - 1,
        I32.max,
    ],
    np.int64,
)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("fixedpoint")
    for name, text in runtime_sources().items():
        (d / name).write_text(text)
    so = d / "libfixedpoint.so"
    cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-shared", "-fPIC", f"-I{d}"]
    cmd += [str(d / "ek_fixedpoint.c"), "tests/fixedpoint_shim.c", "-o", str(so)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(so))


def _call(lib, name: str, *arrays: np.ndarray, scalars: tuple[int, ...] = ()) -> np.ndarray:
    cols = [np.ascontiguousarray(a, dtype=np.int32) for a in arrays]
    out = np.zeros(cols[0].size, np.int32)
    ptr = ctypes.POINTER(ctypes.c_int32)
    args = [c.ctypes.data_as(ptr) for c in cols]
    args += [ctypes.c_int32(s) for s in scalars]
    args += [out.ctypes.data_as(ptr), ctypes.c_int32(out.size)]
    getattr(lib, name)(*args)
    return out.astype(np.int64)


def _random_int32(rng, n):
    return rng.integers(I32.min, I32.max, size=n, endpoint=True, dtype=np.int64)


def test_srdhm(lib):
    rng = np.random.default_rng(0)
    a = np.concatenate([np.repeat(EDGES, EDGES.size), _random_int32(rng, 20000)])
    b = np.concatenate([np.tile(EDGES, EDGES.size), _random_int32(rng, 20000)])
    np.testing.assert_array_equal(_call(lib, "shim_srdhm", a, b), saturating_rounding_doubling_high_mul(a, b))


def test_rdbpot(lib):
    rng = np.random.default_rng(1)
    x = np.concatenate([np.repeat(EDGES, 32), _random_int32(rng, 20000), rng.integers(-64, 64, 5000)])
    e = np.concatenate([np.tile(np.arange(32), EDGES.size), rng.integers(0, 32, 25000)])
    np.testing.assert_array_equal(_call(lib, "shim_rdbpot", x, e), rounding_divide_by_pot(x, e))


def test_divide_by_pot_with_the_exponent_fixed_per_call(lib):
    """The ADD kernel's division (exponent constants hoisted out of the loop) is RDBPOT's,
    halves away from zero included: every exact half for small exponents, random values below
    2^30 in magnitude (the kernel's are below 2^29; x + half must not wrap)."""
    rng = np.random.default_rng(3)
    e = np.concatenate([np.repeat(np.arange(1, 9), 512), rng.integers(0, 31, 20000)])  # exponents 0..30
    halves = (np.tile(np.arange(-256, 256), 8) << e[:4096]) + (1 << (e[:4096] - 1))
    x = np.concatenate([halves, rng.integers(-(2**30), 2**30, 20000)])
    np.testing.assert_array_equal(_call(lib, "shim_divide_by_pot_fixed", x, e), rounding_divide_by_pot(x, e))


def test_rounded_high_multiply_of_twice_a_value_is_srdhm(lib):
    rng = np.random.default_rng(4)
    a = np.concatenate([rng.integers(-(2**30) + 1, 2**30, 20000), np.arange(-255, 256) << 20])
    b = np.concatenate([_random_int32(rng, 20000), rng.integers(2**30, 2**31, 511)])
    np.testing.assert_array_equal(
        _call(lib, "shim_srdhm_of_half", a, b), saturating_rounding_doubling_high_mul(a, b)
    )


def test_multiply_by_quantized_multiplier(lib):
    rng = np.random.default_rng(2)
    n = 30000
    m = rng.integers(2**30, 2**31 - 1, size=n, endpoint=True)  # QuantizeMultiplier's range
    s = rng.integers(-31, 8, size=n)
    # inputs that stay inside int32 after the left shift, as in TFLite Micro's kernels
    x = rng.integers(-(2**20), 2**20, size=n) >> np.maximum(s, 0)
    x[: EDGES.size] = np.where(s[: EDGES.size] > 0, 0, EDGES)
    np.testing.assert_array_equal(_call(lib, "shim_mbqm", x, m, s), multiply_by_quantized_multiplier(x, m, s))


@pytest.mark.parametrize("integer_bits", [4, 5, 6])
def test_exp_on_negative_values(lib, integer_bits):
    rng = np.random.default_rng(integer_bits)
    a = np.concatenate([[0, -1, I32.min, I32.min + 1], -rng.integers(0, 2**31, size=20000)])
    got = _call(lib, "shim_exp", a, scalars=(integer_bits,))
    np.testing.assert_array_equal(got, fp.exp_on_negative_values(a, integer_bits))


def test_one_over_one_plus_x_and_logistic(lib):
    rng = np.random.default_rng(3)
    a = np.concatenate([[0, 1, I32.max - 1, I32.max], rng.integers(0, 2**31, size=20000)])
    np.testing.assert_array_equal(
        _call(lib, "shim_one_over_one_plus_x", a), fp.one_over_one_plus_x_for_x_in_0_1(a)
    )
    z = np.concatenate([EDGES[1:], _random_int32(rng, 20000)])  # the logistic of INT32_MIN is never asked for
    np.testing.assert_array_equal(_call(lib, "shim_logistic", z, scalars=(4,)), fp.logistic(z, 4))
