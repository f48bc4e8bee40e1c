"""Patch-based execution of the first layers (mcu_effnet.graph.tiling, sim.tiled, codegen.tile_plan,
the engine's TILED_SEGMENT).

Bit-exactness: randomized chains from the model input (1x1 / 3x3 / 5x5 convolutions with
stride 1 or 2, SAME and VALID, a dilated depthwise with a multiplier, element-wise ops, a
residual ADD inside the segment, odd sizes) cut into every number of bands, so band borders
fall on padding, strides and halos everywhere: the simulator's tiled reference equals the
untiled simulator, itself checked against TFLite Micro; the generated engine (host, ASan/UBSan,
plain C and DSP kernels) with a segment of drawn length and band count against TFLite Micro;
one QEMU run (qemu-m4, DSP kernels). Recompute accounting against a count of the rows each band
computes. Planning: VWW's first stages tiled within the limit; the limit's and the command
line's refusals (one line, exit 2).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from host_engine import HostRuntime
from public_models import mobilenet_v1_025
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.codegen import tile_plan
from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.errors import UserError
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


@pytest.mark.parametrize("seed", range(4))
def test_band_buffers_live_at_once_never_share_bytes(seed):
    # packed by lifetime within a band: an op's output never lands on rows it still reads, the
    # residual's operand survives until the ADD, and the scratch is below the buffers' sum
    graph = load_tflite(tile_chain(seed))
    (chain,) = chains(graph)
    for n in range(3, len(chain) + 1):
        seg = segment(graph, chain[:n], int(np.random.default_rng(seed + n).integers(1, 6)))
        slots = seg.slots()
        for t in seg.intermediate:
            first, last = seg.lifetime(t)
            readers = [k for k, op in enumerate(chain[:n]) if t in op.inputs[:2]]
            assert first == chain[:n].index(next(op for op in chain if op.outputs[0] == t))
            assert last == max(readers)
            for u in seg.intermediate:
                a, b = seg.lifetime(u)
                if u != t and a <= last and first <= b:  # live at one step: disjoint bytes
                    assert (
                        slots[t] + seg.slot_bytes(t) <= slots[u] or slots[u] + seg.slot_bytes(u) <= slots[t]
                    ), (n, t, u)
            assert slots[t] + seg.slot_bytes(t) <= seg.scratch_bytes
        summed = sum(-(-seg.slot_bytes(t) // 4) * 4 for t in seg.intermediate)
        assert seg.scratch_bytes <= summed
        if n >= 4:  # the first band buffers are dead by the time the last ones are made
            assert seg.scratch_bytes < summed


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


@pytest.fixture
def plain(host_plain) -> HostRuntime:
    return host_plain


@pytest.fixture
def dsp(host_dsp) -> HostRuntime:
    return host_dsp


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


@pytest.mark.parametrize("seed", range(2))
def test_tiled_output_over_its_input_is_bit_exact_with_tflite_micro(plain, dsp, seed):
    # stride 4 overall: each band's output rows end before the input rows later bands read, so
    # the output is written over the input (Segment.overwrites_source)
    rng = np.random.default_rng(seed)
    b = ModelBuilder(rng)
    x = b.input((1, int(rng.integers(17, 30)), int(rng.integers(9, 20)), 3))
    x = b.conv2d(x, int(rng.integers(4, 9)), (3, 3), (2, 2), activation="RELU6")
    b.outputs = [b.depthwise(x, (3, 3), (2, 2), padding=str(rng.choice(["SAME", "VALID"])))]
    model = b.build()
    graph = load_tflite(model)
    x = rng.integers(-128, 128, size=(3, *graph.tensors[graph.inputs[0]].shape[1:])).astype(np.int8)
    expected = np.asarray(run_tflm(model, x)).reshape(3, -1)
    tiles = int(graph.tensors[graph.outputs[0]].shape[1])  # one output row per band
    for name, host, kw in (("plain", plain, {}), ("dsp", dsp, {"dsp": True})):
        engine = tiled_engine(graph, 2, tiles, **kw)
        tiled = engine.graph.ops[0]
        assert tiled.attrs["segment"].overwrites_source and tiled.index in engine.plan.in_place_ops, name
        np.testing.assert_array_equal(host.run_engine(engine, x), expected, err_msg=name)


def test_vww_first_stages_are_tiled_within_the_recompute_limit():
    # MobileNetV1-0.25 VWW: the peak is the 96x96x3 input with the first conv's 48x48x8 output;
    # its first four layers run in bands, their output written over the input's dead rows.
    graph = load_tflite(mobilenet_v1_025(0))
    untiled = generate_engine(graph, max_recompute=0)  # its first conv has a halo: nothing to tile for free
    assert untiled.plan.tiling == {} and untiled.graph.ops[0].kind != TILED
    for limit in (10.0,):
        engine = generate_engine(graph, max_recompute=limit)
        tiled = engine.plan.tiling
        assert engine.graph.ops[0].kind == TILED and tiled["ops"] == engine.graph.ops[0].attrs["fused_ops"]
        assert 0 < tiled["recomputed_percent"] <= limit and tiled["max_recompute"] == limit
        assert tiled["arena_before"] == untiled.arena_bytes
        assert engine.arena_bytes <= untiled.arena_bytes * (1 - tile_plan.MIN_GAIN)
        text = engine.plan.describe(engine.graph)
        assert f"tiled in {tiled['tiles']} bands" in text and "MACs recomputed" in text
        assert engine.plan.to_dict(engine.graph)["tiling"] == tiled


@pytest.mark.parametrize("limit", [-1.0, 100.5, float("nan")])
def test_a_recompute_limit_outside_0_to_100_is_refused(limit):
    graph = load_tflite(tile_chain(0))
    with pytest.raises(UserError, match=r"^max_recompute .* is outside 0-100 %"):
        generate_engine(graph, max_recompute=limit)


@pytest.mark.toolchain
def test_tiled_engine_runs_bit_exact_on_qemu_m4(tmp_path):
    from mcu_effnet.codegen import toolchain
    from mcu_effnet.codegen.project import write_project

    model = tile_chain(5)
    graph = load_tflite(model)
    engine = tiled_engine(graph, len(graph.ops), 5, dsp=True)  # the whole chain, DSP kernels
    project = write_project(graph, "qemu-m4", tmp_path / "fw", model_bytes=model, engine=engine)
    model_c = (project.path / "model" / "model.c").read_text()
    assert "_dsp_band(&" in model_c and "ek_add(&" in model_c
    elf = toolchain.make(project.path, "qemu")
    x = np.random.default_rng(5).integers(-128, 128, size=(3, *graph.tensors[graph.inputs[0]].shape[1:]))
    x = x.astype(np.int8)
    result = toolchain.run_qemu(
        project.board, elf, inputs=x.reshape(3, -1), output_bytes=project.report["output_bytes"]
    )
    assert result.status == 0 and result.check_ok, result.stdout[-2000:]
    np.testing.assert_array_equal(result.outputs, np.asarray(run_tflm(model, x)).reshape(3, -1))


# ---- the command line -------------------------------------------------------------------------


def _one_error_line(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mcu-effnet: error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("value", ["150", "-5"])  # NaN: test_a_recompute_limit_outside_0_to_100_is_refused
def test_cli_refuses_a_recompute_limit_outside_0_to_100(cli, tmp_path, value):
    model = tmp_path / "m.tflite"
    model.write_bytes(tile_chain(0))
    line = _one_error_line(
        cli("codegen", model, "--board", "qemu-m4", "--out", tmp_path / "fw", "--max-recompute", value)
    )
    assert "--max-recompute" in line and "outside 0-100 %" in line
    assert not (tmp_path / "fw").exists()


def test_cli_shows_the_tiled_plan_and_refuses_a_model_it_does_not_make_fit(cli, tmp_path):
    model = tmp_path / "vww.tflite"
    model.write_bytes(mobilenet_v1_025(0))
    result = cli("codegen", model, "--board", "qemu-m4", "--out", tmp_path / "fw", "--no-build")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "fw" / "report.json").read_text())
    tiled = report["memory_plan"]["tiling"]
    first, last = tiled["ops"][0], tiled["ops"][-1]
    assert (
        f"tiled: ops {first}-{last} in {tiled['tiles']} bands, peak {tiled['peak_before']} -> "
        in result.stdout
    )
    assert "--max-recompute 10)" in result.stdout
    # a map too large for the board even in bands: the input alone is most of its RAM
    b = ModelBuilder(np.random.default_rng(0))
    x = b.conv2d(b.input((1, 200, 200, 3)), 16, (3, 3), (2, 2), activation="RELU")
    x = b.depthwise(x, (3, 3), (2, 2), activation="RELU")
    b.outputs = [b.conv2d(x, 8, (1, 1))]
    model.write_bytes(b.build())
    line = _one_error_line(
        cli("codegen", model, "--board", "stm32f405", "--out", tmp_path / "big", "--no-build")
    )
    assert (
        "needs" in line
        and "even with its first layers tiled (ops 0-" in line
        and "--max-recompute 10 %" in line
    )
    assert not (tmp_path / "big").exists()


def test_run_profile_on_a_project_built_without_it_says_how_to_rebuild(cli, tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(tile_chain(1))
    fw = tmp_path / "fw"
    assert (
        cli(
            "codegen", model, "--board", "qemu-m4", "--out", fw, "--no-build", "--max-recompute", "5"
        ).returncode
        == 0
    )
    line = _one_error_line(cli("run", fw, "--profile"))
    assert "generated without profiling" in line
    assert f"mcu-effnet codegen {model} --board qemu-m4 --max-recompute 5 --profile --out {fw}" in line
