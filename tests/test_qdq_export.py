"""``mcu-effnet export`` on QDQ ONNX written by onnxruntime's ``quantize_static``.

A plain-torch MobileNetV2-style network (``torch_models``) is exported by ``torch.onnx``,
calibrated on a few synthetic images and quantized to QDQ (per-channel int8 weights, int8
activations), then written to ``.tflite`` through the installed command: the per-op gate
must pass and the file must run bit-exactly in the simulator and TFLite Micro. Graphs the
writer cannot take are refused in one line naming the ONNX node and its op type.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from tflite_builder import run_tflm
from torch import nn
from torch_models import InvertedResidual, MobileNetV2Small, randomize_batch_norm

from mcu_effnet.graph import load_tflite
from mcu_effnet.oracle import tflm_all_tensors
from mcu_effnet.quant.tflite_check import quantize_like_onnx
from mcu_effnet.quant.tflite_export import export_tflite
from mcu_effnet.sim import run as simulate

pytestmark = pytest.mark.filterwarnings("ignore")

SHAPE = (1, 3, 32, 32)


def calibration_images(n: int, shape=SHAPE, seed: int = 0) -> np.ndarray:
    """Float NCHW images in [0, 1), as the network takes pixel / 255."""
    return np.random.default_rng(seed).random((n, *shape[1:]), dtype=np.float32)


def to_qdq(
    module: nn.Module,
    path: Path,
    shape=SHAPE,
    activations: str = "QInt8",
    weights: str = "QInt8",
    fold_constants: bool = True,
) -> Path:
    """torch → float ONNX → onnxruntime ``quantize_static`` (QDQ, per-channel), as a user would."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Images(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"input": x[None]} for x in calibration_images(8, shape)])

        def get_next(self):
            return next(self.batches, None)

    float_path = path.with_name(path.stem + ".float.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            torch.rand(shape),
            str(float_path),
            dynamo=False,
            opset_version=13,
            input_names=["input"],
            output_names=["logits"],
            do_constant_folding=fold_constants,
        )
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_static logs advice through the root logger
    try:
        quantize_static(
            str(float_path),
            str(path),
            Images(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=getattr(QuantType, activations),
            weight_type=getattr(QuantType, weights),
        )
    finally:
        root.setLevel(level)
    return path


@pytest.fixture(scope="module")
def mobilenet() -> nn.Module:
    torch.manual_seed(0)
    return randomize_batch_norm(MobileNetV2Small()).eval()


@pytest.fixture(scope="module")
def mobilenet_qdq(mobilenet, tmp_path_factory) -> Path:
    return to_qdq(mobilenet, tmp_path_factory.mktemp("qdq") / "mobilenet.onnx")


def expected_ops(model: MobileNetV2Small) -> dict[str, int]:
    """The TFLite ops the network's own modules call for: stride-2 3x3 convolutions need an
    explicit PAD (PyTorch pads 1 on both sides, TF SAME pads 0 before and 1 after)."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return {
        "CONV_2D": sum(m.groups == 1 for m in convs),
        "DEPTHWISE_CONV_2D": sum(m.groups > 1 for m in convs),
        "PAD": sum(m.stride == (2, 2) for m in convs),
        "ADD": sum(isinstance(m, InvertedResidual) and m.residual for m in model.modules()),
        "MEAN": 1,
        "RESHAPE": 1,  # ONNX Flatten of the pooled [1, C, 1, 1] after its own Q/DQ pair
        "FULLY_CONNECTED": 1,
    }


def test_cli_exports_a_quantize_static_mobilenetv2(cli, mobilenet, mobilenet_qdq, tmp_path):
    images = calibration_images(32, seed=1)
    np.save(tmp_path / "images.npy", images)
    out = tmp_path / "mobilenet.tflite"
    result = cli("export", mobilenet_qdq, "--out", out, "--inputs", tmp_path / "images.npy", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ops"] == expected_ops(mobilenet)
    # the gate: every op alone in TFLite Micro within 1 LSB of onnxruntime on >= 99 % of elements
    compute_ops = sum(report["ops"].values()) - report["ops"]["PAD"] - report["ops"]["RESHAPE"]
    assert report["ops_checked"] == compute_ops
    assert report["per_op_worst"]["within_1lsb"] >= 0.99
    assert report["check"]["tflm"]["samples"] == 32
    # calibrated on [0, 1) images: scale max / 255, zero point -128
    assert report["input"] == {
        "shape": [1, 32, 32, 3],
        "scale": pytest.approx(1 / 255, rel=1e-4),
        "zero_point": -128,
    }
    assert report["output"]["shape"] == [1, 10]

    # the written file in the simulator: bit-exact with TFLite Micro, output and every tensor
    blob = out.read_bytes()
    graph = load_tflite(blob)
    x = np.transpose(quantize_like_onnx(images, report["input"]["scale"], -128), (0, 2, 3, 1))
    expected = run_tflm(blob, x)
    np.testing.assert_array_equal(simulate(graph, x), expected)
    assert len(np.unique(expected)) > 3  # the logits vary with the input
    reference = tflm_all_tensors(blob, x[:2])
    values = simulate(graph, x[:2], capture=True)
    for i, value in reference.items():
        np.testing.assert_array_equal(values[i], value, err_msg=f"tensor {i} {graph.tensors[i].name}")
    # weights are named after their PyTorch parameters, nested Sequentials included
    weights = {
        graph.tensors[op.inputs[1]].name for op in graph.ops if op.kind.endswith(("CONV_2D", "CONNECTED"))
    }
    assert weights == {
        k for k in mobilenet.state_dict() if k.endswith("weight") and mobilenet.get_parameter(k).ndim > 1
    }


def test_uint8_activations_write_the_same_file(mobilenet, mobilenet_qdq, tmp_path):
    """QUInt8 zero point z is int8 zero point z - 128 with the same scale: the same integers."""
    unsigned = to_qdq(mobilenet, tmp_path / "uint8.onnx", activations="QUInt8")
    zero_points = [
        numpy_helper.to_array(i)
        for i in onnx.load(unsigned).graph.initializer
        if i.name.endswith("zero_point")
    ]
    assert any(z.dtype == np.uint8 for z in zero_points)  # onnxruntime did write uint8 activations
    export_tflite(mobilenet_qdq, tmp_path / "int8.tflite", check=False)
    export_tflite(unsigned, tmp_path / "uint8.tflite", check=False)
    assert (tmp_path / "uint8.tflite").read_bytes() == (tmp_path / "int8.tflite").read_bytes()


def test_a_weight_at_minus_128_runs_and_is_noted(mobilenet_qdq, tmp_path):
    """TFLite's spec keeps int8 weights in [-127, 127]; TFLite Micro computes -128 exactly, so the
    writer takes it (the per-op gate runs the layer) and says so."""
    proto = onnx.load(mobilenet_qdq)
    first_conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    dq = next(n for n in proto.graph.node if first_conv.input[1] in n.output)
    init = next(i for i in proto.graph.initializer if i.name == dq.input[0])
    values = numpy_helper.to_array(init).copy()
    values[values == values.min()] = -128
    init.CopyFrom(numpy_helper.from_array(values, init.name))
    edited = tmp_path / "minus128.onnx"
    onnx.save(proto, edited)
    report = export_tflite(edited, tmp_path / "m.tflite", samples=8)
    assert report.worst_op is not None and report.worst_op.within_1lsb >= 0.99
    assert report.per_op[0].kind == "CONV_2D" and report.per_op[0].within_1lsb >= 0.99
    assert any("int8 weights use -128 (features.0.0)" in note for note in report.notes), report.notes


class SmallNet(nn.Module):
    def __init__(self, act: nn.Module, batch_norm: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=not batch_norm)
        self.bn = randomize_batch_norm(nn.BatchNorm2d(8)) if batch_norm else nn.Identity()
        self.act = act
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.act(self.bn(self.conv(x))).mean((2, 3)))


@pytest.mark.parametrize(
    "kind, message",
    [
        ("tanh", "node '/act/Tanh' (Tanh) has no int8 TFLite equivalent"),
        # onnxruntime quantizes GELU's float constants (Q of a constant); the refusal still names the op
        ("gelu", "node '/act/Div' (Div) has no int8 TFLite equivalent"),
        ("batch_norm", "node '/bn/BatchNormalization' (BatchNormalization): a float batch norm"),
        ("uint8_weights", "(Conv): weight 'conv.weight_DequantizeLinear_Output' is uint8"),
    ],
)
def test_cli_refuses_what_it_cannot_write_in_one_line(cli, tmp_path, kind, message):
    torch.manual_seed(1)
    act = {"tanh": nn.Tanh(), "gelu": nn.GELU()}.get(kind, nn.ReLU6())
    shape = (1, 3, 8, 8)
    onnx_path = to_qdq(
        SmallNet(act, batch_norm=kind == "batch_norm"),
        tmp_path / f"{kind}.onnx",
        shape=shape,
        # onnxruntime pairs uint8 weights only with uint8 activations
        activations="QUInt8" if kind == "uint8_weights" else "QInt8",
        weights="QUInt8" if kind == "uint8_weights" else "QInt8",
        fold_constants=kind != "batch_norm",  # without folding, torch.onnx keeps BatchNormalization
    )
    out = tmp_path / "out.tflite"
    result = cli("export", onnx_path, "--out", out)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcu-effnet: error:"), result.stderr
    assert message in lines[0] and onnx_path.name in lines[0], lines[0]
    assert not out.exists()
