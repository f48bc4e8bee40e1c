"""The execution order (mcu_effnet.graph.op_order): on random DAGs the chosen order is
topological, its plan never overlaps live tensors and never costs more than the stored order;
the search finds the best order (checked against every topological order of small graphs); a
branchy CNN stored breadth first gets a known better order; the engine executes that order
bit-exactly with the simulator, and report.json shows the plan. Every element-wise kernel runs
in place over its dying input bit-exactly (host build under the sanitizers)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from branchy_models import branchy_cnn
from hypothesis import given, settings
from hypothesis import strategies as st
from test_planner import execute_plan, random_graphs
from tflite_builder import ModelBuilder, random_mbconv

from mcu_effnet.graph import load_tflite
from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.graph.op_order import greedy_order, order_peak, plan_memory, search_order
from mcu_effnet.graph.planner import check_plan, ordered_ops, plan_arena


def topological_orders(graph: Graph, limit: int = 20000) -> list[list[int]]:
    """Every topological order of the graph's ops (op indices), by brute force."""
    producer = {t: op.index for op in graph.ops for t in op.outputs}
    needs = {op.index: {producer[t] for t in op.inputs if t in producer} for op in graph.ops}
    orders: list[list[int]] = []

    def extend(prefix: list[int], done: set[int]) -> None:
        if len(orders) >= limit:
            return
        if len(prefix) == len(graph.ops):
            orders.append(list(prefix))
            return
        for op in graph.ops:
            if op.index not in done and needs[op.index] <= done:
                prefix.append(op.index)
                done.add(op.index)
                extend(prefix, done)
                done.discard(op.index)
                prefix.pop()

    extend([], set())
    return orders


def assert_topological(graph: Graph, order: list[int]) -> None:
    assert sorted(order) == sorted(op.index for op in graph.ops)
    ordered_ops(graph, order)  # raises on an op before the producer of one of its inputs


@settings(max_examples=250, deadline=None, derandomize=True)
@given(graph=random_graphs(), in_place=st.booleans(), io_in_arena=st.booleans())
def test_chosen_order_is_topological_legal_and_never_worse(graph, in_place, io_in_arena):
    stored = plan_arena(graph, in_place=in_place, io_in_arena=io_in_arena)
    plan = plan_memory(graph, in_place=in_place, io_in_arena=io_in_arena)
    assert_topological(graph, plan.order)
    check_plan(plan)  # no two arena buffers live at once share a byte (in-place pairs are one buffer)
    execute_plan(graph, plan)  # every op, run in the plan's order, reads intact inputs
    assert plan.peak_bytes <= stored.peak_bytes
    assert plan.arena_bytes <= stored.arena_bytes
    assert (plan.stored_peak_bytes, plan.stored_arena_bytes) == (stored.peak_bytes, stored.arena_bytes)
    # the search's cost model is the planner's peak, for the stored and the chosen order
    assert order_peak(graph, stored.order, in_place, io_in_arena) == stored.peak_bytes
    assert order_peak(graph, plan.order, in_place, io_in_arena) == plan.peak_bytes
    searched = search_order(graph, in_place, io_in_arena)
    assert_topological(graph, searched.order)
    assert searched.exact  # these graphs are small
    assert searched.peak_bytes == order_peak(graph, searched.order, in_place, io_in_arena)
    assert searched.peak_bytes <= min(
        stored.peak_bytes, greedy_order(graph, in_place, io_in_arena).peak_bytes
    )


@st.composite
def shuffled_graphs(draw) -> Graph:
    """A random DAG whose ops are stored in a random topological order (renumbered as stored)."""
    graph = draw(random_graphs())
    producer = {t: op.index for op in graph.ops for t in op.outputs}
    done: set[int] = set()
    order: list[Op] = []
    while len(order) < len(graph.ops):
        ready = [
            op
            for op in graph.ops
            if op.index not in done and all(producer.get(t, -1) in done | {-1} for t in op.inputs)
        ]
        op = draw(st.sampled_from(ready))
        done.add(op.index)
        order.append(op)
    ops = [Op(i, op.kind, list(op.inputs), list(op.outputs), dict(op.attrs)) for i, op in enumerate(order)]
    return Graph(tensors=graph.tensors, ops=ops, inputs=graph.inputs, outputs=graph.outputs)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(graph=shuffled_graphs(), max_states=st.sampled_from([1, 3, 2000]), in_place=st.booleans())
