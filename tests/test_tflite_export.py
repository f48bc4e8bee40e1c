"""QCDQ ONNX → int8 .tflite writer, held against TFLite Micro and onnxruntime.

Single-pattern graphs are small Brevitas modules built from the project's quantizer presets,
calibrated on a few random batches (non-trivial scales), exported with
``export_onnx_qcdq`` and written with ``export_tflite``. Each is then run by this file's own
comparison: onnxruntime on the float graph (optimisations off) against TFLite Micro on the
written file, in the output's integer domain.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
from brevitas.export import export_onnx_qcdq
from brevitas.graph.calibrate import calibration_mode
from brevitas.quant import ShiftedUint8ActPerTensorFloat, Uint8ActPerTensorFloat
from tflite_builder import run_tflm
from torch import nn
from torch.nn import functional as F

from mcu_effnet.errors import UserError
from mcu_effnet.models.quantizers import (
    ActInt8,
    BiasInt32,
    InputUint8Fixed,
    Relu6Uint8,
    SigmoidUint8Fixed,
    WeightPerChannelInt8,
)
from mcu_effnet.quant.tflite_export import export_tflite
from mcu_effnet.quant.tflite_writer import LABELS_METADATA, WRITTEN_OPS

# Brevitas and torch.onnx warn on every export; they say nothing about the writer.
pytestmark = pytest.mark.filterwarnings("ignore")


# ----------------------------------------------------------------------------- helpers
def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema


def read_model(blob: bytes):
    schema = _schema()
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(blob, 0))


def op_names(blob: bytes) -> list[str]:
    schema = _schema()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = read_model(blob)
    return [names[model.operatorCodes[op.opcodeIndex].builtinCode] for op in model.subgraphs[0].operators]


def ops_with_options(blob: bytes) -> list[tuple[str, object]]:
    model = read_model(blob)
    return list(zip(op_names(blob), [op.builtinOptions for op in model.subgraphs[0].operators], strict=True))


def calibrate(model: nn.Module, shape: tuple[int, ...], batches: int = 3, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad(), calibration_mode(model):
        for _ in range(batches):
            model(torch.rand((4, *shape[1:]), generator=gen))
    return model.eval()


def to_qcdq(model: nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx_qcdq(model, torch.rand(shape), str(path), dynamo=False)
    return path


def reference_vs_tflm(onnx_path: Path, blob: bytes, n: int = 16, seed: int = 1) -> np.ndarray:
    """|ONNX − TFLite Micro| in output LSBs, computed here independently of the export check."""
    import onnxruntime as ort

    model = read_model(blob)
    sub = model.subgraphs[0]
    tin, tout = sub.tensors[sub.inputs[0]], sub.tensors[sub.outputs[0]]
    s_in, z_in = float(tin.quantization.scale[0]), int(tin.quantization.zeroPoint[0])
    s_out, z_out = float(tout.quantization.scale[0]), int(tout.quantization.zeroPoint[0])
    rng = np.random.default_rng(seed)
    q = rng.integers(-128, 128, size=(n, *tin.shape[1:])).astype(np.int8)  # NHWC int8 codes
    x = np.transpose((q.astype(np.float32) - z_in) * np.float32(s_in), (0, 3, 1, 2)).astype(np.float32)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    name, out_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    y = np.concatenate([session.run([out_name], {name: x[i : i + 1]})[0] for i in range(n)])
    if y.ndim == 4:
        y = np.transpose(y, (0, 2, 3, 1))
    ref = np.rint(y.astype(np.float64) / s_out).astype(np.int64) + z_out
    got = run_tflm(blob, q).astype(np.int64)
    return np.abs(ref - got)


def export_and_compare(module: nn.Module, shape, tmp_path: Path, **kwargs):
    onnx_path = to_qcdq(calibrate(module, shape), shape, tmp_path / "m.onnx")
    out = tmp_path / "m.tflite"
    report = export_tflite(onnx_path, out, **kwargs)
    blob = out.read_bytes()
    return report, blob, reference_vs_tflm(onnx_path, blob)


# ----------------------------------------------------------------------------- test modules
def qconv(cin, cout, k, stride=1, padding=0, groups=1, output_quant=ActInt8, dilation=1):
    return qnn.QuantConv2d(
        cin,
        cout,
        k,
        stride=stride,
        padding=padding,
        groups=groups,
        dilation=dilation,
        bias=True,
        weight_quant=WeightPerChannelInt8,
        bias_quant=BiasInt32,
        output_quant=output_quant,
        return_quant_tensor=True,
    )


def qident(quant=ActInt8):
    return qnn.QuantIdentity(act_quant=quant, return_quant_tensor=True)


def value(x):
    return x.value if hasattr(x, "value") else x


class OneConv(nn.Module):
    """Input quantizer, optional explicit zero pad (TF SAME style), one conv."""

    def __init__(self, k, stride, padding, pad=None, cin=3, cout=8, dilation=1):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.pad = pad
        self.conv = qconv(cin, cout, k, stride, padding, dilation=dilation)

    def forward(self, x):
        x = self.inp(x)
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return self.conv(x)


class Depthwise(nn.Module):
    def __init__(self, k, stride, multiplier=1, channels=8):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.stem = qconv(3, channels, 1)
        self.dw = qconv(channels, channels * multiplier, k, stride, k // 2, groups=channels)

    def forward(self, x):
        return self.dw(self.stem(self.inp(x)))


class Residual(nn.Module):
    """Two branches with different output scales added: ADD rescales both inputs."""

    def __init__(self):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.a = qconv(3, 8, 3, 1, 1)
        self.b = qconv(3, 8, 1)
        with torch.no_grad():
            self.b.weight.mul_(8.0)  # a wider range, so a different calibrated scale
        self.add = qident()

    def forward(self, x):
        x = self.inp(x)
        return self.add(value(self.a(x)) + value(self.b(x)))


class Swish(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.conv = qconv(3, 8, 3, 1, 1)
        self.sigmoid = qnn.QuantSigmoid(act_quant=SigmoidUint8Fixed, return_quant_tensor=True)
        self.mul = qident()

    def forward(self, x):
        x = self.conv(self.inp(x))
        return self.mul(value(x) * value(self.sigmoid(x)))


class SqueezeExcite(nn.Module):
    """mean(H, W) → 1x1 conv → swish → 1x1 conv → sigmoid → broadcast multiply."""

    def __init__(self, channels=16, squeezed=4):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.conv = qconv(3, channels, 3, 1, 1)
        self.pool = qident()
        self.reduce = qconv(channels, squeezed, 1)
        self.reduce_sigmoid = qnn.QuantSigmoid(act_quant=SigmoidUint8Fixed, return_quant_tensor=True)
        self.reduce_act = qident()
        self.expand = qconv(squeezed, channels, 1)
        self.gate = qnn.QuantSigmoid(act_quant=SigmoidUint8Fixed, return_quant_tensor=True)
        self.scale = qident()

    def forward(self, x):
        x = self.conv(self.inp(x))
        s = self.pool(value(x).mean(dim=(2, 3), keepdim=True))
        s = self.reduce(s)
        s = self.reduce_act(value(s) * value(self.reduce_sigmoid(s)))
        g = self.gate(self.expand(s))
        return self.scale(value(x) * value(g))


class Classifier(nn.Module):
    """conv → global pooling (mean or AdaptiveAvgPool2d + flatten) → fully connected logits."""

    def __init__(self, pooling: str, classes=5):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.conv = qconv(3, 16, 3, 1, 1)
        self.pooling = pooling
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.pool = qident()
        self.fc = qnn.QuantLinear(
            16,
            classes,
            bias=True,
            weight_quant=WeightPerChannelInt8,
            bias_quant=BiasInt32,
            output_quant=ActInt8,
            return_quant_tensor=True,
        )

    def forward(self, x):
        x = value(self.conv(self.inp(x)))
        if self.pooling == "mean":
            p = self.pool(x.mean(dim=(2, 3)))
        else:
            p = self.pool(torch.flatten(self.avg(x), 1))
        return self.fc(p)


class FusedAct(nn.Module):
    """Conv without output quantizer, then ReLU6 (HardTanh 0..6) or ReLU: a fused activation."""

    def __init__(self, kind: str):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.conv = qconv(3, 8, 3, 1, 1, output_quant=None)
        if kind == "relu6":
            self.act = qnn.QuantHardTanh(
                act_quant=Relu6Uint8, min_val=0.0, max_val=6.0, return_quant_tensor=True
            )
        else:
            self.act = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)

    def forward(self, x):
        return self.act(self.conv(self.inp(x)))


class HardSwish(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.conv = qconv(3, 8, 3, 1, 1)
        self.hswish = nn.Hardswish()
        self.out = qident()

    def forward(self, x):
        return self.out(self.hswish(value(self.conv(self.inp(x)))))


def assert_agrees(report, diffs: np.ndarray, single_op: bool) -> None:
    assert report.check is not None and report.check.passed, report.summary_lines()
    assert report.check.tflm.samples == 64
    if single_op:  # no layer to compound a difference: every element within 1 LSB
        assert diffs.max() <= 1, diffs.max()
    else:
        assert np.mean(diffs <= 1) >= 0.99


# ----------------------------------------------------------------------------- single patterns
@pytest.mark.parametrize(
    "k, stride, padding, pad, size, want_padding, want_pad_op, dilation",
    [
        (3, 1, 1, None, 12, "SAME", False, 1),  # PyTorch symmetric pad == TF SAME at stride 1
        (1, 1, 0, None, 12, "SAME", False, 1),  # 1x1: SAME and VALID coincide; SAME is what TFLite writes
        (3, 1, 0, None, 12, "VALID", False, 1),
        (3, 2, 1, None, 12, "VALID", True, 1),  # the padding trap: PyTorch pads 1|1, SAME pads 0|1
        (3, 2, 0, (0, 1, 0, 1), 12, "SAME", False, 1),  # explicit TF-style pad folded into SAME
        (5, 2, 2, None, 13, "SAME", False, 1),  # odd input: symmetric 2|2 is SAME
        (3, 2, 1, None, 13, "SAME", False, 1),
        (3, 1, 2, None, 12, "SAME", False, 2),  # dilation 2: SAME pads (k - 1) * d / 2 each side
        (3, 1, 1, None, 12, "VALID", True, 2),  # too little padding for SAME at dilation 2
    ],
)
def test_conv_padding_and_stride(
    tmp_path, k, stride, padding, pad, size, want_padding, want_pad_op, dilation
):
    torch.manual_seed(0)
    module = OneConv(k, stride, padding, pad, dilation=dilation)
    report, blob, diffs = export_and_compare(module, (1, 3, size, size), tmp_path)
    assert_agrees(report, diffs, single_op=True)
    ops = ops_with_options(blob)
    schema = _schema()
    conv = [o for name, o in ops if name == "CONV_2D"]
    assert len(conv) == 1
    assert conv[0].padding == getattr(schema.Padding, want_padding)
    assert (conv[0].strideH, conv[0].strideW) == (stride, stride)
    assert (conv[0].dilationHFactor, conv[0].dilationWFactor) == (dilation, dilation)
    assert ("PAD" in [name for name, _ in ops]) == want_pad_op


@pytest.mark.parametrize("k, stride, multiplier", [(3, 1, 1), (3, 2, 1), (5, 1, 1), (3, 1, 2)])
def test_depthwise(tmp_path, k, stride, multiplier):
    torch.manual_seed(1)
    report, blob, diffs = export_and_compare(Depthwise(k, stride, multiplier), (1, 3, 12, 12), tmp_path)
    assert_agrees(report, diffs, single_op=False)
    model = read_model(blob)
    ops = ops_with_options(blob)
    dw = [(i, o) for i, (name, o) in enumerate(ops) if name == "DEPTHWISE_CONV_2D"]
    assert len(dw) == 1 and dw[0][1].depthMultiplier == multiplier
    weights = model.subgraphs[0].tensors[model.subgraphs[0].operators[dw[0][0]].inputs[1]]
    assert list(weights.shape) == [1, k, k, 8 * multiplier]
    assert weights.quantization.quantizedDimension == 3
    assert len(weights.quantization.scale) == 8 * multiplier  # per channel


def test_residual_add_with_different_input_scales(tmp_path):
    torch.manual_seed(2)
    report, blob, diffs = export_and_compare(Residual(), (1, 3, 10, 10), tmp_path)
    assert_agrees(report, diffs, single_op=False)
    model = read_model(blob)
    sub = model.subgraphs[0]
    add = [op for name, op in zip(op_names(blob), sub.operators, strict=True) if name == "ADD"]
    assert len(add) == 1
    s1, s2, s_out = (sub.tensors[i].quantization.scale[0] for i in (*add[0].inputs, add[0].outputs[0]))
    assert s1 != s2 and s_out not in (s1, s2)


def test_swish_is_logistic_and_mul(tmp_path):
    torch.manual_seed(3)
    report, blob, diffs = export_and_compare(Swish(), (1, 3, 10, 10), tmp_path)
    assert_agrees(report, diffs, single_op=False)
    assert op_names(blob) == ["CONV_2D", "LOGISTIC", "MUL"]
    sub = read_model(blob).subgraphs[0]
    logistic_out = sub.tensors[sub.operators[1].outputs[0]].quantization
    assert float(logistic_out.scale[0]) == 1 / 256 and int(logistic_out.zeroPoint[0]) == -128


def test_squeeze_excitation_block(tmp_path):
    torch.manual_seed(4)
    report, blob, diffs = export_and_compare(SqueezeExcite(), (1, 3, 8, 8), tmp_path)
    assert_agrees(report, diffs, single_op=False)
    assert op_names(blob) == ["CONV_2D", "MEAN", "CONV_2D", "LOGISTIC", "MUL", "CONV_2D", "LOGISTIC", "MUL"]
    sub = read_model(blob).subgraphs[0]
    gate_mul = sub.operators[-1]
    a, b = (list(sub.tensors[i].shape) for i in gate_mul.inputs)
    assert a == [1, 8, 8, 16] and b == [1, 1, 1, 16]  # broadcast over H and W in NHWC


@pytest.mark.parametrize("pooling", ["mean", "avgpool"])
def test_pooling_and_fully_connected(tmp_path, pooling):
    """torch.mean over (2, 3) and AdaptiveAvgPool2d(1) + flatten both become MEAN without keep_dims."""
    torch.manual_seed(5)
    report, blob, diffs = export_and_compare(Classifier(pooling), (1, 3, 12, 12), tmp_path)
    assert_agrees(report, diffs, single_op=False)
    names = op_names(blob)
    assert names == ["CONV_2D", "MEAN", "FULLY_CONNECTED"]
    assert report.output_shape == (1, 5)
    model = read_model(blob)
    sub = model.subgraphs[0]
    mean = sub.operators[1]
    assert mean.builtinOptions.keepDims is False
    assert list(model.buffers[sub.tensors[mean.inputs[1]].buffer].data.view(np.int32)) == [1, 2]
    assert list(sub.tensors[mean.outputs[0]].shape) == [1, 16]


@pytest.mark.parametrize("kind, fused", [("relu6", "RELU6"), ("relu", "RELU")])
def test_fused_activation(tmp_path, kind, fused):
    torch.manual_seed(6)
    report, blob, diffs = export_and_compare(FusedAct(kind), (1, 3, 10, 10), tmp_path)
    assert_agrees(report, diffs, single_op=True)
    (name, options), *rest = ops_with_options(blob)
    schema = _schema()
    assert name == "CONV_2D" and not rest
    assert options.fusedActivationFunction == getattr(schema.ActivationFunctionType, fused)


def test_hard_swish(tmp_path):
    torch.manual_seed(7)
    report, blob, diffs = export_and_compare(HardSwish(), (1, 3, 10, 10), tmp_path)
    assert_agrees(report, diffs, single_op=False)
    assert op_names(blob) == ["CONV_2D", "HARD_SWISH"]


# ----------------------------------------------------------------------------- the file itself
@pytest.mark.tflm_tree
def test_every_op_the_writer_writes_and_we_run_can_be_registered_in_tflite_micro():
    from mcu_effnet.codegen.tflm import find_tflm_dir
    from mcu_effnet.graph import SUPPORTED_OPS

    tree, _ = find_tflm_dir()
    text = (tree / "tensorflow" / "lite" / "micro" / "micro_mutable_op_resolver.h").read_text()
    for name in WRITTEN_OPS & set(SUPPORTED_OPS):
        assert f"BuiltinOperator_{name}," in text or f"BuiltinOperator_{name})" in text, name


def test_file_parses_is_int_only_aligned_and_tflm_runs_every_op(tmp_path):
    torch.manual_seed(9)
    report, blob, _ = export_and_compare(
        Classifier("avgpool"), (1, 3, 12, 12), tmp_path, labels=list("abcde")
    )
    schema = _schema()
    assert blob[4:8] == b"TFL3"
    model = read_model(blob)
    sub = model.subgraphs[0]
    types = {t.type for t in sub.tensors}
    assert types <= {schema.TensorType.INT8, schema.TensorType.INT32}
    for t in sub.tensors:  # every int8 tensor carries its quantization
        if t.type == schema.TensorType.INT8:
            assert t.quantization is not None and len(t.quantization.scale) >= 1
    assert set(op_names(blob)) <= WRITTEN_OPS
    # 16-byte aligned buffer data (the aligner's job)
    raw = schema.Model.GetRootAsModel(blob, 0)
    base = np.frombuffer(blob, np.uint8).ctypes.data
    for i in range(raw.BuffersLength()):
        b = raw.Buffers(i)
        if b.DataLength() > 0:
            assert (b.DataAsNumpy().ctypes.data - base) % 16 == 0
    # the labels metadata entry
    entry = [m for m in model.metadata if m.name.decode() == LABELS_METADATA]
    assert len(entry) == 1
    assert bytes(model.buffers[entry[0].buffer].data).decode() == "a\nb\nc\nd\ne"
    # an ordinary file: permissions from the umask, not mkstemp's 0600
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "m.tflite").stat().st_mode & 0o777 == 0o666 & ~umask
    # PyTorch module names survive as tensor names
    names = {t.name.decode() for t in sub.tensors}
    assert {"conv.weight", "conv.bias", "fc.weight", "fc.bias", "fc"} <= names


def test_written_file_loads_in_the_project_graph_loader(tmp_path):
    from mcu_effnet.graph import load_tflite
    from mcu_effnet.graph.support import validate_graph

    torch.manual_seed(10)
    _, blob, _ = export_and_compare(SqueezeExcite(), (1, 3, 8, 8), tmp_path)
    graph = load_tflite(blob)
    validate_graph(graph, "se")
    assert [op.kind for op in graph.ops] == op_names(blob)


# ----------------------------------------------------------------------------- whole models
WHOLE = [("full", -6), ("full", -1), ("lite", -6), ("lite", -1)]


@pytest.mark.slow
@pytest.mark.parametrize("variant, phi", WHOLE)
def test_whole_build_quant_model(tmp_path, variant, phi):
    from mcu_effnet.arch import make_spec
    from mcu_effnet.models import build_quant

    torch.manual_seed(0)
    spec = make_spec(phi, variant=variant, classes=10, resolution=32, board=None)
    model = calibrate(build_quant(spec), (1, 3, 32, 32))
    onnx_path = to_qcdq(model, (1, 3, 32, 32), tmp_path / "model.onnx")
    out = tmp_path / "model.tflite"
    # Lite (ReLU6 outputs at scale ~6/255 feeding finer-scaled layers) amplifies TFLite Micro's
    # double-rounding flips end to end (measured 98.3 % within 1 LSB at phi -6, 99.5 % at -1):
    # the per-op gate writes the file with a warning; --strict (end to end too) refuses it.
    report = export_tflite(onnx_path, out, labels=[str(i) for i in range(10)], strict=variant == "full")
    assert out.exists() and report.output_shape == (1, 10)
    assert report.input_scale == pytest.approx(1 / 255) and report.input_zero_point == -128
    check = report.check
    assert check is not None
    if variant == "full":
        assert check.passed and not report.warnings
    if (variant, phi) == ("lite", -6):
        assert not check.passed and "double rounding" in report.warnings[0]
        strict_out = tmp_path / "strict.tflite"
        with pytest.raises(UserError, match=r"export check failed \(strict\).*98\.\d\d% of"):
            export_tflite(onnx_path, strict_out, strict=True)
        assert not strict_out.exists()
    # every op alone, fed onnxruntime's own int8 inputs, is within 1 LSB: the writer is exact
    assert report.per_op and all(a.within_1lsb == 1.0 for a in report.per_op)
    assert check.tflm.top1 >= 0.99 and check.tflm.within_1lsb >= 0.97 and check.tflm.max_abs_lsb <= 2
    # without TFLite Micro's double rounding the file meets the end-to-end bar on every variant
    assert check.single_rounding is not None and check.single_rounding.passed
    assert check.single_rounding.within_1lsb >= check.tflm.within_1lsb
    names = op_names(out.read_bytes())
    assert "FULLY_CONNECTED" in names and "MEAN" in names
    # and on real images: the built-in synthetic set's validation split
    from mcu_effnet.data import ImageDataset, open_data, stack_samples
    from mcu_effnet.quant.onnx_graph import load_onnx_graph
    from mcu_effnet.quant.qcdq_lower import lower_qcdq
    from mcu_effnet.quant.tflite_check import check_export

    images, _ = stack_samples(ImageDataset(open_data(None, max_val=64).val, 32, augment=False), 64)
    real = check_export(
        str(onnx_path), out.read_bytes(), lower_qcdq(load_onnx_graph(onnx_path)), images / np.float32(255)
    )
    assert real.input_source == "validation images" and real.tflm.samples == 64
    assert real.tflm.top1 >= 0.99 and real.tflm.within_1lsb >= 0.97 and real.tflm.max_abs_lsb <= 2
    assert real.single_rounding is not None and real.single_rounding.passed
    if variant == "full":
        assert real.passed
    if variant == "full":
        assert {"LOGISTIC", "MUL"} <= set(names)
    else:
        assert not {"LOGISTIC", "MUL", "HARD_SWISH"} & set(names)


# ----------------------------------------------------------------------------- bad models
class ClampedConv(nn.Module):
    """Conv, then a float clamp to [0.5, 6] before an int8 quantizer: no TFLite fused activation."""

    def __init__(self):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.conv = qconv(3, 4, 1, output_quant=None)
        self.out = qident()

    def forward(self, x):
        return self.out(torch.clamp(value(self.conv(self.inp(x))), 0.5, 6.0))


class TanhNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.conv = qconv(3, 4, 1)
        self.tanh = qnn.QuantTanh(return_quant_tensor=True)

    def forward(self, x):
        return self.tanh(self.conv(self.inp(x)))


class BadSigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.conv = qconv(3, 4, 1)
        self.sig = qnn.QuantSigmoid(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)

    def forward(self, x):
        return self.sig(self.conv(self.inp(x)))


def _float_onnx(path: Path) -> Path:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    torch.onnx.export(model, torch.rand(1, 3, 6, 6), str(path), dynamo=False)
    return path


def _bad_onnx(kind: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{kind}.onnx"
    if kind == "float":
        return _float_onnx(path)
    if kind == "garbage":
        path.write_bytes(b"not an onnx model at all")
        return path
    if kind == "missing":
        return path
    module = {"clip": ClampedConv, "tanh": TanhNet, "sigmoid": BadSigmoid}[kind]()
    return to_qcdq(calibrate(module, (1, 3, 6, 6)), (1, 3, 6, 6), path)


# ----------------------------------------------------------------------------- refusals (library)
def test_sigmoid_not_at_1_over_256_is_refused(tmp_path):
    onnx_path = to_qcdq(calibrate(BadSigmoid(), (1, 3, 6, 6)), (1, 3, 6, 6), tmp_path / "bad.onnx")
    with pytest.raises(UserError, match="1/256"):
        export_tflite(onnx_path, tmp_path / "bad.tflite")
    assert not (tmp_path / "bad.tflite").exists()


def test_wrong_label_count_is_refused(tmp_path):
    onnx_path = to_qcdq(calibrate(Classifier("mean"), (1, 3, 8, 8)), (1, 3, 8, 8), tmp_path / "c.onnx")
    with pytest.raises(UserError, match="3 labels"):
        export_tflite(onnx_path, tmp_path / "c.tflite", labels=["a", "b", "c"])
    assert not (tmp_path / "c.tflite").exists()


def test_int8_top1_runs_the_file_on_uint8_images(tmp_path):
    import onnxruntime as ort

    from mcu_effnet.quant.tflite_check import int8_predictions, int8_top1

    torch.manual_seed(12)
    onnx_path = to_qcdq(calibrate(Classifier("mean"), (1, 3, 8, 8)), (1, 3, 8, 8), tmp_path / "c.onnx")
    export_tflite(onnx_path, tmp_path / "c.tflite")
    blob = (tmp_path / "c.tflite").read_bytes()
    images = np.random.default_rng(4).integers(0, 256, size=(32, 8, 8, 3), dtype=np.uint8)
    nhwc = int8_predictions(blob, images)
    assert np.array_equal(nhwc, int8_predictions(blob, np.transpose(images, (0, 3, 1, 2))))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = np.transpose(images, (0, 3, 1, 2)).astype(np.float32) / np.float32(255.0)
    logits = np.concatenate(
        [session.run(None, {session.get_inputs()[0].name: x[i : i + 1]})[0] for i in range(32)]
    )
    assert int8_top1(blob, images, np.argmax(logits, axis=1)) >= 0.95
    assert int8_top1(blob, images, (nhwc + 1) % 5) == 0.0


def test_hand_built_qcdq_float_bias_per_tensor_weight_and_dead_branch(tmp_path):
    """A QCDQ graph written with onnx.helper: a float bias (quantized to int32 at input x weight
    scale, with a note), a per-tensor weight scale, an asymmetric int8 output zero point, and a
    Q/DQ branch that reaches no output (dropped with its tensors)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    inits = [
        numpy_helper.from_array(np.array(1 / 255, np.float32), "s_in"),
        numpy_helper.from_array(np.array(0, np.uint8), "z_in"),
        numpy_helper.from_array(rng.integers(-127, 128, (6, 3, 3, 3)).astype(np.int8), "w_int"),
        numpy_helper.from_array(np.array(0.004, np.float32), "s_w"),
        numpy_helper.from_array(np.array(0, np.int8), "z_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, 6).astype(np.float32), "bias"),
        numpy_helper.from_array(np.array(0.02, np.float32), "s_out"),
        numpy_helper.from_array(np.array(3, np.int8), "z_out"),
        numpy_helper.from_array(np.array(1 / 256, np.float32), "s_sig"),
    ]
    nodes = [
        helper.make_node(
            "QuantizeLinear", ["x", "s_in", "z_in"], ["xq"], name="/inp/act_quant/QuantizeLinear"
        ),
        helper.make_node(
            "DequantizeLinear", ["xq", "s_in", "z_in"], ["xd"], name="/inp/act_quant/DequantizeLinear"
        ),
        helper.make_node("DequantizeLinear", ["w_int", "s_w", "z_w"], ["wd"], name="/conv/weight_quant/DQ"),
        helper.make_node("Conv", ["xd", "wd", "bias"], ["y"], name="/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("QuantizeLinear", ["y", "s_out", "z_out"], ["yq"], name="/conv/output_quant/Q"),
        helper.make_node("DequantizeLinear", ["yq", "s_out", "z_out"], ["out"], name="/conv/output_quant/DQ"),
        helper.make_node("Sigmoid", ["xd"], ["sig"], name="/unused/Sigmoid"),
        helper.make_node("QuantizeLinear", ["sig", "s_sig", "z_in"], ["sigq"], name="/unused/act_quant/Q"),
    ]
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 6, 6, 6])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "hand.onnx")
    report = export_tflite(tmp_path / "hand.onnx", tmp_path / "hand.tflite")
    blob = (tmp_path / "hand.tflite").read_bytes()
    assert report.check.passed and reference_vs_tflm(tmp_path / "hand.onnx", blob).max() <= 1
    assert op_names(blob) == ["CONV_2D"]
    assert any("float bias quantized" in n for n in report.notes)
    sub = read_model(blob).subgraphs[0]
    assert len(sub.tensors) == 4  # input, weight, bias, output: the dead branch left nothing behind
    out = sub.tensors[sub.outputs[0]].quantization
    assert float(out.scale[0]) == pytest.approx(0.02) and int(out.zeroPoint[0]) == 3
    assert len(sub.tensors[sub.operators[0].inputs[1]].quantization.scale) == 6  # per channel for CONV_2D


