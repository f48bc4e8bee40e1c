"""The .tflite loader: what it reads, every bad-file case, a fuzz test, whole models vs TFLite Micro, inspect."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tflite_builder import ModelBuilder, random_cnn, random_mbconv, run_tflm

from mcu_effnet.errors import UserError
from mcu_effnet.graph import SUPPORTED_OPS, load_tflite
from mcu_effnet.graph.stats import graph_stats
from mcu_effnet.oracle import tflm_all_tensors
from mcu_effnet.sim import run


def _one_conv(rng: np.random.Generator | None = None, **conv) -> tuple[bytes, ModelBuilder]:
    b = ModelBuilder(rng or np.random.default_rng(0))
    x = b.input((1, 6, 5, 3), scale=0.02, zero_point=-5)
    y = b.conv2d(x, 4, (3, 3), (2, 1), "SAME", (1, 2), activation="RELU6", **conv)
    b.outputs = [y]
    return b.build(), b


# ---- what the loader reads ---------------------------------------------------------------------


def test_reads_tensors_quantization_and_attributes() -> None:
    model, b = _one_conv()
    g = load_tflite(model)
    assert [op.kind for op in g.ops] == ["CONV_2D"]
    op = g.ops[0]
    assert op.attrs["stride_h"] == 2 and op.attrs["stride_w"] == 1
    assert op.attrs["dilation_h_factor"] == 1 and op.attrs["dilation_w_factor"] == 2
    assert op.attrs["padding"] == "SAME" and op.attrs["fused_activation_function"] == "RELU6"
    x, w, bias = (g.tensors[i] for i in op.inputs)
    assert x.shape == (1, 6, 5, 3) and x.dtype == "int8" and not x.is_constant
    assert float(x.scale[0]) == pytest.approx(0.02) and int(x.zero_point[0]) == -5
    assert w.shape == (4, 3, 3, 3) and w.per_channel and w.quantized_dimension == 0
    stored = np.frombuffer(b.buffers[b.tensors[w.index].buffer].data.tobytes(), np.int8)
    np.testing.assert_array_equal(w.data, stored.reshape(4, 3, 3, 3))
    np.testing.assert_array_equal(w.scale, b.info[w.index].scale)
    assert bias.dtype == "int32" and bias.data.shape == (4,)
    assert g.tensors[g.outputs[0]].shape == (1, 3, 5, 4)
    assert g.inputs == [x.index] and g.description == "mcu-effnet test model"


def test_keeps_metadata_and_reads_from_path(tmp_path) -> None:
    b = ModelBuilder(np.random.default_rng(1))
    x = b.input((1, 4))
    b.outputs = [b.fully_connected(x, 3)]
    b.add_metadata("labels", b"cat\ndog\nbird\n")
    path = tmp_path / "m.tflite"
    path.write_bytes(b.build())
    g = load_tflite(path)
    assert g.metadata == {"labels": b"cat\ndog\nbird\n"}
    assert g.source == str(path)
    assert g.ops[0].attrs["keep_num_dims"] is False


def test_depthwise_mean_pad_reshape_attributes() -> None:
    rng = np.random.default_rng(2)
    b = ModelBuilder(rng)
    x = b.input((1, 5, 5, 2))
    p = b.pad(x, [(0, 0), (1, 0), (0, 2), (0, 0)])
    d = b.depthwise(p, (2, 2), depth_multiplier=3)
    m = b.mean(d, (1, 2), keep_dims=False)
    b.outputs = [b.reshape(m, (1, 6))]
    g = load_tflite(b.build())
    assert [op.kind for op in g.ops] == ["PAD", "DEPTHWISE_CONV_2D", "MEAN", "RESHAPE"]
    assert g.ops[1].attrs["depth_multiplier"] == 3
    assert g.tensors[g.ops[1].inputs[1]].quantized_dimension == 3
    assert g.ops[2].attrs["keep_dims"] is False
    assert g.ops[3].attrs["new_shape"] == [1, 6]
    assert g.tensors[g.ops[0].inputs[1]].data.tolist() == [[0, 0], [1, 0], [0, 2], [0, 0]]


# ---- bad files -----------------------------------------------------------------------------------


def _float_conv_model() -> bytes:
    b = ModelBuilder(np.random.default_rng(0))
    x = b.add_tensor("x", (1, 4, 4, 1), "float32")
    w = b.add_tensor("w", (1, 1, 1, 1), "float32", data=np.ones((1, 1, 1, 1), np.float32))
    y = b.add_tensor("y", (1, 4, 4, 1), "float32")
    b.add_op("CONV_2D", [x, w, -1], [y], padding="VALID", stride_h=1, stride_w=1)
    return b.build([x], [y])


def _unsupported_op_model() -> bytes:
    b = ModelBuilder(np.random.default_rng(0))
    x = b.input((1, 4), scale=0.1, zero_point=0)
    r = b.unary("RELU", x)
    t = b.activation("sin", (1, 4), 1 / 128, 0)
    b.add_op("SIN", [r], [t])
    b.outputs = [t]
    return b.build()


def _uint8_input_model() -> bytes:
    b = ModelBuilder(np.random.default_rng(0))
    x = b.add_tensor("x_u8", (1, 4), "uint8", 0.1, 128)
    q = b.activation("q", (1, 4), 0.1, 0)
    b.add_op("QUANTIZE", [x], [q])
    b.outputs = [b.unary("RELU", q)]
    return b.build([x], b.outputs)


def _bad_buffer_size_model() -> bytes:
    model, b = _one_conv()
    b.buffers[1].data = b.buffers[1].data[:-3]  # the weights lose 3 bytes
    return b.build()


def _tensor_buffer_out_of_range() -> bytes:
    model, b = _one_conv()
    b.tensors[1].buffer = 99
    return b.build()


def _op_input_out_of_range() -> bytes:
    model, b = _one_conv()
    b.operators[0].inputs = [0, 1, 57]
    return b.build()


def _buffer_offset_past_end() -> bytes:
    model, b = _one_conv()
    b.buffers[1].data = None
    b.buffers[1].offset = 10_000_000
    b.buffers[1].size = 108
    return b.build(align=False)


def _wrong_identifier() -> bytes:
    model, _ = _one_conv()
    return model[:4] + b"TFL2" + model[8:]


BAD_FILES = {
    "text": (lambda: b"this is not a model at all, just some text\n" * 3, "not a flatbuffer"),
    "tiny": (lambda: b"TFL", "not a flatbuffer"),
    "empty": (lambda: b"", "not a flatbuffer"),
    "wrong identifier": (_wrong_identifier, "not a TFLite model"),
    "truncated": (lambda: _one_conv()[0][:200], "corrupt or truncated"),
    "buffer size": (_bad_buffer_size_model, "needs 108 bytes"),
    "buffer index": (_tensor_buffer_out_of_range, "refers to buffer 99"),
    "tensor index": (_op_input_out_of_range, "refers to tensor 57"),
    "buffer offset": (_buffer_offset_past_end, "past the end of the file"),
    "float model": (_float_conv_model, "this is a float model: run `mcu-effnet qat` or quantize it first"),
    "unsupported op": (
        _unsupported_op_model,
        "unsupported op SIN at index 1 (int8 in, int8 out); supported: CONV_2D, DEPTHWISE_CONV_2D",
    ),
    "uint8 input": (
        _uint8_input_model,
        "model input 'x_u8' is uint8; mcu-effnet needs int8 inputs and outputs",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_one_user_error_naming_the_file(case: str, tmp_path) -> None:
    make, message = BAD_FILES[case]
    path = tmp_path / f"{case.replace(' ', '_')}.tflite"
    path.write_bytes(make())
    with pytest.raises(UserError) as info:
        load_tflite(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_a_converter_made_float_model_is_named_as_such() -> None:
    """The tflite-micro wheel ships TensorFlow's converted sine model: a real-world float file."""
    import tflite_micro

    path = Path(tflite_micro.__file__).parent / "python" / "tflite_micro" / "sine_float.tflite"
    if not path.exists():
        pytest.skip("the wheel no longer ships sine_float.tflite")
    with pytest.raises(UserError, match="this is a float model: run `mcu-effnet qat` or quantize it first"):
        load_tflite(path)