def test_any_stored_order_and_any_beam_width_give_a_legal_plan_no_worse(graph, max_states, in_place):
    stored = plan_arena(graph, in_place=in_place)
    plan = plan_memory(graph, in_place=in_place, max_states=max_states)
    assert_topological(graph, plan.order)
    check_plan(plan)
    execute_plan(graph, plan)
    assert plan.peak_bytes <= stored.peak_bytes and plan.arena_bytes <= stored.arena_bytes
    searched = search_order(graph, in_place, max_states=max_states)
    assert_topological(graph, searched.order)
    assert searched.peak_bytes == plan_arena(graph, in_place=in_place, order=searched.order).peak_bytes
    if searched.exact:
        assert searched.peak_bytes <= stored.peak_bytes


@settings(max_examples=80, deadline=None, derandomize=True)
@given(graph=random_graphs(), in_place=st.booleans())
def test_search_finds_the_lowest_peak_of_all_topological_orders(graph, in_place):
    orders = topological_orders(graph, limit=3000)
    if len(orders) >= 3000:
        return  # too many to enumerate
    best = min(plan_arena(graph, in_place=in_place, order=o).peak_bytes for o in orders)
    searched = search_order(graph, in_place)
    assert searched.exact and searched.peak_bytes == best
    assert plan_arena(graph, in_place=in_place, order=searched.order).peak_bytes == best


def test_beam_search_past_the_state_limit_still_gives_a_valid_order():
    graph = load_tflite(branchy_cnn(np.random.default_rng(0), branches=4))
    exact = search_order(graph)
    beam = search_order(graph, max_states=2)
    assert exact.exact and not beam.exact
    assert_topological(graph, beam.order)
    assert exact.peak_bytes <= beam.peak_bytes == order_peak(graph, beam.order)
    plan = plan_memory(graph, max_states=2)
    assert "beam search" in plan.order_method or plan.order_method == "greedy"
    execute_plan(graph, plan)


def test_a_wide_graph_is_searched_within_the_budget():
    import time

    graph = load_tflite(branchy_cnn(np.random.default_rng(0), branches=24, merge="add"))
    started = time.perf_counter()
    plan = plan_memory(graph)
    assert time.perf_counter() - started < 10
    assert plan.order_method in ("beam search", "greedy")
    assert plan.arena_bytes < plan.stored_arena_bytes / 4
    check_plan(plan)
    execute_plan(graph, plan)


def test_two_branches_stored_breadth_first_get_a_known_better_order():
    # input 8x8x3 (192 B) -> stem 8x8x4 (256) -> branch A: 1x1 to 24 ch (1536) -> 1x1 to 4 (256)
    #                                         -> branch B: 1x1 to 28 ch (1792) -> 1x1 to 4 (256)
    # -> concat (512) -> ... Stored: stem, A1, B1, A2, B2: A1 and B1 live together with the stem
    # at B1 (256 + 1536 + 1792 = 3584). One branch after the other: at most the stem, one branch's
    # end and the other's wide tensor and end (256 + 256 + 1792 = 2304, or 256 + 1792 + 256).
    graph = load_tflite(branchy_cnn(np.random.default_rng(0), depthwise=False, branches=2))
    assert [op.kind for op in graph.ops[:6]] == ["CONV_2D"] * 5 + ["CONCATENATION"]
    stored = plan_arena(graph)
    assert stored.peak_bytes == stored.arena_bytes == 3584
    plan = plan_memory(graph)
    assert plan.order_method == "exact search" and plan.reordered
    # the wider branch (28 channels) first, its 1x1 reduce in place over the wide map with one
    # six-pixel block of scratch (planner.CHUNK_PIXEL_BLOCK, 168 bytes): 256 + 1792 + 168 (without
    # the mode: 2304, below)
    assert plan.peak_bytes == plan.arena_bytes == 2216
    assert plan.order[:5] == [0, 2, 4, 1, 3] and list(plan.modes) == [4]
    assert plan.order[5:] == [5, 6, 7, 8, 9]
    # the best of every order with the ordinary kernels
    plain = frozenset(op.index for op in graph.ops)
    assert min(plan_arena(graph, order=o, plain=plain).peak_bytes for o in topological_orders(graph)) == 2304
    text = plan.describe(graph)
    assert "execution order (exact search), op indices by step: " in text
    assert "in the stored order: peak 3584, arena 3584 bytes" in text
    d = plan.to_dict(graph)
    assert d["order"] == plan.order and d["reordered"] and d["stored_order_peak_bytes"] == 3584
    assert d["order_ops"][5] == "CONCATENATION"
    assert all("first_step" in b and "tensor_names" in b for b in d["buffers"])