def test_int8_top1_on_a_whole_dataset_split(tmp_path):
    from mcu_effnet.data import ImageDataset, open_data
    from mcu_effnet.quant.tflite_check import int8_predictions, int8_top1_on_dataset

    torch.manual_seed(13)
    onnx_path = to_qcdq(calibrate(Classifier("mean"), (1, 3, 8, 8)), (1, 3, 8, 8), tmp_path / "c.onnx")
    export_tflite(onnx_path, tmp_path / "c.tflite")
    blob = (tmp_path / "c.tflite").read_bytes()
    val = ImageDataset(open_data(None, max_val=40).val, 8, augment=False)
    images = np.stack([val[i][0].numpy() for i in range(len(val))])
    labels = np.array([val[i][1] for i in range(len(val))])
    expected = float(np.mean(int8_predictions(blob, images) == labels))
    assert int8_top1_on_dataset(blob, val, chunk=16) == pytest.approx(expected)


class Requantized(nn.Module):
    """A quantized conv output re-quantized by a second quantizer, directly or through a ReLU."""

    def __init__(self, through_relu: bool):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.conv = qconv(3, 8, 3, 1, 1)
        if through_relu:
            self.out = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        else:
            self.out = qident(Uint8ActPerTensorFloat)

    def forward(self, x):
        return self.out(self.conv(self.inp(x)))