def test_unsupported_op_lists_every_supported_op() -> None:
    with pytest.raises(UserError) as info:
        load_tflite(_unsupported_op_model())
    assert str(info.value).endswith(", ".join(SUPPORTED_OPS))


def test_missing_file_and_directory(tmp_path) -> None:
    with pytest.raises(UserError, match="no such file"):
        load_tflite(tmp_path / "absent.tflite")
    with pytest.raises(UserError, match="is a directory"):
        load_tflite(tmp_path)


@pytest.mark.parametrize("case", ["text", "truncated", "float model", "unsupported op", "buffer offset"])
def test_bad_files_through_the_cli(case: str, tmp_path, cli) -> None:
    make, message = BAD_FILES[case]
    path = tmp_path / "bad.tflite"
    path.write_bytes(make())
    result = cli("inspect", path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mcu-effnet: error: {path}: ") and message in lines[0]
    assert "Traceback" not in result.stderr


def test_sim_rejects_an_input_of_the_wrong_shape_naming_both() -> None:
    model, _ = _one_conv()
    g = load_tflite(model)
    with pytest.raises(UserError, match=r"\(4, 6, 3\) int8.*\(N, 6, 5, 3\) int8"):
        run(g, np.zeros((4, 6, 3), np.int8))
    with pytest.raises(UserError, match=r"\(2, 6, 5, 3\) int16.*\(N, 6, 5, 3\) int8"):
        run(g, np.zeros((2, 6, 5, 3), np.int16))


def test_models_the_simulator_cannot_batch_load_but_do_not_run() -> None:
    """TFLite Micro runs them, so they load (inspect works); the batched simulator says why it won't."""
    b = ModelBuilder(np.random.default_rng(3))
    x = b.input((1, 2, 3))
    b.outputs = [b.reshape(x, (2, 3))]
    graph = load_tflite(b.build())
    with pytest.raises(UserError, match=r"has shape \[2, 3\]; the simulator needs every activation to start"):
        run(graph, np.zeros((4, 2, 3), np.int8))
    b = ModelBuilder(np.random.default_rng(3))
    x = b.input((1, 2, 3))
    b.outputs = [b.mean(x, (0, 1), keep_dims=True)]
    graph = load_tflite(b.build())
    with pytest.raises(UserError, match=r"op 0 \(MEAN\) works across the batch axis"):
        run(graph, np.zeros((4, 2, 3), np.int8))


# ---- fuzz: truncations and byte flips of real models --------------------------------------------


def _op_zoo() -> bytes:
    """The ops the random CNNs lack: PAD, MAX_POOL_2D, CONCATENATION, QUANTIZE, RELU, RELU6, MUL by a constant."""
    rng = np.random.default_rng(13)
    b = ModelBuilder(rng)
    x = b.input((1, 6, 6, 3), scale=0.05, zero_point=-10)
    p = b.pad(x, [(0, 0), (1, 1), (0, 1), (0, 0)])
    m = b.pool("MAX_POOL_2D", p, (2, 2), (2, 2), "SAME")
    r6 = b.unary("RELU6", m)
    cat = b.activation("cat", (1, 4, 4, 6), 0.05, -10)
    b.add_op("CONCATENATION", [m, r6], [cat], axis=3)
    q = b.unary("QUANTIZE", cat, out_scale=0.07, out_zp=3)
    r = b.unary("RELU", q, out_scale=0.05, out_zp=-128)
    const = b.add_tensor("gain", (1, 1, 1, 6), "int8", 0.02, 0, data=rng.integers(-127, 128, (1, 1, 1, 6)))
    g = b.add(r, const, kind="MUL")
    b.outputs = [b.pool("AVERAGE_POOL_2D", g, (4, 4), (1, 1), "VALID", activation="RELU")]
    return b.build()


_SEEDS = [
    random_cnn(np.random.default_rng(11)),
    random_mbconv(np.random.default_rng(12)),
    _one_conv()[0],
    _op_zoo(),
]


def test_op_zoo_seed_is_bit_exact() -> None:
    """The fuzz seed with the remaining ops is itself a valid model that TFLite Micro agrees on."""
    model = _SEEDS[3]
    graph = load_tflite(model)
    x = np.random.default_rng(0).integers(-128, 128, size=(64, 6, 6, 3)).astype(np.int8)
    expected = run_tflm(model, x)
    np.testing.assert_array_equal(run(graph, x), expected)
    assert len(np.unique(expected)) > 3


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(_SEEDS))),
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6),
    st.one_of(st.none(), st.integers(0, 1 << 20)),
)
def test_fuzzed_models_load_or_raise_user_error(
    which: int, flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(_SEEDS[which])
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    try:
        graph = load_tflite(bytes(data))
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    assert graph.ops  # a graph that loads is a whole, validated graph
    graph_stats(graph)  # and inspect's figures can be computed for it


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(_SEEDS))),
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_fuzzed_models_that_load_also_simulate(which: int, flips: list[tuple[int, int]]) -> None:
    """Validation must protect the kernels: whatever loads runs, or fails with a UserError."""
    data = bytearray(_SEEDS[which])
    for position, value in flips:
        data[position % len(data)] = value
    try:
        graph = load_tflite(bytes(data))
        shape = graph.tensors[graph.inputs[0]].shape
        x = np.zeros((2, *shape[1:]), np.int8)
        run(graph, x)
    except UserError:
        pass


