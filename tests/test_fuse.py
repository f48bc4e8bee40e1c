"""SiLU fusion (mcu_effnet.codegen.fuse): LOGISTIC -> MUL(x, sigmoid x) runs as one 256-entry
table lookup in place over x, bit-exact with the simulator and TFLite Micro on the host engine
(with the unfused engine beside it); a LOGISTIC TFLite Micro refuses is not fused away."""

from __future__ import annotations

import numpy as np
import pytest
from test_planner import execute_plan
from tflite_builder import ModelBuilder

from mcu_effnet.graph import load_tflite
from mcu_effnet.graph.op_order import plan_memory


def _silu_cnn(rng: np.random.Generator, swap: bool = False) -> bytes:
    """conv → SiLU (LOGISTIC, MUL(x, sigmoid x)) → depthwise → SiLU → SE gate (LOGISTIC, MUL by a
    broadcast gate: not a SiLU) → conv → MEAN → FC."""
    b = ModelBuilder(rng)
    x = b.input((1, 8, 8, 3))

    def silu(t: int) -> int:
        s = b.logistic(t)
        return b.add(s, t, kind="MUL") if swap else b.add(t, s, kind="MUL")

    t = silu(b.conv2d(x, 16, (3, 3)))
    t = silu(b.depthwise(t, (3, 3)))
    gate = b.logistic(b.conv2d(b.mean(t, (1, 2), keep_dims=True), 16, (1, 1)))
    t = b.add(t, gate, kind="MUL")
    t = b.conv2d(t, 8, (1, 1))
    b.outputs = [b.fully_connected(b.mean(t, (1, 2), keep_dims=False), 5)]
    return b.build()


@pytest.mark.parametrize("swap", [False, True])
def test_silu_pairs_run_as_one_table_lookup_bit_exact(host, swap):
    from tflite_builder import run_tflm

    from mcu_effnet.codegen.engine import generate_engine
    from mcu_effnet.codegen.fuse import fuse_silu
    from mcu_effnet.ops.lookup import LOOKUP
    from mcu_effnet.sim import run as sim_run

    rng = np.random.default_rng(12 + swap)
    model = _silu_cnn(rng, swap)
    graph = load_tflite(model)
    fused, fusions = fuse_silu(graph)
    assert len(fusions) == 2 and len(fused.ops) == len(graph.ops) - 2
    assert [op.kind for op in fused.ops].count(LOOKUP) == 2
    assert [op.kind for op in graph.ops].count(LOOKUP) == 0  # the loaded graph is untouched
    engine = generate_engine(graph)
    assert [f.index for f in engine.fusions] == [f.index for f in fusions]
    assert engine.files["model.c"].count("ek_lookup(") == 2
    lookups = [op.index for op in engine.graph.ops if op.kind == LOOKUP]
    assert set(lookups) <= set(engine.plan.in_place_ops)
    # the sigmoid tensors are gone: x and sigmoid(x) (1 KB each) no longer live at once
    unfused = generate_engine(graph, plan_memory(graph), fuse=False)
    assert unfused.plan.peak_bytes == 2048 and engine.plan.peak_bytes < 2048
    assert not {f.removed_tensor for f in fusions} & set(engine.plan.tensor_buffer)
    execute_plan(engine.graph, engine.plan)
    x = rng.integers(-128, 128, size=(64, 8, 8, 3), dtype=np.int8)
    expected = np.asarray(sim_run(graph, x)).reshape(64, -1)
    np.testing.assert_array_equal(np.asarray(run_tflm(model, x)).reshape(64, -1), expected)
    np.testing.assert_array_equal(host.run_engine(engine, x), expected)
    np.testing.assert_array_equal(host.run_engine(unfused, x), expected)


def test_a_logistic_tflite_micro_refuses_is_not_fused_away():
    from mcu_effnet.codegen.engine import generate_engine
    from mcu_effnet.errors import UserError

    b = ModelBuilder(np.random.default_rng(1))
    t = b.conv2d(b.input((1, 4, 4, 3)), 4, (1, 1))
    s = b.logistic(t)
    b.outputs = [b.add(t, s, kind="MUL")]
    graph = load_tflite(b.build())
    graph.tensors[s].zero_point = np.array([0])  # the loader refuses this; the engine must too
    with pytest.raises(UserError, match="LOGISTIC: output zero point must be -128"):
        generate_engine(graph)
