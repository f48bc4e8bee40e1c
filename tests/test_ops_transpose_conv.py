"""TRANSPOSE_CONV (int8, per-channel) against the TFLite Micro interpreter.

Randomized single-op models (kernel sizes, strides 1 and 2, SAME and VALID, with and without
bias, per-tensor or per-channel weights, fused activations) in the simulator and in the
generated C engine built for the host under ASan/UBSan; the planner's int32 scratch buffer;
the MAC count against a count of the reference's multiplies; a decoder-like chain in QEMU.
"""

from __future__ import annotations

import numpy as np
import pytest
from host_engine import HostRuntime
from op_checks import assert_varied, engine_matches_tflm, random_batch, refusal, sim_matches_tflm
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.graph import load_tflite
from mcu_effnet.graph.op_order import order_peak, plan_memory
from mcu_effnet.graph.planner import check_plan
from mcu_effnet.graph.stats import graph_stats
from mcu_effnet.ops.registry import op_macs, prepare
from mcu_effnet.sim import run as sim_run


def single_op_model(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder(rng)
    h, w, c = (int(v) for v in rng.integers(1, 6, size=3))
    x = b.input((1, h, w, c))
    y = b.transpose_conv(
        x,
        int(rng.integers(1, 7)),
        kernel=(int(rng.integers(1, 5)), int(rng.integers(1, 5))),
        stride=(int(rng.integers(1, 3)), int(rng.integers(1, 3))),
        padding=str(rng.choice(["SAME", "VALID"])),
        activation=str(rng.choice(["NONE", "RELU", "RELU6"])),
        per_channel=bool(rng.random() < 0.7),
        bias=bool(rng.random() < 0.7),
    )
    b.outputs = [y]
    return b.build()


@pytest.mark.parametrize("seed", range(24))
def test_simulator_matches_tflite_micro(seed: int) -> None:
    model = single_op_model(1000 + seed)
    assert_varied(sim_matches_tflm(model, random_batch(np.random.default_rng(seed), load_tflite(model), 5)))


@pytest.mark.parametrize("seed", range(6))
def test_c_engine_matches_tflite_micro(host: HostRuntime, seed: int) -> None:
    model = single_op_model(2000 + seed)
    graph = load_tflite(model)
    engine_matches_tflm(host, model, random_batch(np.random.default_rng(seed), graph, 6), graph)


@pytest.mark.parametrize("seed", range(6))
def test_planner_gives_the_int32_scratch(seed: int) -> None:
    graph = load_tflite(single_op_model(3000 + seed))
    plan = plan_memory(graph)
    check_plan(plan)
    scratch = plan.buffers[plan.scratch[0]]
    y = graph.tensors[graph.ops[0].outputs[0]]
    assert scratch.size == 4 * y.nbytes and scratch.offset % 4 == 0
    assert plan.arena_bytes >= scratch.size + y.nbytes  # never shared with the output it feeds
    assert order_peak(graph, plan.order) == plan.peak_bytes  # the order search counts it too
    assert graph_stats(graph).peak_working_bytes == plan.peak_bytes  # and inspect's working set


def test_order_search_counts_the_scratch_on_branches() -> None:
    """Two branches, one up-sampling: the searched order's peak is the one the plan measures."""
    rng = np.random.default_rng(5)
    b = ModelBuilder(rng)
    x = b.input((1, 6, 6, 4))
    up = b.transpose_conv(b.conv2d(x, 4, (1, 1)), 4, (3, 3), (2, 2))
    side = b.transpose_conv(b.conv2d(x, 4, (3, 3)), 4, (2, 2), (2, 2))
    b.outputs = [b.add(up, side)]
    graph = load_tflite(b.build())
    plan = plan_memory(graph)
    check_plan(plan)
    assert len(plan.scratch) == 2 and order_peak(graph, plan.order) == plan.peak_bytes


@pytest.mark.parametrize("seed", range(8))
def test_macs_count_the_reference_multiplies(seed: int) -> None:
    graph = load_tflite(single_op_model(4000 + seed))
    op = graph.ops[0]
    p = prepare(graph, op)
    _, ih, iw, ic = graph.tensors[op.inputs[2]].shape
    oc, kh, kw, _ = graph.tensors[op.inputs[1]].shape
    _, oh, ow, _ = graph.tensors[op.outputs[0]].shape
    count = 0  # the reference's loop nest, one multiply per in-bounds (input, tap, channel)
    for iy in range(ih):
        for ix in range(iw):
            for ky in range(kh):
                for kx in range(kw):
                    oy, ox = iy * p.stride_h - p.pad_top + ky, ix * p.stride_w - p.pad_left + kx
                    if 0 <= oy < oh and 0 <= ox < ow:
                        count += ic * oc
    assert op_macs(graph, op) == count


@pytest.mark.toolchain
def test_decoder_chain_runs_bit_exact_in_qemu(cli, tmp_path) -> None:
    """conv stride 2 -> TRANSPOSE_CONV stride 2 (SAME, bias) -> TRANSPOSE_CONV stride 1 (VALID, no bias)."""
    rng = np.random.default_rng(31)
    b = ModelBuilder(rng)
    x = b.input((1, 8, 8, 3))
    down = b.conv2d(x, 6, (3, 3), (2, 2), activation="RELU")
    up = b.transpose_conv(down, 4, (3, 3), (2, 2), "SAME", activation="RELU6")
    b.outputs = [b.transpose_conv(up, 2, (2, 2), (1, 1), "VALID", bias=False)]
    model = tmp_path / "decoder.tflite"
    model.write_bytes(b.build())
    graph = load_tflite(model.read_bytes())
    xs = rng.integers(-128, 128, size=(3, 8, 8, 3), dtype=np.int8)
    np.testing.assert_array_equal(sim_run(graph, xs), run_tflm(model.read_bytes(), xs))
    out = tmp_path / "fw"
    result = cli("codegen", model, "--board", "qemu-m4", "--out", out)
    assert result.returncode == 0, result.stderr
    np.save(tmp_path / "x.npy", xs)
    result = cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), sim_run(graph, xs))


def _malformed(problem: str) -> bytes:
    b = ModelBuilder(np.random.default_rng(1))
    x = b.input((1, 3, 3, 2))
    y = b.transpose_conv(x, 4, (3, 3), (2, 2), "SAME")
    op = b.operators[-1]
    if problem == "shape":  # the output shape input disagrees with the output tensor
        b.buffers[b.tensors[op.inputs[0]].buffer].data = np.array([1, 5, 6, 4], np.int32).view(np.uint8)
    elif problem == "weights":  # weights for 3 input channels on a 2-channel input
        w = np.zeros((4, 3, 3, 3), np.int8)
        op.inputs[1] = b.add_tensor("w3", w.shape, "int8", np.full(4, 0.01), 0, 0, w)
    else:  # a bias of the wrong length
        op.inputs[3] = b.add_tensor("bias3", (3,), "int32", np.full(3, 1e-4), 0, 0, np.zeros(3))
    b.outputs = [y]
    return b.build()


@pytest.mark.parametrize(
    "problem,reason",
    [
        ("shape", "output shape input [1, 5, 6, 4] differs from the output's [1, 6, 6, 4]"),
        ("weights", "weights [4, 3, 3, 3] do not match input [1, 3, 3, 2]"),
        ("bias", "bias must be a constant int32 tensor of 4 values"),
    ],
)
def test_malformed_op_is_refused_naming_it(problem: str, reason: str) -> None:
    message = refusal(_malformed(problem))
    assert "op 0 (TRANSPOSE_CONV)" in message and reason in message