@pytest.mark.parametrize("scale", [4.627662e-39, 1e-38, float(np.finfo(np.float32).max)])
def test_a_scale_whose_float32_arithmetic_overflows_is_refused_at_load(scale: float) -> None:
    """Found by the fuzz test above: a byte flip left a RELU6 output with a subnormal scale, and
    TFLite Micro's activation range (6 / scale in float32) became infinite. Such a scale is
    refused when the file loads, naming the tensor; it never reaches a kernel."""
    b = ModelBuilder(np.random.default_rng(0))
    x = b.input((1, 6, 5, 3), scale=0.02, zero_point=-5)
    y = b.conv2d(x, 4, (3, 3), activation="RELU6")
    b.tensors[y].quantization.scale = [scale]
    b.outputs = [y]
    with pytest.raises(UserError, match=r"scale .* out of the range"):
        load_tflite(b.build())


def test_a_constant_declared_as_model_output_is_refused() -> None:
    """Found by fuzzing: a byte flip made a weight tensor a model output; the simulator met a
    graph output that no op computes."""
    b = ModelBuilder(np.random.default_rng(0))
    x = b.input((1, 6, 5, 3), scale=0.02, zero_point=-5)
    y = b.conv2d(x, 4, (3, 3), activation="RELU6")
    weights = b.operators[0].inputs[1]
    with pytest.raises(UserError, match=r"model output 'conv_w_1' is a constant"):
        load_tflite(b.build(outputs=[weights, y]))


