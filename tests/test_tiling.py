"""Patch-based execution of the first layers (mcu_effnet.graph.tiling, mcu_effnet.sim.tiled).

Bit-exactness: randomized chains from the model input (3x3 / 5x5 / 1x1 convolutions with
stride 1 or 2, SAME and VALID, dilation, depthwise with a multiplier, element-wise ops,
residual ADDs inside the segment, odd sizes) cut into every number of bands, so band borders
fall on padding, strides and halos everywhere: the tiled reference equals the untiled
simulator, itself checked against TFLite Micro. Recompute accounting: against a count of the
rows each band computes.
"""

from __future__ import annotations

import numpy as np
import pytest
from host_engine import HostRuntime
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.graph import load_tflite
from mcu_effnet.graph.planner import check_plan, plan_arena
from mcu_effnet.graph.tiling import TILED, bands, chains, closed, fuse, segment
from mcu_effnet.ops.registry import op_macs
from mcu_effnet.sim import run as sim_run
from mcu_effnet.sim.tiled import run_segment


def tile_chain(seed: int) -> bytes:
    """input -> conv k x k (stride 1 or 2) -> element-wise -> depthwise -> a residual pair of
    convolutions + ADD -> a 1x1 -> a stride-2 depthwise (the output): odd sizes, SAME or VALID."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder(rng)
    h, w = (int(v) for v in rng.integers(9, 24, size=2))
    pad = lambda: str(rng.choice(["SAME", "VALID"]))  # noqa: E731
    k = int(rng.choice([1, 3, 5]))
    s = int(rng.choice([1, 2]))
    x = b.input((1, h, w, int(rng.integers(1, 4))))
    x = b.conv2d(x, int(rng.integers(3, 9)), (k, k), (s, s), padding=pad())
    x = b.unary(str(rng.choice(["RELU", "RELU6"])), x)
    dil = int(rng.choice([1, 2]))
    x = b.depthwise(x, (3, 3), padding="SAME", dilation=(dil, dil), depth_multiplier=int(rng.choice([1, 2])),
                    activation="RELU6")  # fmt: skip
    c = b.info[x].shape[3]
    y = b.conv2d(x, c, (3, 3), activation="RELU")
    y = b.conv2d(y, c, (3, 3))
    x = b.add(x, y) if rng.integers(2) else b.add(y, x)
    x = b.conv2d(x, int(rng.integers(2, 7)), (1, 1), activation="RELU")
    b.outputs = [b.depthwise(x, (3, 3), (2, 2), padding=pad())]
    return b.build()


@pytest.mark.parametrize("seed", range(8))
def test_tiled_segments_are_bit_exact_with_the_untiled_simulator(seed):
    model = tile_chain(seed)
    graph = load_tflite(model)
    x = np.random.default_rng(seed).integers(-128, 128, size=(3, *graph.tensors[graph.inputs[0]].shape[1:]))
    x = x.astype(np.int8)
    every = sim_run(graph, x, capture=True)
    np.testing.assert_array_equal(
        np.asarray(run_tflm(model, x)).reshape(3, -1), every[graph.outputs[0]].reshape(3, -1)
    )
    (chain,) = chains(graph)
    assert len(chain) == len(graph.ops)  # every op of the chain qualifies
    for n in range(2, len(chain) + 1):
        last = chain[n - 1].outputs[0]
        height = graph.tensors[last].shape[1]
        for tiles in range(1, height + 1):
            seg = segment(graph, chain[:n], tiles)
            np.testing.assert_array_equal(
                run_segment(graph, seg, x), every[last], err_msg=f"{n} ops, {tiles} bands"
            )


def test_recomputed_macs_count_the_rows_each_band_computes_again():
    graph = load_tflite(tile_chain(3))
    (chain,) = chains(graph)
    seg = segment(graph, chain, 4)
    per_row = {op.index: op_macs(graph, op) // graph.tensors[op.outputs[0]].shape[1] for op in chain}
    rows_done = {op.index: 0 for op in chain}
    for band in seg.bands:
        for k, op in enumerate(chain):
            lo, hi = band[k + 1]
            rows_done[op.index] += hi - lo
    counted = sum(
        per_row[op.index] * (rows_done[op.index] - graph.tensors[op.outputs[0]].shape[1]) for op in chain
    )
    assert seg.recomputed_macs == counted > 0
    assert segment(graph, chain, 1).recomputed_macs == 0  # one band computes each row once
    assert seg.macs == sum(op_macs(graph, op) for op in chain)


def test_bands_cover_the_rows_once():
    for height in range(1, 30):
        for tiles in range(1, height + 3):
            rows = [r for lo, hi in bands(height, tiles) for r in range(lo, hi)]
            assert rows == list(range(height))


def test_a_chain_stops_where_an_intermediate_output_is_read_outside():
    b = ModelBuilder(np.random.default_rng(0))
    x = b.conv2d(b.input((1, 12, 12, 3)), 4, (3, 3))
    y = b.conv2d(x, 4, (3, 3))
    z = b.conv2d(y, 4, (3, 3))
    b.outputs = [b.add(z, b.pool("MAX_POOL_2D", y, (1, 1), (1, 1)))]  # y is read outside the chain
    graph = load_tflite(b.build())
    (chain,) = chains(graph)
    assert [op.outputs[0] for op in chain] == [x, y]


def tiled_engine(graph, n: int, tiles: int, **kw):
    """The engine with the first ``n`` ops of the chain tiled in ``tiles`` bands, nothing else fused."""
    (chain,) = chains(graph)
    fused = fuse(graph, segment(graph, chain[:n], tiles))
    plan = plan_arena(fused)
    check_plan(plan)
    return generate_engine(fused, plan, fuse=False, **kw)


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> HostRuntime:
    return HostRuntime(tmp_path_factory.mktemp("tiled_plain"))


@pytest.fixture(scope="module")
def dsp(tmp_path_factory) -> HostRuntime:
    return HostRuntime(tmp_path_factory.mktemp("tiled_dsp"), dsp=True)


@pytest.mark.parametrize("seed", range(4))
def test_tiled_engine_is_bit_exact_with_tflite_micro(plain, dsp, seed):
    model = tile_chain(seed)
    graph = load_tflite(model)
    x = np.random.default_rng(seed).integers(-128, 128, size=(3, *graph.tensors[graph.inputs[0]].shape[1:]))
    x = x.astype(np.int8)
    expected = np.asarray(run_tflm(model, x)).reshape(3, -1)
    rng = np.random.default_rng(50 + seed)
    (chain,) = chains(graph)
    ends = [n for n in range(2, len(chain) + 1) if closed(graph, chain[:n])]
    n = int(rng.choice(ends))  # the segment ends at any op it may; the rest runs whole
    height = int(graph.tensors[graph.ops[n - 1].outputs[0]].shape[1])
    tiles = int(rng.integers(2, height + 1))
    for name, host, kw in (
        ("plain", plain, {}),
        ("dsp", dsp, {"dsp": True}),
        ("dsp 1x1 kernels", dsp, {"dsp": True, "widen_budget": 0}),
    ):
        engine = tiled_engine(graph, n, tiles, **kw)
        assert engine.graph.ops[0].kind == TILED, name
        np.testing.assert_array_equal(
            host.run_engine(engine, x), expected, err_msg=f"{name}: {n} ops, {tiles} bands"
        )