@pytest.mark.parametrize("through_relu, second_op", [(False, "QUANTIZE"), (True, "RELU")])
def test_requantizing_ops(tmp_path, through_relu, second_op):
    torch.manual_seed(14)
    report, blob, diffs = export_and_compare(Requantized(through_relu), (1, 3, 8, 8), tmp_path)
    assert_agrees(report, diffs, single_op=False)
    assert op_names(blob) == ["CONV_2D", second_op]
    sub = read_model(blob).subgraphs[0]
    a, b = (sub.tensors[i].quantization for i in (sub.operators[1].inputs[0], sub.operators[1].outputs[0]))
    assert a.scale[0] != b.scale[0] and int(b.zeroPoint[0]) == -128


class NarrowAct(nn.Module):
    """An activation quantizer TFLite int8 cannot hold: narrow range or fewer than 8 bits."""

    def __init__(self, kind: str):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.conv = qconv(3, 4, 1)
        if kind == "narrow":
            self.out = qnn.QuantIdentity(act_quant=ActInt8, narrow_range=True, return_quant_tensor=True)
        else:
            self.out = qnn.QuantIdentity(act_quant=ActInt8, bit_width=4, return_quant_tensor=True)

    def forward(self, x):
        return self.out(self.conv(self.inp(x)))