def test_header_corruptions() -> None:
    model, _ = _one_conv()
    huge_root = struct.pack("<I", len(model) + 5) + model[4:]
    with pytest.raises(UserError, match="root offset"):
        load_tflite(huge_root)


# ---- whole models vs TFLite Micro ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name, make",
    [
        ("cnn-mean-softmax", lambda rng: random_cnn(rng)),
        ("cnn-avgpool-logits", lambda rng: random_cnn(rng, head="avgpool", softmax=False)),
        ("mbconv-hardswish-se", lambda rng: random_mbconv(rng)),
        ("mbconv-relu6", lambda rng: random_mbconv(rng, activation="RELU6")),
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_whole_models_bit_exact_with_tflite_micro(name: str, make, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    model = make(rng)
    graph = load_tflite(model)
    shape = graph.tensors[graph.inputs[0]].shape
    x = rng.integers(-128, 128, size=(128, *shape[1:])).astype(np.int8)
    expected = run_tflm(model, x)
    got = run(graph, x)
    np.testing.assert_array_equal(got, expected)
    assert len(np.unique(expected)) > 3  # outputs vary with the input
    # capture gives every activation, each equal to TFLite Micro's own intermediate tensor
    values = run(graph, x[:5], capture=True)
    reference = tflm_all_tensors(model, x[:5])
    assert set(values) >= set(reference)
    for i, value in reference.items():
        np.testing.assert_array_equal(values[i], value, err_msg=f"tensor {i} {graph.tensors[i].name}")


# ---- stats and inspect ----------------------------------------------------------------------------


def test_stats_count_params_macs_and_bytes() -> None:
    model, _ = _one_conv()
    s = graph_stats(load_tflite(model))
    (layer,) = s.layers
    assert layer.params == 4 * 3 * 3 * 3 + 4
    assert layer.param_bytes == 4 * 27 + 4 * 4
    assert layer.macs == 3 * 5 * 4 * 27
    assert layer.output_bytes == 60 and layer.working_bytes == 60 + 90
    assert s.macs == layer.macs and s.peak_working_bytes == 150 and s.input_bytes == 90


def test_inspect_cli_table_and_json(tmp_path, cli) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(random_mbconv(np.random.default_rng(5)))
    table = cli("inspect", path)
    assert table.returncode == 0, table.stderr
    assert "DEPTHWISE_CONV_2D" in table.stdout and "HARD_SWISH" in table.stdout and "total" in table.stdout
    result = cli("inspect", path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = graph_stats(load_tflite(path))
    assert report["macs"] == expected.macs and report["params"] == expected.params
    assert [layer["kind"] for layer in report["layers"]] == [op.kind for op in load_tflite(path).ops]
    assert report["inputs"][0]["dtype"] == "int8"


@pytest.mark.parametrize("declared_axis", [1, 3])
def test_per_channel_bias_with_any_declared_axis_runs_as_tflite_micro_runs_it(declared_axis: int) -> None:
    """TFLite Micro's own person-detection model declares quantized_dimension 3 on a 1-D bias
    with per-channel scales; TFLite Micro never reads a bias's axis, and a 1-D tensor has only
    axis 0. Such a model loads, with the bias read per channel, and runs bit-exact."""
    model, b = _one_conv()
    bias = b.operators[0].inputs[2]
    b.tensors[bias].quantization.quantizedDimension = declared_axis
    model = b.build()
    graph = load_tflite(model)
    assert graph.tensors[bias].quantized_dimension == 0
    x = np.random.default_rng(1).integers(-128, 128, size=(16, 6, 5, 3)).astype(np.int8)
    np.testing.assert_array_equal(run(graph, x), run_tflm(model, x))


def test_per_channel_scales_on_a_wrong_axis_of_a_weight_tensor_are_still_refused() -> None:
    model, b = _one_conv()
    weights = b.operators[0].inputs[1]
    b.tensors[weights].quantization.quantizedDimension = 3
    with pytest.raises(UserError, match=r"per-channel scales on axis 3"):
        load_tflite(b.build())


def test_an_empty_tensor_loads_but_an_op_we_run_refuses_it_by_name() -> None:
    """Zero dimensions are legal in the schema (LSTM placeholders are [0]), so they are no longer
    "corrupt"; an op mcu-effnet runs refuses an empty tensor, naming the op and the tensor."""
    b = ModelBuilder(np.random.default_rng(0))
    x = b.input((1, 6, 5, 3), scale=0.02, zero_point=-5)
    y = b.conv2d(x, 4, (3, 3), activation="RELU6")
    b.tensors[y].shape = [1, 0, 5, 4]
    b.outputs = [y]
    with pytest.raises(UserError, match=r"op 0 \(CONV_2D\): tensor 'conv_3' has shape \[1, 0, 5, 4\]"):
        load_tflite(b.build())
