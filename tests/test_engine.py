"""Whole generated engines: small int8 CNNs built in the tests, generated, compiled on the host
(ASan/UBSan) and run on many random inputs, bit-exact with TFLite Micro and the simulator; the
same sources compile warning-free for Cortex-M with arm-none-eabi-gcc."""

from __future__ import annotations

import re

import numpy as np
import pytest
from host_engine import ARM_M4, compile_for_arm
from tflite_builder import ModelBuilder, random_cnn, random_mbconv, random_two_input, run_tflm

from mcu_effnet.codegen.engine import RUNTIME_FILES, generate_engine
from mcu_effnet.errors import UserError
from mcu_effnet.graph import load_tflite
from mcu_effnet.sim import run as sim_run

N_INPUTS = 128

MODELS = {
    "cnn-mean": lambda rng: random_cnn(rng, head="mean"),
    "cnn-avgpool": lambda rng: random_cnn(rng, head="avgpool"),
    "cnn-logits": lambda rng: random_cnn(rng, softmax=False),
    "mbconv-hswish-se": lambda rng: random_mbconv(rng, activation="HARD_SWISH"),
    "mbconv-lite": lambda rng: random_mbconv(rng, activation="RELU6"),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_generated_model_is_bit_exact_with_tflite_micro(host, kind, seed):
    rng = np.random.default_rng(100 + seed)
    model = MODELS[kind](rng)
    graph = load_tflite(model)
    shape = graph.tensors[graph.inputs[0]].shape
    x = rng.integers(-128, 128, size=(N_INPUTS, *shape[1:]), dtype=np.int8)
    expected = np.asarray(run_tflm(model, x)).reshape(N_INPUTS, -1)
    got = host.run_engine(generate_engine(graph), x)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.asarray(sim_run(graph, x)).reshape(N_INPUTS, -1), expected)


def test_caller_writing_the_arenas_input_place_gets_the_same_outputs(host):
    rng = np.random.default_rng(11)
    model = random_mbconv(rng)
    graph = load_tflite(model)
    x = rng.integers(-128, 128, size=(16, *graph.tensors[graph.inputs[0]].shape[1:]), dtype=np.int8)
    got = host.run_engine(generate_engine(graph), x, defines=("HARNESS_IN_PLACE",))
    np.testing.assert_array_equal(got, np.asarray(run_tflm(model, x)).reshape(16, -1))


def test_c_literals_doctests():
    import doctest

    from mcu_effnet.codegen import c_literals

    assert doctest.testmod(c_literals).failed == 0