@pytest.mark.parametrize("kind", ["narrow", "4bit"])
def test_narrow_or_sub_8_bit_activation_is_refused(tmp_path, kind):
    onnx_path = to_qcdq(calibrate(NarrowAct(kind), (1, 3, 6, 6)), (1, 3, 6, 6), tmp_path / "n.onnx")
    with pytest.raises(UserError, match="narrow-range or sub-8-bit activation"):
        export_tflite(onnx_path, tmp_path / "n.tflite")
    assert not (tmp_path / "n.tflite").exists()


def test_float_logits_are_refused(tmp_path):
    model = Classifier("mean")
    model.fc = qnn.QuantLinear(
        16, 5, bias=True, weight_quant=WeightPerChannelInt8, bias_quant=BiasInt32, output_quant=None
    )
    onnx_path = to_qcdq(calibrate(model, (1, 3, 8, 8)), (1, 3, 8, 8), tmp_path / "f.onnx")
    with pytest.raises(UserError, match=r"\(Gemm\): model output .* is float \(no output quantizer\)"):
        export_tflite(onnx_path, tmp_path / "f.tflite")


def test_run_folder_step_writes_tflite_and_int8_metrics(tmp_path):
    """``export_run``'s .tflite step on a run folder laid out as ``qat`` writes it."""
    import json

    from mcu_effnet.data import ImageDataset, open_data, stack_samples
    from mcu_effnet.quant.run_folder import CONFIG, LABELS, METRICS, ONNX, VAL_SAMPLES, RunFolder
    from mcu_effnet.quant.tflite_check import int8_top1_on_dataset
    from mcu_effnet.quant.tflite_run import TFLITE, export_run_tflite

    torch.manual_seed(15)
    folder = RunFolder.create(tmp_path / "run")
    names = ["a", "b", "c", "d", "e"]
    folder.write_json(
        CONFIG, {"spec": {"resolution": 8}, "train": {"seed": 0, "max_val_images": 24}, "data": {}}
    )
    folder.write_text(LABELS, "".join(f"{n}\n" for n in names))
    folder.write_json(METRICS, {"qat_top1": 12.5})
    val = ImageDataset(open_data(None, max_val=24).val, 8, augment=False)
    images, labels = stack_samples(val, 16)
    np.savez(folder.file(VAL_SAMPLES), x=images, y=labels)
    qat_model = calibrate(Classifier("mean"), (1, 3, 8, 8))
    to_qcdq(qat_model, (1, 3, 8, 8), folder.file(ONNX))
    lines: list[str] = []
    report = export_run_tflite(folder, log=lines.append, qat_model=qat_model)
    blob = folder.file(TFLITE).read_bytes()
    metrics = json.loads(folder.file(METRICS).read_text())
    assert metrics["qat_top1"] == 12.5  # kept
    assert metrics["tflite_bytes"] == len(blob) == report.tflite_bytes
    assert metrics["tflite_check"]["passed"] and metrics["tflite_check"]["tflm"]["samples"] == 16
    assert metrics["int8_top1_images"] == 24
    assert metrics["int8_top1"] == pytest.approx(100 * int8_top1_on_dataset(blob, val), abs=0.01)
    entry = [m for m in read_model(blob).metadata if m.name.decode() == LABELS_METADATA]
    assert bytes(read_model(blob).buffers[entry[0].buffer].data).decode() == "\n".join(names)
    assert any("int8 top-1" in line for line in lines)
    assert lines[-1].startswith("top-1: float n/a, QAT 12.50%, int8 .tflite ")
    # the QAT model against its own file, image by image: the simulator's TFLite Micro
    # arithmetic is TFLite Micro's, and with single rounding the file computes the QAT model
    agreement = metrics["int8_vs_qat"]
    assert agreement["images"] == 24
    with torch.no_grad():
        own = value(qat_model(torch.stack([torch.from_numpy(np.asarray(x)) for x, _ in val]).float() / 255))
    labels = np.array([y for _, y in val])
    assert agreement["qat_top1"] == pytest.approx(100 * np.mean(own.argmax(1).numpy() == labels), abs=0.01)
    assert agreement["same_top1_single_rounding"] == 100.0 and agreement["differ_single_rounding"] == []
    assert any("int8 vs QAT on 24 validation images" in line for line in lines)