def test_an_order_can_make_an_op_run_in_place():
    # x feeds a RELU and a conv. Stored RELU first, x is still needed by the conv: RELU needs
    # its own bytes. Conv first, x dies at the RELU, which then runs over it.
    b = ModelBuilder(np.random.default_rng(3))
    x0 = b.input((1, 8, 8, 4))
    x = b.conv2d(x0, 16, (1, 1))  # 1024 B
    r = b.unary("RELU", x)
    c = b.conv2d(x, 2, (1, 1))  # 128 B
    b.outputs = [b.add(b.conv2d(r, 2, (1, 1)), c)]
    graph = load_tflite(b.build())
    relu = next(op.index for op in graph.ops if op.kind == "RELU")
    stored = plan_arena(graph)
    assert relu not in stored.in_place_ops
    plan = plan_memory(graph)
    assert plan.order.index(relu) > plan.order.index(relu + 1)  # the conv on x moved before it
    assert relu in plan.in_place_ops and plan.location(x) == plan.location(r)
    assert plan.peak_bytes < stored.peak_bytes
    execute_plan(graph, plan)


@pytest.mark.parametrize("seed", [0, 1])
def test_chain_models_keep_their_stored_order(seed):
    graph = load_tflite(random_mbconv(np.random.default_rng(seed)))  # residual and SE branches
    plan = plan_memory(graph)
    assert plan.order == [op.index for op in graph.ops] and not plan.reordered
    assert plan.order_method.startswith("as stored") and "exact search" in plan.order_method


# ---- the engine executes the order ------------------------------------------------------------


@pytest.mark.parametrize("merge", ["concat", "add"])
def test_reordered_engine_is_bit_exact_with_the_simulator(host, merge):
    from mcu_effnet.codegen.engine import generate_engine
    from mcu_effnet.sim import run as sim_run

    rng = np.random.default_rng(5)
    graph = load_tflite(branchy_cnn(rng, branches=3, merge=merge))
    engine = generate_engine(graph)
    plan = engine.plan
    assert plan.reordered and plan.peak_bytes < plan.stored_peak_bytes
    assert plan.arena_bytes < plan.stored_arena_bytes and plan.in_place_ops
    # model.c calls the kernels in the plan's order, and the layers table follows it
    called = [int(i) for i in re.findall(r"^    /\* op (\d+) ", engine.files["model.c"], flags=re.M)]
    assert called == plan.order
    assert [row["index"] for row in engine.layers] == plan.order
    assert [row["step"] for row in engine.layers] == list(range(len(plan.order)))
    x = rng.integers(-128, 128, size=(48, *graph.tensors[graph.inputs[0]].shape[1:]), dtype=np.int8)
    expected = np.asarray(sim_run(graph, x)).reshape(48, -1)
    np.testing.assert_array_equal(host.run_engine(engine, x), expected)
    # the stored order gives the same values from a larger arena
    stored = generate_engine(graph, plan_arena(graph))
    assert stored.arena_bytes > engine.arena_bytes
    np.testing.assert_array_equal(host.run_engine(stored, x), expected)


