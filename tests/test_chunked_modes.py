"""The planner's chunked modes (mcu_effnet.graph.planner, mcu_effnet.codegen.fuse_add and
fuse_lines): a 1x1 convolution in place over its input (out_c <= in_c), a residual ADD fused
into the convolution producing one operand, written over the other operand a few pixels at a
time, and a 1x1 convolution feeding a depthwise one run row by row.

Bit-exactness: randomized residual chains (3x3 and 1x1 convolutions, stride 2 shortcuts, odd
sizes, padding at chunk borders, either operand order) through TFLite Micro, the simulator and
the generated engine on the host under ASan/UBSan, plain C and DSP kernels (1x1 layers on the
k x k kernel with widened weights, or on the 1x1 kernels), every mode forced at every op it
applies to. Planning: the modes lower the peak on ResNet-8, DS-CNN and VWW and are left out
where they would not. One QEMU run (qemu-m4) covers the three modes on the DSP path.
"""

from __future__ import annotations

import numpy as np
import pytest
from host_engine import HostRuntime
from public_models import ds_cnn, mobilenet_v1_025, resnet8
from test_planner import execute_plan
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.cli.codegen import plan_summary
from mcu_effnet.codegen import fuse_add, fuse_lines
from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.graph import load_tflite, planner
from mcu_effnet.graph.op_order import plan_memory
from mcu_effnet.graph.planner import (
    CONV_ADD,
    CONV_DEPTHWISE,
    check_plan,
    plan_arena,
    pointwise_in_place_chunk,
)
from mcu_effnet.sim import run as sim_run


def residual_chain(seed: int) -> bytes:
    """stem 3x3 -> 1x1 narrowing -> a block of two 3x3 convs + ADD -> a stride-2 block (3x3 s2, 3x3, 1x1 s2
    shortcut, ADD) -> an MBConv (1x1 expand, depthwise, 1x1 project + ADD) -> a 1x1 that
    narrows the channels, the output. Sizes, channels, padding and operand order drawn."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder(rng)
    h, w = (int(v) for v in rng.integers(6, 12, size=2))
    c = int(rng.integers(4, 10))
    pad = str(rng.choice(["SAME", "VALID"]))

    def add(p: int, q: int) -> int:
        act = str(rng.choice(["NONE", "RELU"]))
        return b.add(p, q, activation=act) if rng.integers(2) else b.add(q, p, activation=act)

    x = b.conv2d(b.input((1, h, w, int(rng.integers(1, 4)))), c + 3, (3, 3), activation="RELU")
    x = b.conv2d(x, c, (1, 1), activation="RELU")  # narrows: runs in place (full resolution)
    y = b.conv2d(x, c, (3, 3), activation="RELU")
    y = b.conv2d(y, c, (3, 3))
    x = add(x, y)
    c2 = c + int(rng.integers(1, 6))
    y = b.conv2d(x, c2, (3, 3), (2, 2), padding=pad, activation="RELU")
    y = b.conv2d(y, c2, (3, 3))
    shortcut = b.conv2d(x, c2, (1, 1), (2, 2), padding=pad)
    x = add(shortcut, y) if b.info[shortcut].shape == b.info[y].shape else y
    e = b.conv2d(x, 3 * c2, (1, 1), activation="RELU6")
    e = b.depthwise(e, (3, 3), activation="RELU6")
    x = add(b.conv2d(e, c2, (1, 1)), x)
    # the output is the last map itself: a pooled classifier would hide most wrong values
    b.outputs = [b.conv2d(x, max(1, c2 - int(rng.integers(0, 4))), (1, 1))]
    return b.build()


def expand_chain(seed: int) -> bytes:
    """Two MBConv-like pairs, 1x1 expand -> depthwise: kernel 3 or 5 (dilation 1 or 2 on the
    first), stride 1 or 2, SAME or VALID, odd sizes, a depth multiplier of 2 on the second."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder(rng)
    h, w = (int(v) for v in rng.integers(5, 14, size=2))
    x = b.input((1, h, w, int(rng.integers(1, 5))))
    for k, mult in ((0, 1), (1, 2)):
        c = int(rng.integers(3, 12))
        e = b.conv2d(x, c, (1, 1), activation=str(rng.choice(["RELU6", "NONE"])))
        kernel = int(rng.choice([3, 5]))
        stride = int(rng.choice([1, 2]))
        dil = int(rng.choice([1, 2])) if k == 0 and stride == 1 else 1
        pad = str(rng.choice(["SAME", "VALID"])) if min(b.info[e].shape[1:3]) > (kernel - 1) * dil else "SAME"
        x = b.depthwise(e, (kernel, kernel), (stride, stride), pad, (dil, dil), depth_multiplier=mult)
    b.outputs = [x]
    return b.build()