def test_agreement_with_another_qat_model_names_the_images_it_parts_on(tmp_path):
    """The comparison can fail: a model the file was not exported from disagrees, and the
    images it disagrees on are the ones listed."""
    from mcu_effnet.data import ImageDataset, open_data
    from mcu_effnet.quant.int8_agreement import compare_with_qat
    from mcu_effnet.quant.tflite_export import export_tflite

    torch.manual_seed(15)
    exported = calibrate(Classifier("mean"), (1, 3, 8, 8))
    onnx_path = to_qcdq(exported, (1, 3, 8, 8), tmp_path / "model.onnx")
    export_tflite(onnx_path, tmp_path / "model.tflite")
    blob = (tmp_path / "model.tflite").read_bytes()
    val = ImageDataset(open_data(None, max_val=48).val, 8, augment=False)
    torch.manual_seed(16)
    other = calibrate(Classifier("mean"), (1, 3, 8, 8))
    same = compare_with_qat(exported, blob, val, chunk=16)
    apart = compare_with_qat(other, blob, val, chunk=16)
    assert same is not None and apart is not None and same.images == apart.images == 48
    assert same.differ_single_rounding_count == 0
    # the simulator's double-rounding run stands for TFLite Micro's own predictions
    from mcu_effnet.quant.tflite_check import int8_predictions_on_dataset

    tflm, _ = int8_predictions_on_dataset(blob, val, chunk=16)
    given = compare_with_qat(other, blob, val, chunk=16, tflm_top1=tflm)
    assert given is not None and given.to_dict() == apart.to_dict()
    with torch.no_grad():
        pixels = torch.stack([torch.from_numpy(np.asarray(x)) for x, _ in val]).float() / 255
        mine, theirs = (value(m(pixels)).argmax(1).numpy() for m in (exported, other))
    assert apart.differ_single_rounding_count == int(np.sum(mine != theirs)) > 0
    assert apart.differ_single_rounding == np.flatnonzero(mine != theirs)[:20].tolist()


