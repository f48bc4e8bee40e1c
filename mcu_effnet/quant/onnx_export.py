"""QCDQ ONNX export of the Brevitas QAT model, checked against the model with onnxruntime.

The ONNX graph takes float32 NCHW ``pixel/255`` (batch 1, named ``input``) and returns float
logits (``logits``); every int8 tensor appears as QuantizeLinear -> Clip -> DequantizeLinear, with
the scales QAT learned. The int8 ``.tflite`` writer reads exactly this graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from mcu_effnet.errors import UserError

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
TOLERANCE = 1e-5  # |onnxruntime - Brevitas| of an exact image (the verification chain's first link, docs/ARCHITECTURE.md)
MAX_LSB = 8.0  # the typical difference rounding flips cause, in steps of the logits' int8 scale (one
# flipped step early in the network reaches the logits as a few steps; in a deep network a rare
# image compounds to more: 11 LSB on one of 64 at phi -1, 128 px, the median of the others 2)
RARE = 1 / 16  # at most this fraction of the images inexact: rounding flips, whatever their size
# (digits at phi -4, 32 px, 30 float epochs, seed 1: 63 of 64 exact, the other 10 LSB off)


def export_agrees(per_image_lsb: np.ndarray, exact: np.ndarray) -> bool:
    """Whether per-image differences (in logits LSB; ``exact``: within TOLERANCE) look like
    rounding flips: at least half the images exact, and the others either rare (``RARE``) or
    with their median within ``MAX_LSB`` (a median of one or two images is just the outliers').
    A wrong scale, padding or layout breaks nearly every image, by far more."""
    if int(exact.sum()) * 2 < len(exact):
        return False
    inexact = per_image_lsb[~exact]
    if inexact.size <= RARE * len(exact):
        return True
    return float(np.median(inexact)) <= MAX_LSB + 1e-3


@dataclass(frozen=True)
class OnnxCheck:
    images: int
    exact_images: int  # images whose every logit agrees to TOLERANCE
    max_abs_diff: float
    max_lsb: float  # the largest difference in units of the logits' int8 scale
    same_top1: float  # fraction of images with the same arg-max

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def export_qcdq(model: nn.Module, resolution: int, path: Path) -> None:
    """Writes the QCDQ ONNX model of ``model`` (a Brevitas model, exported in eval mode) to ``path``.

    (Brevitas's QCDQ manager does not return the ModelProto, so the file is the result.)
    """
    from brevitas.export import export_onnx_qcdq

    example = torch.zeros(1, 3, resolution, resolution)
    model = model.cpu().eval()
    export_onnx_qcdq(
        model,
        args=example,
        export_path=str(path),
        dynamo=False,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
    )


def logits_scale(model: onnx.ModelProto) -> float:
    """The scale of the DequantizeLinear that produces the graph output (the logits' int8 scale)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    node = producer.get(model.graph.output[0].name)
    if node is None or node.op_type != "DequantizeLinear":
        raise UserError(f"QCDQ ONNX export: the output is made by {node.op_type if node else 'nothing'}, "
                        "not DequantizeLinear; the logits are not int8")  # fmt: skip
    initialisers = {init.name: init for init in model.graph.initializer}
    constants = {n.output[0]: n.attribute[0].t for n in model.graph.node if n.op_type == "Constant"}
    scale = initialisers.get(node.input[1]) or constants.get(node.input[1])
    return float(numpy_helper.to_array(scale).reshape(-1)[0])


def check_against_model(onnx_bytes: bytes, model: nn.Module, images: np.ndarray) -> OnnxCheck:
    """Runs uint8 NCHW ``images`` (as pixel/255) through onnxruntime and through ``model``.

    The two agree to ``TOLERANCE`` except for one thing float32 cannot rule out: torch and
    onnxruntime sum convolutions in different orders, so a value within ~1e-7 of a rounding
    boundary can round to the neighbouring int8 step in one of them, and the logits then differ by
    a few LSB (in a deep network a rare image compounds to more). So the check demands
    ``export_agrees``: at least half the images exact to ``TOLERANCE`` and the others rare or within
    ``MAX_LSB`` steps of the logits' int8 scale at the median. A wrong export (scale, padding,
    layout) breaks both on nearly every image. Raises UserError otherwise.
    """
    import onnxruntime as ort

    proto = onnx.load_model_from_string(onnx_bytes)
    lsb = logits_scale(proto)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # run the graph as written
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    x = images.astype(np.float32) / np.float32(255.0)
    model = model.cpu().eval()
    with torch.no_grad():
        expected = np.concatenate([model(torch.from_numpy(x[i : i + 1])).numpy() for i in range(len(x))])
    got = np.concatenate([session.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + 1]})[0] for i in range(len(x))])
    if len(x) == 0:
        raise UserError("QCDQ ONNX check: no validation images to compare on")
    per_image = np.abs(got - expected).reshape(len(x), -1).max(axis=1)
    exact = per_image <= TOLERANCE
    check = OnnxCheck(
        images=len(x),
        exact_images=int(exact.sum()),
        max_abs_diff=float(per_image.max()),
        max_lsb=float(per_image.max() / lsb),
        same_top1=float((got.argmax(1) == expected.argmax(1)).mean()),
    )
    if not export_agrees(per_image / lsb, exact):
        raise UserError(
            f"QCDQ ONNX export disagrees with the Brevitas model: max |difference| {check.max_abs_diff:.3g} "
            f"({check.max_lsb:.1f} LSB of the logits), exact to {TOLERANCE:g} on {check.exact_images}/{check.images} "
            f"validation images"
        )
    return check