def forced_engine(graph, **kw):
    """The engine with every candidate fused and every 1x1 in place where it applies."""
    fused = fuse_lines.fuse(fuse_add.fuse(graph, fuse_add.candidates(graph)), fuse_lines.candidates(graph))
    plan = plan_arena(fused)
    check_plan(plan)
    execute_plan(fused, plan)
    return generate_engine(fused, plan, fuse=False, **kw)


@pytest.fixture
def plain(host_plain) -> HostRuntime:
    return host_plain


@pytest.fixture
def dsp(host_dsp) -> HostRuntime:
    return host_dsp


# (seed, scratch bytes the chunks aim at, pixel block): the defaults, and chunks that split
# output rows at odd places (1 byte, block 1: one pixel per chunk), so windows in the padding
# fall on chunk borders
CASES = [(0, 128, 6), (1, 128, 6), (2, 128, 6), (3, 20, 1), (4, 20, 1), (5, 1, 1)]


@pytest.mark.parametrize(("seed", "chunk_bytes", "block"), CASES)
def test_forced_modes_are_bit_exact_with_tflite_micro(plain, dsp, seed, chunk_bytes, block, monkeypatch):
    monkeypatch.setattr(planner, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(planner, "CHUNK_PIXEL_BLOCK", block)
    model = residual_chain(seed)
    graph = load_tflite(model)
    rng = np.random.default_rng(100 + seed)
    x = rng.integers(-128, 128, size=(6, *graph.tensors[graph.inputs[0]].shape[1:]), dtype=np.int8)
    expected = np.asarray(sim_run(graph, x)).reshape(6, -1)
    np.testing.assert_array_equal(np.asarray(run_tflm(model, x)).reshape(6, -1), expected)
    engines = {
        "plain": (plain, forced_engine(graph)),
        "dsp": (dsp, forced_engine(graph, dsp=True)),
        "dsp 1x1 kernels": (dsp, forced_engine(graph, dsp=True, widen_budget=0)),
    }
    for name, (host, engine) in engines.items():
        plan = engine.plan
        assert sum(op.kind == CONV_ADD for op in engine.graph.ops) >= 2, name
        assert any("1x1 in place" in m for m in plan.modes.values()), (name, plan.modes)
        np.testing.assert_array_equal(host.run_engine(engine, x), expected, err_msg=name)
    model_c = engines["dsp 1x1 kernels"][1].files["model.c"]
    assert "_add(&" in model_c and "_in_place(&" in model_c


@pytest.mark.parametrize("seed", range(6))
def test_forced_rows_of_1x1_then_depthwise_are_bit_exact_with_tflite_micro(plain, dsp, seed):
    model = expand_chain(seed)
    graph = load_tflite(model)
    x = np.random.default_rng(seed).integers(-128, 128, size=(6, *graph.tensors[graph.inputs[0]].shape[1:]))
    x = x.astype(np.int8)
    expected = np.asarray(sim_run(graph, x)).reshape(6, -1)
    np.testing.assert_array_equal(np.asarray(run_tflm(model, x)).reshape(6, -1), expected)
    for name, host, kw in (
        ("plain", plain, {}),
        ("dsp", dsp, {"dsp": True}),
        ("dsp 1x1 kernels", dsp, {"dsp": True, "widen_budget": 0}),
    ):
        engine = forced_engine(graph, **kw)
        assert [op.kind for op in engine.graph.ops] == [CONV_DEPTHWISE] * 2, name
        np.testing.assert_array_equal(host.run_engine(engine, x), expected, err_msg=name)


def test_fused_add_and_1x1_in_place_lower_the_peak_where_they_are_chosen():
    # ResNet-8: the first block's conv -> ADD is fused (its peak: block input + both convs'
    # outputs); the later blocks are not at the peak and keep their plain kernels.
    graph = load_tflite(resnet8(0))
    engine = generate_engine(graph, max_recompute=None)  # no tiling (test_tiling): the chunked modes alone
    unfused = plan_memory(graph)
    assert [f.to_dict()["replaces"] for f in engine.fusions] == [[2, 3]]
    assert engine.plan.peak_bytes < unfused.peak_bytes and engine.arena_bytes < unfused.arena_bytes
    assert engine.arena_bytes <= 32 * 1024 + 128  # input and two convs' outputs: one map less
    assert "conv 2 + ADD 3 fused" in engine.plan.describe(engine.graph)
    report = {**engine.plan.to_dict(engine.graph), "fused": [f.to_dict() for f in engine.fusions]}
    assert "1 convolution(s) fused with the next op" in plan_summary(report)
    # DS-CNN: every 1x1 64 -> 64 runs over its input
    graph = load_tflite(ds_cnn(0))
    plan = plan_memory(graph)
    pointwise = [op.index for op in graph.ops if pointwise_in_place_chunk(graph, op) is not None]
    assert pointwise and set(pointwise) <= set(plan.in_place_ops)
    plain_plan = plan_arena(graph, order=plan.order, plain=frozenset(pointwise))
    assert plan.peak_bytes < plain_plan.peak_bytes
    assert all(f"op {i}: 1x1 in place" in plan.describe(graph) for i in pointwise)
    assert plan.to_dict(graph)["modes"] == {str(i): plan.modes[i] for i in pointwise}


def test_modes_that_would_not_lower_the_arena_are_left_out():
    # VWW: its peak is the first 1x1 (8 -> 16 channels at 48x48) with its input and the stride-2
    # depthwise after it; that pair runs by rows. Every later 1x1 -> depthwise pair could too,
    # and the 1x1 layers could run in place, but none is at the peak: they keep their kernels.
    graph = load_tflite(mobilenet_v1_025(0))
    engine = generate_engine(graph, max_recompute=None)  # no tiling (test_tiling): the chunked modes alone
    assert len(fuse_lines.candidates(graph)) == 12  # every 1x1 but the last feeds a depthwise
    assert [f.to_dict()["replaces"] for f in engine.fusions] == [[2, 3]]
    assert list(engine.plan.modes) == [3] and "by rows" in engine.plan.modes[3]
    assert engine.plan.plain  # 1x1 in-place candidates were tried and dropped
    assert engine.arena_bytes < plan_memory(graph).arena_bytes
    # a 1x1 whose scratch would not be smaller than its output is no candidate
    b = ModelBuilder(np.random.default_rng(0))
    y = b.conv2d(b.conv2d(b.input((1, 1, 1, 3)), 64, (1, 1)), 8, (1, 1))
    b.outputs = [y]
    graph = load_tflite(b.build())
    assert pointwise_in_place_chunk(graph, graph.ops[1]) is None


@pytest.mark.parametrize(("size", "depth"), [(24, 16), (24, 32), (7, 100), (7, 480)])
def test_in_place_chunks_hold_whole_pixel_blocks(size, depth):
    # The DSP 1x1 kernels block two or three pixels; a 128-byte chunk of 480-deep rows was one
    # pixel per call (their one-pixel loop), of 32-deep rows four (3 + a lone pixel).
    b = ModelBuilder(np.random.default_rng(depth))
    x = b.conv2d(b.input((1, size, size, 3)), depth, (1, 1))
    b.outputs = [b.conv2d(x, depth // 2, (1, 1))]
    graph = load_tflite(b.build())
    chunk = pointwise_in_place_chunk(graph, graph.ops[1])
    assert chunk is not None and chunk % planner.CHUNK_PIXEL_BLOCK == 0
    assert chunk * depth <= max(planner.CHUNK_BYTES, planner.CHUNK_PIXEL_BLOCK * depth)


def test_an_add_whose_other_operand_is_the_convolutions_input_is_not_fused():
    b = ModelBuilder(np.random.default_rng(4))
    x = b.conv2d(b.input((1, 6, 6, 4)), 8, (3, 3))
    b.outputs = [b.add(x, b.conv2d(x, 8, (3, 3)))]
    graph = load_tflite(b.build())
    assert fuse_add.candidates(graph) == []


@pytest.mark.toolchain
def test_both_modes_run_bit_exact_on_qemu_m4(tmp_path):
    from mcu_effnet.codegen import toolchain
    from mcu_effnet.codegen.project import write_project

    model = residual_chain(3)
    graph = load_tflite(model)
    engine = forced_engine(graph, dsp=True, widen_budget=0)  # the k x k and the 1x1 DSP kernels
    assert any(op.kind == CONV_DEPTHWISE for op in engine.graph.ops)
    project = write_project(graph, "qemu-m4", tmp_path / "fw", model_bytes=model, engine=engine)
    model_c = (project.path / "model" / "model.c").read_text()
    kernels = ("ek_conv2d_dsp_add(&", "ek_conv2d_1x1_dsp", "_add(&", "_in_place(&", "ek_expand_depthwise(")
    for kernel in kernels:
        assert kernel in model_c, kernel
    elf = toolchain.make(project.path, "qemu")
    x = np.random.default_rng(3).integers(-128, 128, size=(3, *graph.tensors[graph.inputs[0]].shape[1:]))
    result = toolchain.run_qemu(
        project.board,
        elf,
        inputs=x.astype(np.int8).reshape(3, -1),
        output_bytes=project.report["output_bytes"],
    )
    assert result.status == 0 and result.check_ok, result.stdout[-2000:]
    np.testing.assert_array_equal(
        result.outputs, np.asarray(sim_run(graph, x.astype(np.int8))).reshape(3, -1)
    )