class FlattenSpatial(nn.Module):
    """Flattening a C x H x W map with H·W > 1 orders elements as NCHW does: an output in that
    order cannot come out of the NHWC model."""

    def __init__(self):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.conv = qconv(3, 4, 3, 2, 1)
        self.flat = qident()

    def forward(self, x):
        return self.flat(torch.flatten(value(self.conv(self.inp(x))), 1))


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.stem = qconv(3, 8, 1)
        self.conv = qconv(8, 8, 3, 1, 1, groups=2)

    def forward(self, x):
        return self.conv(self.stem(self.inp(x)))


@pytest.mark.parametrize(
    "module, message",
    [
        (FlattenSpatial, r"model output .* is a C x H x W map flattened in NCHW order"),
        (Grouped, r"\(Conv\): grouped convolution \(group 2\) has no TFLite int8 equivalent"),
    ],
)
def test_layouts_and_groupings_tflite_cannot_hold_are_refused(tmp_path, module, message):
    onnx_path = to_qcdq(calibrate(module(), (1, 3, 8, 8)), (1, 3, 8, 8), tmp_path / "m.onnx")
    with pytest.raises(UserError, match=message):
        export_tflite(onnx_path, tmp_path / "m.tflite")


class ConvFlattenFC(nn.Module):
    """The classic small CNN head: conv, flatten the whole C x H x W map, fully connected."""

    def __init__(self):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.conv = qconv(3, 4, 3, 2, 1)
        self.flat = qident(ShiftedUint8ActPerTensorFloat)  # another zero point: a QUANTIZE op
        self.fc = qnn.QuantLinear(
            64,
            6,
            bias=True,
            weight_quant=WeightPerChannelInt8,
            bias_quant=BiasInt32,
            output_quant=ActInt8,
            return_quant_tensor=True,
        )

    def forward(self, x):
        return self.fc(self.flat(torch.flatten(value(self.conv(self.inp(x))), 1)))