def test_engine_files_and_figures():
    model = random_mbconv(np.random.default_rng(7))
    graph = load_tflite(model)
    engine = generate_engine(graph)
    assert {"model.h", "model.c", "model_data.h", "model_data.c", *RUNTIME_FILES} == set(engine.files)
    h = engine.files["model.h"]
    tin, tout = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    assert f"#define MODEL_INPUT_SIZE {tin.nbytes}u" in h
    assert f"#define MODEL_OUTPUT_SIZE {tout.nbytes}u" in h
    assert f"#define MODEL_ARENA_SIZE {engine.arena_bytes}u" in h
    assert "int model_invoke(const model_input_t *input, model_output_t *output);" in h
    assert "typedef int8_t model_input_t;" in h and "typedef int8_t model_output_t;" in h
    assert engine.arena_bytes == engine.plan.arena_bytes > 0
    assert engine.model_ram_bytes == engine.arena_bytes  # input and output have places in the arena
    assert "model_input_t *model_input_buffer(void);" in h
    # weights: the weights and biases of every conv/FC, plus multipliers and shifts (int32 per channel)
    layers = [op for op in graph.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    const = sum(graph.tensors[t].nbytes for op in layers for t in op.inputs[1:] if t >= 0)
    assert engine.weights_bytes >= const
    assert len(engine.layers) == len(graph.ops)
    assert [row["op"] for row in engine.layers] == [op.kind for op in graph.ops]
    assert all(row["live_bytes"] <= engine.arena_bytes for row in engine.layers)
    assert sum(row["macs"] for row in engine.layers) > 0
    # straight-line calls over the static arena: one kernel call per op that is not an alias
    body = engine.files["model.c"]
    assert f"arena {engine.arena_bytes} bytes (peak of live tensors {engine.plan.peak_bytes})" in body
    calls = re.findall(r"^\s+(ek_\w+)\(", body, flags=re.M)
    assert len(calls) == len(graph.ops) - len(engine.plan.aliased_ops) + 2  # + the copies in and out
    assert "static int8_t arena[MODEL_ARENA_SIZE]" in body
    # No floating point but DEQUANTIZE's kernel (a float model output), which this model does not call.
    assert "malloc" not in body and "float" not in "".join(
        engine.files[f] for f in engine.files if f.endswith(".c") and f != "ek_dequantize.c"
    )
    assert "ek_dequantize" not in body
    data = engine.files["model_data.c"]
    assert re.search(r"^const ek_conv_params op0_conv_2d = \{", data, flags=re.M)
    assert not re.search(r"^(static )?(int8_t|int32_t) ", data, flags=re.M), "arrays must be const (flash)"


@pytest.mark.parametrize(
    "cpu_flags",
    [ARM_M4, ["-mcpu=cortex-m0plus", "-mthumb"], ["-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=soft"]],
    ids=["cortex-m4", "cortex-m0plus", "cortex-m33"],
)
@pytest.mark.toolchain
def test_generated_sources_compile_for_cortex_m(tmp_path, cpu_flags):
    for i, kind in enumerate(("cnn-avgpool", "mbconv-hswish-se")):
        engine = generate_engine(load_tflite(MODELS[kind](np.random.default_rng(i))))
        compile_for_arm(engine.files, tmp_path / kind, cpu_flags)


@pytest.mark.parametrize("in_place", [False, True], ids=["packed", "model_invoke_n"])
@pytest.mark.parametrize("seed", [0, 1])
def test_model_with_two_inputs_is_bit_exact_with_tflite_micro(host, seed, in_place):
    rng = np.random.default_rng(300 + seed)
    model = random_two_input(rng)
    graph = load_tflite(model)
    xs = [
        rng.integers(-128, 128, size=(32, *graph.tensors[t].shape[1:]), dtype=np.int8) for t in graph.inputs
    ]
    engine = generate_engine(graph)
    assert "MODEL_NUM_INPUTS 2" in engine.files["model.h"]
    got = host.run_engine(engine, xs, defines=("HARNESS_IN_PLACE",) if in_place else ())
    np.testing.assert_array_equal(got, np.asarray(run_tflm(model, xs)).reshape(32, -1))


def test_model_input_given_as_an_output_is_refused():
    """Several outputs run (tests/test_multi_output.py); an input passed straight out does not."""
    b = ModelBuilder(np.random.default_rng(0))
    x1 = b.input((1, 2, 2, 3))
    b.outputs = [b.add(x1, x1), x1]
    with pytest.raises(UserError, match="a model input is also a model output") as info:
        generate_engine(load_tflite(b.build()))
    assert "\n" not in str(info.value)


def test_unsupported_op_is_refused_with_its_index():
    graph = load_tflite(random_cnn(np.random.default_rng(0)))
    graph.ops[2].kind = "SIN"
    with pytest.raises(UserError, match="op 2 SIN is not supported"):
        generate_engine(graph)


# _export caches per process: these tests share one worker (test_sim_efficientnet._export).
@pytest.mark.xdist_group("efficientnet_exports")
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["full", "lite"])
def test_exported_efficientnet_engine_bit_exact(host, tmp_path, variant):
    """Our own EfficientNets (QAT-exported .tflite at φ −6, 32 px) through the generated C."""
    pytest.importorskip("torch")
    from test_sim_efficientnet import _export

    model = _export(tmp_path, variant, -6)
    graph = load_tflite(model)
    engine = generate_engine(graph)
    shape = graph.tensors[graph.inputs[0]].shape
    x = np.random.default_rng(0).integers(-128, 128, size=(32, *shape[1:]), dtype=np.int8)
    expected = np.asarray(run_tflm(model, x)).reshape(32, -1)
    np.testing.assert_array_equal(host.run_engine(engine, x), expected)
