"""SQUEEZE, EXPAND_DIMS, TRANSPOSE, SLICE, STRIDED_SLICE, PACK, UNPACK, SPLIT, SPLIT_V: randomized
single-op models against the TFLite Micro interpreter in the simulator, the generated engine on
the host (ASan/UBSan), the planner's aliasing, a chain in QEMU, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
from data_movement_builder import (
    depth_to_space,
    expand_dims,
    pack,
    slice_,
    space_to_depth,
    split,
    split_v,
    squeeze,
    strided_index,
    strided_slice,
    transpose,
    unpack,
)
from op_checks import engine_matches_tflm, random_batch, refusal, sim_matches_tflm
from tflite_builder import ModelBuilder, run_tflm

from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.graph import load_tflite
from mcu_effnet.graph.op_order import plan_memory

N = 8


def _shape(rng: np.random.Generator, rank: int) -> tuple[int, ...]:
    return (1, *(int(d) for d in rng.integers(1, 6, size=rank - 1)))


def _random_strided(rng: np.random.Generator, shape: tuple[int, ...]) -> dict:
    """begin/end/strides with masks, negative indices and strides; shrinks only valid axes."""
    rank = len(shape)
    begin, end, strides = [], [], []
    shrink = 0
    for k, d in enumerate(shape):
        stride = int(rng.choice([-2, -1, 1, 1, 2, 3]))
        begin.append(int(rng.integers(-d - 1, d + 2)))
        end.append(int(rng.integers(-d - 1, d + 2)))
        strides.append(stride)
        if k > 0 and rng.random() < 0.2:
            begin[k] = int(rng.integers(-d, d))  # a shrunk axis names a real element, forwards
            strides[k] = abs(stride)
            shrink |= 1 << k
    begin[0], end[0], strides[0] = 0, 1, 1  # the batch axis stays
    masks = [int(rng.integers(0, 1 << rank)) & ~1 for _ in range(2)]
    return dict(
        begin=begin, end=end, strides=strides, begin_mask=masks[0], end_mask=masks[1], shrink_axis_mask=shrink
    )


def _single_op(rng: np.random.Generator, kind: str) -> bytes:
    """One random model whose ops are ``kind`` (multi-output ops end in one CONCATENATION of
    their outputs in reverse order, so the native engine's one output sees every part)."""
    b = ModelBuilder(rng)
    if kind == "SQUEEZE":
        shape = (1, int(rng.integers(1, 5)), 1, int(rng.integers(1, 5)), 1)
        y = squeeze(b, b.input(shape), [2, -1] if rng.random() < 0.5 else [2])
    elif kind == "EXPAND_DIMS":
        x = b.input(_shape(rng, int(rng.integers(2, 5))))
        y = expand_dims(b, x, int(rng.integers(1, len(b.info[x].shape) + 1)) * int(rng.choice([1, -1])))
    elif kind == "TRANSPOSE":
        rank = int(rng.integers(2, 6))
        x = b.input(_shape(rng, rank))
        perm = [0, *(int(p) + 1 for p in rng.permutation(rank - 1))]
        y = transpose(b, x, perm)
    elif kind == "SLICE":
        shape = _shape(rng, int(rng.integers(2, 6)))
        begin = [0, *(int(rng.integers(0, d)) for d in shape[1:])]
        size = [
            1,
            *(
                int(rng.integers(1, d - s + 1)) if rng.random() < 0.7 else -1
                for d, s in zip(shape[1:], begin[1:], strict=True)
            ),
        ]
        y = slice_(b, b.input(shape), begin, size, dtype=str(rng.choice(["int32", "int64"])))
    elif kind == "STRIDED_SLICE":
        shape = _shape(rng, int(rng.integers(2, 5)))
        params = _random_strided(rng, shape)
        while np.zeros(shape)[strided_index(shape, **params)].size == 0:
            params = _random_strided(rng, shape)
        y = strided_slice(b, b.input(shape), **params)
    elif kind in ("SPACE_TO_DEPTH", "DEPTH_TO_SPACE"):
        block = int(rng.integers(1, 4))
        h, w, c = (int(v) for v in rng.integers(1, 4, size=3))
        if kind == "SPACE_TO_DEPTH":
            y = space_to_depth(b, b.input((1, h * block, w * block, c)), block)
        else:
            y = depth_to_space(b, b.input((1, h, w, c * block * block)), block)
    elif kind == "PACK":
        shape = _shape(rng, int(rng.integers(2, 4)))
        x = b.input(shape)
        parts = [x, b.unary("RELU", x)] + ([b.unary("RELU6", x)] if rng.random() < 0.5 else [])
        y = pack(b, parts, int(rng.integers(1, len(shape) + 1)))
    else:
        rank = int(rng.integers(3 if kind == "UNPACK" else 2, 5))  # UNPACK's parts keep a batch axis
        shape = list(_shape(rng, rank))
        axis = int(rng.integers(1, rank))
        if kind == "SPLIT":
            parts = int(rng.integers(1, 4))
            shape[axis] = parts * int(rng.integers(1, 3))
            ys = split(b, b.input(tuple(shape)), axis if rng.random() < 0.5 else axis - rank, parts)
        elif kind == "SPLIT_V":
            shape[axis] = int(rng.integers(3, 7))
            sizes = [1, 2, shape[axis] - 3][: 3 if shape[axis] > 3 else 2]
            sizes[int(rng.integers(0, len(sizes)))] = -1
            ys = split_v(b, b.input(tuple(shape)), sizes, axis)
        else:
            shape[axis] = int(rng.integers(1, 4))
            ys = unpack(b, b.input(tuple(shape)), axis)
        join = -1 if kind == "UNPACK" else axis  # every part has the others' shape but there
        y = ys[0] if len(ys) == 1 else _concat_axis(b, ys[::-1], join)
    b.outputs = [y]
    return b.build()


KINDS = [
    "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "SLICE", "STRIDED_SLICE", "PACK", "UNPACK", "SPLIT", "SPLIT_V",
    "SPACE_TO_DEPTH", "DEPTH_TO_SPACE",
]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_simulator_matches_tflite_micro(kind):
    for seed in range(12):
        rng = np.random.default_rng(1000 * KINDS.index(kind) + seed)
        model = _single_op(rng, kind)
        graph = load_tflite(model)
        assert {op.kind for op in graph.ops} - {"CONCATENATION", "RELU", "RELU6"} == {kind}
        sim_matches_tflm(model, random_batch(rng, graph, N), graph)


def test_multi_output_op_as_model_outputs():
    """SPLIT's outputs are the model's outputs: the simulator returns each, as TFLite Micro."""
    b = ModelBuilder(np.random.default_rng(3))
    x = b.input((1, 4, 6, 3))
    b.outputs = split(b, x, 2, 3)
    model = b.build()
    graph = load_tflite(model)
    expected = sim_matches_tflm(model, random_batch(np.random.default_rng(4), graph, N), graph)
    assert len(expected) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_engine_on_the_host_matches_tflite_micro(host, kind):
    rng = np.random.default_rng(77 + KINDS.index(kind))
    model = _single_op(rng, kind)
    graph = load_tflite(model)
    engine_matches_tflm(host, model, random_batch(rng, graph, 32), graph)


def test_squeeze_and_expand_dims_alias_their_input():
    b = ModelBuilder(np.random.default_rng(5))
    x = b.input((1, 4, 1, 6))
    s = squeeze(b, b.unary("RELU", x), [2])
    e = expand_dims(b, s, 1)
    b.outputs = [b.unary("RELU6", e)]
    graph = load_tflite(b.build())
    plan = plan_memory(graph)
    kinds = {op.index: op.kind for op in graph.ops}
    assert sorted(kinds[i] for i in plan.aliased_ops) == ["EXPAND_DIMS", "SQUEEZE"]
    relu, relu6 = graph.ops[0].outputs[0], graph.ops[-1].inputs[0]
    assert plan.buffer_of(relu) is plan.buffer_of(relu6)
    engine = generate_engine(graph, plan)
    assert engine.files["model.c"].count("aliased: no code") == 2


def _chain_model(rng: np.random.Generator) -> bytes:
    """input -> TRANSPOSE -> STRIDED_SLICE (negative stride) -> SPLIT -> PACK -> UNPACK ->
    SPLIT_V -> CONCATENATION -> SLICE -> EXPAND_DIMS -> SQUEEZE: every op in one firmware."""
    b = ModelBuilder(rng)
    x = b.input((1, 6, 8, 4))
    t = transpose(b, x, [0, 2, 1, 3])  # 1 8 6 4
    s = strided_slice(b, t, [0, -1, 0, 0], [1, 0, 6, 4], [1, -1, 1, 1], begin_mask=1, end_mask=8)  # 1 7 6 4
    halves = split(b, s, 3, 2)  # 2 x (1 7 6 2)
    p = pack(b, halves, 1)  # 1 2 7 6 2
    u = unpack(b, p, 1)  # 2 x (1 7 6 2)
    a, c = split_v(b, u[1], [4, -1], 1)  # 1 4 6 2, 1 3 6 2
    joined = _concat_axis(b, [c, u[0], a], 1)  # 1 14 6 2
    sl = slice_(b, joined, [0, 1, 2, 0], [1, 12, -1, 2])  # 1 12 4 2
    b.outputs = [squeeze(b, expand_dims(b, sl, 2), [2])]
    return b.build()


def _concat_axis(b: ModelBuilder, xs: list[int], axis: int) -> int:
    shape = list(b.info[xs[0]].shape)
    shape[axis] = sum(b.info[x].shape[axis] for x in xs)
    y = b.activation("concat", tuple(shape), *b.qparams(xs[0]))
    b.add_op("CONCATENATION", xs, [y], axis=axis)
    return y


def test_chain_on_the_host(host):
    rng = np.random.default_rng(9)
    model = _chain_model(rng)
    graph = load_tflite(model)
    x = random_batch(rng, graph, 16)
    sim_matches_tflm(model, x, graph)
    engine_matches_tflm(host, model, x, graph)


@pytest.mark.toolchain
def test_chain_runs_bit_exact_in_qemu(cli, tmp_path):
    model = tmp_path / "chain.tflite"
    model.write_bytes(_chain_model(np.random.default_rng(9)))
    graph = load_tflite(model)
    out = tmp_path / "fw"
    result = cli("codegen", model, "--board", "qemu-m4", "--out", out)
    assert result.returncode == 0, result.stderr
    x = random_batch(np.random.default_rng(10), graph, 3)
    np.save(tmp_path / "x.npy", x)
    result = cli("run", out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 of 3 samples bit-exact" in result.stdout
    np.testing.assert_array_equal(
        np.load(tmp_path / "y.npy").reshape(3, -1), np.asarray(run_tflm(model.read_bytes(), x)).reshape(3, -1)
    )


# ---- bad input ----------------------------------------------------------------------------------


def _malformed(kind: str) -> bytes:
    b = ModelBuilder(np.random.default_rng(0))
    x = b.input((1, 4, 6, 3))
    if kind == "TRANSPOSE":  # not a permutation
        y = b.activation("t", (1, 4, 6, 3), *b.qparams(x))
        perm = b.add_tensor("perm", (4,), "int32", data=np.array([0, 1, 1, 3], np.int32))
        b.add_op("TRANSPOSE", [x, perm], [y])
    elif kind == "STRIDED_SLICE":  # a zero stride
        y = b.activation("s", (1, 4, 6, 3), *b.qparams(x))
        consts = [
            b.add_tensor(n, (4,), "int32", data=np.array(v, np.int32))
            for n, v in (("b", [0] * 4), ("e", [1, 4, 6, 3]), ("s", [1, 0, 1, 1]))
        ]
        b.add_op("STRIDED_SLICE", [x, *consts], [y])
    elif kind == "SPLIT":  # outputs that do not add up to the axis
        axis = b.add_tensor("axis", (1,), "int32", data=np.array([2], np.int32))
        ys = [b.activation("p", (1, 4, 2, 3), *b.qparams(x)) for _ in range(2)]
        b.add_op("SPLIT", [axis, x], ys, num_splits=2)
        y = ys[0]
    else:  # SLICE leaving the input
        y = b.activation("s", (1, 4, 4, 3), *b.qparams(x))
        begin = b.add_tensor("b", (4,), "int32", data=np.array([0, 0, 3, 0], np.int32))
        size = b.add_tensor("z", (4,), "int32", data=np.array([1, 4, 4, 3], np.int32))
        b.add_op("SLICE", [x, begin, size], [y])
    b.outputs = [y]
    return b.build()


@pytest.mark.parametrize(
    "kind,words",
    [
        ("TRANSPOSE", "permutation [0, 1, 1, 3] is not a permutation"),
        ("STRIDED_SLICE", "stride of axis 1 is 0"),
        ("SPLIT", "outputs take 4 of the 6 elements along axis 2"),
        ("SLICE", "leaves the input [1, 4, 6, 3]"),
    ],
)
def test_malformed_op_is_refused_in_one_line(kind, words):
    message = refusal(_malformed(kind))
    assert f"op 0 ({kind}): " in message and words in message


def test_malformed_op_exits_2_through_the_cli(cli, tmp_path):
    model = tmp_path / "bad.tflite"
    model.write_bytes(_malformed("TRANSPOSE"))
    result = cli("inspect", model)
    assert result.returncode == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mcu-effnet: error: ") and "op 0 (TRANSPOSE)" in lines[0]


def test_transpose_moving_the_size_one_first_axis_keeps_samples_apart(host):
    """perm 1 0 2 3 on (1, 1, h, w): the file's first axis moves, the simulator's batch must not."""
    b = ModelBuilder(np.random.default_rng(12))
    b.outputs = [transpose(b, b.input((1, 1, 5, 3)), [1, 0, 2, 3])]
    model = b.build()
    graph = load_tflite(model)
    x = random_batch(np.random.default_rng(13), graph, N)
    sim_matches_tflm(model, x, graph)
    engine_matches_tflm(host, model, x, graph)


@pytest.mark.tflm_tree
def test_tflm_tree_resolver_declares_every_new_op():
    """--runtime tflm registers the model's ops by these methods; the tree must declare each."""
    from mcu_effnet.codegen.tflm import check_resolver, find_tflm_dir

    new = [*KINDS, "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR"]
    check_resolver(find_tflm_dir()[0], new)  # raises naming the first missing method