def test_flatten_of_a_spatial_map_into_fully_connected(tmp_path):
    """NHWC flattening reorders the elements; the FC weights are permuted to match."""
    torch.manual_seed(16)
    report, blob, diffs = export_and_compare(ConvFlattenFC(), (1, 3, 8, 8), tmp_path)
    assert_agrees(report, diffs, single_op=False)
    assert op_names(blob) == ["PAD", "CONV_2D", "RESHAPE", "QUANTIZE", "FULLY_CONNECTED"]
    sub = read_model(blob).subgraphs[0]
    assert list(sub.tensors[sub.operators[2].outputs[0]].shape) == [1, 64]


class MaxPooled(nn.Module):
    """conv → max pool on the quantized tensor (no requantization) → conv."""

    def __init__(self, k: int, stride: int, padding: int):
        super().__init__()
        self.inp = qident(InputUint8Fixed)
        self.conv = qconv(3, 8, 3, 1, 1)
        self.pool = nn.MaxPool2d(k, stride, padding)
        self.head = qconv(8, 4, 1)

    def forward(self, x):
        return self.head(self.pool(self.conv(self.inp(x))))


@pytest.mark.parametrize("k, stride, padding, want", [(2, 2, 0, "VALID"), (3, 1, 1, "SAME")])
def test_max_pool_keeps_its_input_quantization(tmp_path, k, stride, padding, want):
    torch.manual_seed(17)
    report, blob, diffs = export_and_compare(MaxPooled(k, stride, padding), (1, 3, 8, 8), tmp_path)
    assert_agrees(report, diffs, single_op=False)
    ops = ops_with_options(blob)
    assert [name for name, _ in ops] == ["CONV_2D", "MAX_POOL_2D", "CONV_2D"]
    pool = ops[1][1]
    assert pool.padding == getattr(_schema().Padding, want) and (pool.filterHeight, pool.strideH) == (
        k,
        stride,
    )
    sub = read_model(blob).subgraphs[0]
    a, b = (sub.tensors[i].quantization for i in (sub.operators[1].inputs[0], sub.operators[1].outputs[0]))
    assert a.scale[0] == b.scale[0] and a.zeroPoint[0] == b.zeroPoint[0]


