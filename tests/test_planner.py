"""The arena planner: no two tensors live at once share a byte (checked by executing the plan
symbolically on random graphs), reshape aliasing, in-place execution, and an arena smaller than
TFLite Micro's for the builder's CNNs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tflite_builder import ModelBuilder, random_cnn, random_mbconv

from mcu_effnet.graph import load_tflite
from mcu_effnet.graph.ir import Graph, Op, Tensor
from mcu_effnet.graph.planner import ARENA, INPUT, OUTPUT, check_plan, ordered_ops, plan_arena

ELEMENTWISE = ["RELU", "LOGISTIC", "HARD_SWISH", "QUANTIZE"]


def _tensor(index: int, shape: tuple[int, ...], constant: bool = False) -> Tensor:
    data = np.zeros(shape, np.int8) if constant else None
    return Tensor(index, f"t{index}", shape, "int8", np.array([0.1], np.float32), np.array([0]), data=data)


@st.composite
def random_graphs(draw) -> Graph:
    """Random DAGs of convolutions, element-wise ops, ADD/MUL, RESHAPE and CONCATENATION.

    Shapes are kept consistent where the planner looks at them (element-wise ops keep the
    shape, RESHAPE keeps the byte count); everything else is free.
    """
    tensors = [_tensor(0, (1, draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 8))))]
    ops: list[Op] = []
    live = [0]  # activation tensors an op may read
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(
            st.sampled_from(
                ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "RESHAPE", "CONCATENATION", *ELEMENTWISE]
            )
        )
        src = draw(st.sampled_from(live[-4:]))
        shape = tensors[src].shape
        inputs = [src]
        if kind == "CONV_2D":
            weights = _tensor(len(tensors), (1, 1, 1, 1), constant=True)
            tensors.append(weights)
            inputs.append(weights.index)
            shape = (1, draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 8)))
        elif kind == "DEPTHWISE_CONV_2D":
            if len(shape) != 4:
                continue
            k = draw(st.sampled_from([1, 3, 5]))
            weights = _tensor(len(tensors), (1, k, k, shape[3]), constant=True)
            tensors.append(weights)
            inputs.append(weights.index)
            stride = draw(st.sampled_from([1, 1, 2]))
            attrs = {"padding": "SAME", "stride_h": stride, "stride_w": stride}
            shape = (1, -(-shape[1] // stride), -(-shape[2] // stride), shape[3])
        elif kind in ("ADD", "MUL"):
            same = [t for t in live if tensors[t].shape == shape]
            inputs.append(draw(st.sampled_from(same)))
            if draw(st.booleans()):
                inputs.reverse()
        elif kind == "RESHAPE":
            shape = (1, int(np.prod(shape)))
        elif kind == "CONCATENATION":
            other = draw(st.sampled_from(live[-4:]))
            inputs.append(other)
            shape = (1, int(np.prod(shape)) + int(np.prod(tensors[other].shape)))
        out = _tensor(len(tensors), shape)
        tensors.append(out)
        ops.append(Op(len(ops), kind, inputs, [out.index], attrs if kind == "DEPTHWISE_CONV_2D" else {}))
        live.append(out.index)
    n_outputs = draw(st.integers(1, 2))
    outputs = sorted(set(live[-n_outputs:]))
    return Graph(tensors=tensors, ops=ops, inputs=[0], outputs=outputs)


def execute_plan(graph: Graph, plan) -> None:
    """Runs the graph on the plan with tags instead of values: every op checks that each input
    it reads still holds that input's value, then writes its own output. An overlap of two
    tensors live at the same time shows up as a clobbered input."""
    memory = np.full(max(plan.arena_bytes, 1), -1, np.int64)
    holds: dict[int, int] = {}  # tensor -> the tag its bytes must hold (its producer's output)
    caller: dict[int, int] = {}  # the caller's input/output buffers, one tag each

    def region(t: int):
        where, offset = plan.location(t)
        if where == ARENA:
            return memory[offset : offset + graph.tensors[t].nbytes]
        return None

    for t in graph.inputs:
        holds[t] = t
        r = region(t)
        if r is None:
            caller[plan.tensor_buffer[t]] = t
        else:
            r[:] = t  # the copy in (or the caller writing model_input_buffer())
    for op in ordered_ops(graph, plan.order or None):  # the plan's execution order
        if op.index in plan.scratch:  # an in-place depthwise scribbles over its scratch first
            b = plan.buffers[plan.scratch[op.index]]
            memory[b.offset : b.offset + b.size] = -2
        for t in op.inputs:
            if t < 0 or graph.tensors[t].is_constant:
                continue
            r = region(t)
            if r is None:
                where, _ = plan.location(t)
                assert caller.get(plan.tensor_buffer[t]) == holds[t], (
                    f"op {op.index} reads clobbered {where} {t}"
                )
            else:
                assert np.all(r == holds[t]), f"op {op.index} {op.kind} reads clobbered tensor {t}"
        for t in op.outputs:
            if op.index in plan.aliased_ops:
                holds[t] = holds[op.inputs[0]]
                continue
            holds[t] = t
            r = region(t)
            if r is None:
                caller[plan.tensor_buffer[t]] = t
            else:
                r[:] = t
    for t in graph.outputs:
        r = region(t)
        if r is None:
            assert caller.get(plan.tensor_buffer[t]) == holds[t]
        else:
            assert np.all(r == holds[t])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(graph=random_graphs(), in_place=st.booleans(), io_in_arena=st.booleans())
def test_live_tensors_never_overlap(graph, in_place, io_in_arena):
    plan = plan_arena(graph, in_place=in_place, io_in_arena=io_in_arena)
    check_plan(plan)
    execute_plan(graph, plan)
    arena = [b for b in plan.buffers if b.location == ARENA]
    assert max(plan.live_bytes, default=0) == plan.peak_bytes <= plan.arena_bytes
    assert plan.arena_bytes <= sum(-(-b.size // plan.alignment) * plan.alignment for b in arena)
    assert all(b.offset % plan.alignment == 0 for b in arena)
    # the model's input and output are in the arena, or else in the caller's buffers
    for t in graph.inputs:
        assert plan.location(t)[0] in ((ARENA,) if io_in_arena else (INPUT, OUTPUT))
    for t in graph.outputs:
        assert plan.location(t)[0] == (ARENA if io_in_arena else OUTPUT)


def test_reshape_output_shares_its_input_bytes():
    b = ModelBuilder(np.random.default_rng(0))
    x = b.input((1, 6, 6, 3))
    y = b.conv2d(x, 8, (3, 3), (2, 2))
    r = b.reshape(y, (1, 72))
    b.outputs = [b.fully_connected(r, 4)]
    graph = load_tflite(b.build())
    plan = plan_arena(graph, io_in_arena=False)
    assert plan.aliased_ops == [1]
    assert plan.location(y) == plan.location(r) and plan.location(y)[0] == ARENA
    assert plan.arena_bytes == 72  # the one intermediate; input and output are the caller's
    # with the input (108 bytes) and output (4) in the arena: the input dies at op 0
    plan = plan_arena(graph)
    assert plan.aliased_ops == [1] and plan.arena_bytes == 108 + 72
    execute_plan(graph, plan)


def test_elementwise_op_runs_in_place_over_its_dying_input():
    b = ModelBuilder(np.random.default_rng(1))
    x = b.input((1, 8, 8, 4))
    y = b.conv2d(x, 8, (1, 1))
    act = b.unary("HARD_SWISH", y, out_scale=b.qparams(y)[0] * 0.7, out_zp=-90)
    z = b.conv2d(act, 4, (1, 1))
    b.outputs = [b.add(z, x)]
    graph = load_tflite(b.build())
    pointwise = frozenset({2})  # the 1x1 8 -> 4 could run in place too (test_pointwise_in_place)
    plan = plan_arena(graph, io_in_arena=False, plain=pointwise)
    assert plan.in_place_ops == [1]
    assert plan.location(y) == plan.location(act)
    assert plan.arena_bytes == 512 + 256  # y/act share 512 bytes, z needs 256 beside them
    no_in_place = plan_arena(graph, in_place=False, io_in_arena=False)
    assert no_in_place.arena_bytes == 1024  # y and act side by side; z reuses y's bytes
    execute_plan(graph, plan)
    # the output ADD runs in place over z, and x (256 bytes) lives to the end
    plan = plan_arena(graph, plain=pointwise)
    assert plan.in_place_ops == [1, 3] and plan.arena_bytes == 512 + 256 + 256
    execute_plan(graph, plan)


def test_a_tensor_read_later_is_not_overwritten_in_place():
    b = ModelBuilder(np.random.default_rng(2))
    x = b.input((1, 4, 4, 4))
    y = b.conv2d(x, 4, (1, 1))
    act = b.unary("RELU", y)
    b.outputs = [b.add(act, y)]  # y is still needed after RELU
    graph = load_tflite(b.build())
    plan = plan_arena(graph)
    assert 1 not in plan.in_place_ops  # the final ADD may reuse y or act: both die there
    execute_plan(graph, plan)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["cnn", "mbconv"])
def test_model_ram_is_smaller_than_tflite_micros_arena(kind, seed):
    from mcu_effnet.codegen.engine import generate_engine
    from mcu_effnet.oracle import recorded_arena_bytes

    rng = np.random.default_rng(seed)
    model = random_cnn(rng) if kind == "cnn" else random_mbconv(rng)
    graph = load_tflite(model)
    engine = generate_engine(graph)
    execute_plan(graph, engine.plan)
    recorded = recorded_arena_bytes(model)
    # the arena holds the input and output too, as TFLite Micro's does
    assert engine.model_ram_bytes == engine.arena_bytes
    assert engine.model_ram_bytes <= 0.8 * recorded, (engine.model_ram_bytes, recorded)