def test_report_json_and_the_printed_line_show_the_plan(tmp_path):
    from mcu_effnet.cli.codegen import plan_summary
    from mcu_effnet.codegen.project import write_project

    graph = load_tflite(branchy_cnn(np.random.default_rng(0), depthwise=False, branches=2))
    project = write_project(graph, "qemu-m4", tmp_path / "fw", build=False)
    report = json.loads((tmp_path / "fw" / "report.json").read_text())
    plan = report["memory_plan"]
    assert plan["reordered"] and plan["order_method"] == "exact search"
    assert (plan["stored_order_peak_bytes"], plan["peak_bytes"]) == (3584, 2216)  # a 1x1 in place
    assert report["arena_bytes"] == plan["arena_bytes"] == 2216
    assert [row["index"] for row in report["layers"]] == plan["order"]
    assert (tmp_path / "fw" / "memory.png").stat().st_size > 0
    assert "execution order (exact search)" in (tmp_path / "fw" / "model" / "model.c").read_text()
    line = plan_summary(project.report["memory_plan"])
    assert "order exact search (peak 3584 -> 2216 bytes, arena 3584 -> 2216)" in line


def _in_place_chain(rng: np.random.Generator) -> tuple[bytes, dict[str, int]]:
    """Every element-wise kernel over its dying input: RELU, QUANTIZE, RELU6, LOGISTIC (table
    path: more than 256 elements), HARD_SWISH, MUL over its first operand (x · gate, the gate
    broadcast), ADD over its second operand with the first broadcast, ADD of two full maps."""
    b = ModelBuilder(rng)
    x = b.input((1, 8, 8, 6))
    t = b.conv2d(x, 12, (1, 1))  # 768 bytes
    ops: dict[str, int] = {}

    def op(name: str, y: int) -> int:
        ops[name] = len(b.operators) - 1
        return y

    t = op("RELU", b.unary("RELU", t))
    t = op("QUANTIZE", b.unary("QUANTIZE", t, out_scale=b.qparams(t)[0] * 1.3, out_zp=-5))
    t = op("RELU6", b.unary("RELU6", t))
    t = op("LOGISTIC", b.logistic(t))
    t = op("HARD_SWISH", b.unary("HARD_SWISH", t, out_scale=b.qparams(t)[0] * 0.7, out_zp=-90))
    gate = b.logistic(b.conv2d(b.mean(t, (1, 2), keep_dims=True), 12, (1, 1)))  # 1x1x12
    t = op("MUL", b.add(t, gate, kind="MUL"))  # over t (first operand)
    keep = b.conv2d(t, 12, (1, 1))  # t is read again by the last ADD
    bias = b.logistic(b.conv2d(b.mean(t, (1, 2), keep_dims=True), 12, (1, 1)))
    u = op("ADD broadcast", b.add(bias, keep))  # over keep (second operand)
    v = op("ADD", b.add(u, t))
    b.outputs = [b.softmax(b.fully_connected(b.mean(v, (1, 2), keep_dims=False), 5))]
    return b.build(), ops


def test_every_element_wise_kernel_runs_in_place_bit_exact(host):
    from tflite_builder import run_tflm

    from mcu_effnet.codegen.engine import generate_engine
    from mcu_effnet.sim import run as sim_run

    rng = np.random.default_rng(9)
    model, ops = _in_place_chain(rng)
    graph = load_tflite(model)
    engine = generate_engine(graph)
    assert set(ops.values()) <= set(engine.plan.in_place_ops), (ops, engine.plan.in_place_ops)
    add_b = graph.ops[ops["ADD broadcast"]]
    assert engine.plan.location(add_b.outputs[0]) == engine.plan.location(add_b.inputs[1])
    execute_plan(graph, engine.plan)
    x = rng.integers(-128, 128, size=(64, 8, 8, 6), dtype=np.int8)
    expected = np.asarray(sim_run(graph, x)).reshape(64, -1)
    np.testing.assert_array_equal(np.asarray(run_tflm(model, x)).reshape(64, -1), expected)
    np.testing.assert_array_equal(host.run_engine(engine, x), expected)