class Probabilities(nn.Module):
    """Logits → softmax quantized at 1/256 (the only int8 SOFTMAX output TFLite has)."""

    def __init__(self, out_quant=SigmoidUint8Fixed):
        super().__init__()
        self.logits = Classifier("mean")
        self.prob = qident(out_quant)

    def forward(self, x):
        return self.prob(torch.softmax(value(self.logits(x)), dim=1))


def test_softmax_at_1_over_256(tmp_path):
    torch.manual_seed(18)
    report, blob, diffs = export_and_compare(Probabilities(), (1, 3, 8, 8), tmp_path)
    assert_agrees(report, diffs, single_op=False)
    assert op_names(blob) == ["CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    assert report.output_scale == 1 / 256 and report.output_zero_point == -128


def test_softmax_at_another_scale_is_refused(tmp_path):
    module = Probabilities(Uint8ActPerTensorFloat)
    onnx_path = to_qcdq(calibrate(module, (1, 3, 8, 8)), (1, 3, 8, 8), tmp_path / "p.onnx")
    with pytest.raises(UserError, match="int8 SOFTMAX always outputs scale 1/256"):
        export_tflite(onnx_path, tmp_path / "p.tflite")


def test_hand_built_opset14_hardswish_and_identity(tmp_path):
    """ONNX's own HardSwish op (opset 14) and an Identity between quantizers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(np.array(0.05, np.float32), "s_in"),
        numpy_helper.from_array(np.array(-10, np.int8), "z_in"),
        numpy_helper.from_array(np.array(0.03, np.float32), "s_out"),
        numpy_helper.from_array(np.array(-20, np.int8), "z_out"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s_in", "z_in"], ["xq"], name="/inp/act_quant/Q"),
        helper.make_node("DequantizeLinear", ["xq", "s_in", "z_in"], ["xd"], name="/inp/act_quant/DQ"),
        helper.make_node("Identity", ["xd"], ["xi"], name="/Identity"),
        helper.make_node("HardSwish", ["xi"], ["h"], name="/act/HardSwish"),
        helper.make_node("QuantizeLinear", ["h", "s_out", "z_out"], ["hq"], name="/act/act_quant/Q"),
        helper.make_node("DequantizeLinear", ["hq", "s_out", "z_out"], ["out"], name="/act/act_quant/DQ"),
    ]
    graph = helper.make_graph(
        nodes,
        "hs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 5, 5])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "hs.onnx")
    report = export_tflite(tmp_path / "hs.onnx", tmp_path / "hs.tflite")
    blob = (tmp_path / "hs.tflite").read_bytes()
    assert report.check.passed and op_names(blob) == ["HARD_SWISH"]
    assert reference_vs_tflm(tmp_path / "hs.onnx", blob).max() <= 1
    assert report.input_zero_point == -10 and report.output_zero_point == -20


def test_a_wrong_op_fails_the_per_op_gate_and_writes_nothing(tmp_path, monkeypatch):
    """An export error (here: one conv's output scale written 3x too large) is caught by the
    per-op gate, which names the op, even though it is not --strict."""
    from mcu_effnet.quant import qcdq_lower

    real_lower = qcdq_lower.lower_qcdq

    def lower_with_a_wrong_scale(graph):
        model = real_lower(graph)
        conv = next(op for op in model.ops if op.kind == "CONV_2D")
        out = model.tensors[conv.outputs[0]]
        out.scale = np.asarray(out.scale, dtype=np.float32) * 3
        return model

    monkeypatch.setattr(qcdq_lower, "lower_qcdq", lower_with_a_wrong_scale)
    torch.manual_seed(0)
    model = calibrate(OneConv(3, 1, 1), (1, 3, 16, 16))
    onnx_path = to_qcdq(model, (1, 3, 16, 16), tmp_path / "model.onnx")
    out = tmp_path / "model.tflite"
    with pytest.raises(UserError, match=r"op \d+ '.*' \(CONV_2D\) run alone in TFLite Micro is within 1 LSB"):
        export_tflite(onnx_path, out)
    assert not out.exists()
