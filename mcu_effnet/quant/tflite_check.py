"""The export check: the written ``.tflite`` against the QCDQ ONNX it came from.

The oracle is TFLite Micro (the tflite-micro wheel's interpreter, whose reference kernels
define our arithmetic). The reference is the QCDQ ONNX run by onnxruntime with graph
optimisations off, so it computes exactly the float graph Brevitas exported instead of
fusing Q/DQ pairs into its own integer kernels. Both see the same int8 input: the ONNX
float input is ``(q − zp) · scale``, which its QuantizeLinear maps back to ``q`` exactly.

Outputs are compared in the output's integer domain. Desktop LiteRT is reported beside
TFLite Micro but not required (its FULLY_CONNECTED requantizes in float).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

from mcu_effnet import oracle
from mcu_effnet.errors import UserError
from mcu_effnet.oracle import float_codes, run_litert, run_tflm, top1, top1_agreement
from mcu_effnet.quant.int8_model import Int8Model, to_tflite_layout

MIN_WITHIN_1LSB = 0.99
MIN_TOP1_AGREEMENT = 0.99


@dataclass
class Agreement:
    """How one runtime's int8 outputs compare with the ONNX reference, in output LSBs."""

    samples: int
    elements: int
    exact: float  # fraction of output elements equal to the reference
    within_1lsb: float  # fraction with |difference| <= 1
    max_abs_lsb: int
    top1: float  # fraction of samples whose top-1 is one of the reference's top-1 classes

    @property
    def passed(self) -> bool:
        return self.within_1lsb >= MIN_WITHIN_1LSB and self.top1 >= MIN_TOP1_AGREEMENT

    def summary(self) -> str:
        return (
            f"{100 * self.within_1lsb:.2f}% of {self.elements} elements within 1 LSB "
            f"({100 * self.exact:.2f}% exact, max {self.max_abs_lsb} LSB), "
            f"top-1 agrees on {100 * self.top1:.1f}% of {self.samples} samples"
        )


@dataclass
class CheckReport:
    input_source: str  # "validation images" or "random inputs"
    tflm: Agreement
    litert: Agreement | None
    litert_error: str | None = None
    # The host simulator (bit-exact with TFLite Micro) in TFLITE_SINGLE_ROUNDING's arithmetic:
    # what the file computes without the runtime's double rounding (reported, not required).
    single_rounding: Agreement | None = None

    @property
    def passed(self) -> bool:
        return self.tflm.passed

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def quantize_like_onnx(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """ONNX QuantizeLinear to int8: float32 divide, round half to even, saturate."""
    q = np.rint(x.astype(np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def random_inputs(model: Int8Model, n: int, seed: int = 0) -> np.ndarray:
    """Float NCHW inputs on the input quantizer's grid, uniformly over all int8 codes."""
    b = model.inputs[0]
    rng = np.random.default_rng(seed)
    q = rng.integers(-128, 128, size=(n, *b.onnx_shape[1:]))
    return ((q - b.zero_point) * np.float32(b.scale)).astype(np.float32)


def run_onnx(model: str | bytes, x: np.ndarray, outputs: list[str], label: str) -> list[np.ndarray]:
    """Reference values of ``outputs``, each with a leading sample axis: onnxruntime with its
    optimisations off (the float QCDQ graph as written)."""
    try:
        return oracle.run_onnx(model, x, outputs, optimize=False)
    except Exception as exc:  # onnxruntime's own exception types; the user gets one line
        raise UserError(f"{label}: onnxruntime cannot run the model: {exc}".splitlines()[0]) from exc


def reference_codes(model: Int8Model, onnx_outputs: list[np.ndarray]) -> list[np.ndarray]:
    """ONNX float outputs (DQ of int8) back to int8 codes in TFLite layout."""
    by_name = dict(zip(model.onnx_outputs, onnx_outputs, strict=True))
    codes = []
    for name, t_index in zip(model.onnx_outputs, model.outputs, strict=True):
        t = model.tensors[t_index]
        codes.append(float_codes(to_tflite_layout(by_name[name]), t.scale[0], t.zero_point[0]))
    return codes


def compare(reference: list[np.ndarray], actual: list[np.ndarray]) -> Agreement:
    diffs = np.concatenate(
        [
            np.abs(r.astype(np.int64) - a.astype(np.int64)).reshape(-1)
            for r, a in zip(reference, actual, strict=True)
        ]
    )
    return Agreement(
        samples=len(reference[0]),
        elements=int(diffs.size),
        exact=float(np.mean(diffs == 0)),
        within_1lsb=float(np.mean(diffs <= 1)),
        max_abs_lsb=int(diffs.max()) if diffs.size else 0,
        top1=top1_agreement(reference[0], actual[0]),  # on the first output, the logits
    )


def check_export(
    onnx_path: str, model_bytes: bytes, model: Int8Model, x: np.ndarray | None = None, samples: int = 64
) -> CheckReport:
    """Compares TFLite Micro (required) and LiteRT (reported) with onnxruntime on ``samples`` inputs."""
    b = model.inputs[0]
    if x is None:
        x, source = random_inputs(model, samples), "random inputs"
    else:
        x, source = np.asarray(x, dtype=np.float32)[:samples], "validation images"
    x_int8 = to_tflite_layout(quantize_like_onnx(x, b.scale, b.zero_point))
    reference = reference_codes(model, run_onnx(onnx_path, x, model.onnx_outputs, onnx_path))
    tflm = compare(reference, run_tflm(model_bytes, x_int8))
    litert, litert_error = None, None
    try:
        litert = compare(reference, run_litert(model_bytes, x_int8))
    except Exception as exc:  # LiteRT is informative only: report why it could not run
        litert_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return CheckReport(
        source, tflm, litert, litert_error, run_single_rounding(model_bytes, x_int8, reference)
    )


def run_single_rounding(
    model_bytes: bytes, x_int8: np.ndarray, reference: list[np.ndarray]
) -> Agreement | None:
    """The file in the host simulator with single-rounding requantization, against the reference."""
    from mcu_effnet.graph import load_tflite
    from mcu_effnet.sim import run as simulate
    from mcu_effnet.sim.requantize import rounding

    try:
        graph = load_tflite(model_bytes)
        with rounding("single"):
            out = simulate(graph, x_int8)
    except UserError:
        return None  # a graph the simulator does not take: the figure is simply not reported
    outputs = out if isinstance(out, list) else [out]
    return compare(reference, outputs)


@dataclass
class OpAgreement:
    """One op run alone in TFLite Micro on the ONNX reference's own int8 inputs."""

    index: int
    kind: str
    output: str
    elements: int
    exact: float
    within_1lsb: float
    max_abs_lsb: int


def run_onnx_values(onnx_path: str, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Values of arbitrary (intermediate) ONNX tensors, exposed as extra graph outputs."""
    import onnx

    proto = onnx.load(onnx_path)
    present = {o.name for o in proto.graph.output}
    for name in names:
        if name not in present:
            proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return dict(zip(names, run_onnx(proto.SerializeToString(), x, names, onnx_path), strict=True))


def _as_int8_codes(value: np.ndarray) -> np.ndarray:
    """ONNX QuantizeLinear output (uint8 or int8) as TFLite int8 codes in TFLite layout."""
    codes = value.astype(np.int64) - (128 if value.dtype == np.uint8 else 0)
    return to_tflite_layout(codes).astype(np.int8)


def _reordered(model: Int8Model, producer: dict[int, int], i: int) -> bool:
    """ONNX holds tensor ``i`` in another element order: a flattened NCHW map (the .tflite
    flattens NHWC and permutes the FC's columns to match), or one derived from it element by
    element. Such tensors are neither fed from ONNX nor compared with it; their ops are checked
    as part of the next op's sub-model."""
    if i not in producer:
        return False
    op = model.ops[producer[i]]
    if op.kind == "RESHAPE":
        return True
    sources = [j for j in op.inputs if j >= 0 and model.tensors[j].data is None]
    return (
        len(sources) == 1
        and op.kind in ("QUANTIZE", "RELU", "RELU6")
        and _reordered(model, producer, sources[0])
    )


def _single_op_model(model: Int8Model, op_index: int) -> Int8Model | None:
    """The op plus the RESHAPE/PAD producers of inputs ONNX has no integers for; inputs rewired."""
    from mcu_effnet.quant.int8_model import InputBinding

    producer = {o: k for k, op in enumerate(model.ops) for o in op.outputs}
    chosen: list[int] = []
    feeds: list[int] = []

    def visit(k: int) -> bool:
        for i in model.ops[k].inputs:
            t = model.tensors[i] if i >= 0 else None
            if t is None or t.data is not None:
                continue
            if t.onnx_name and not _reordered(model, producer, i):
                if i not in feeds:
                    feeds.append(i)
            elif i in producer:
                if not visit(producer[i]):
                    return False
            else:
                return False
        chosen.append(k)
        return True

    if not visit(op_index):
        return None
    used = sorted({i for k in chosen for i in model.ops[k].inputs + model.ops[k].outputs if i >= 0})
    remap = {old: new for new, old in enumerate(used)}
    sub = Int8Model()
    sub.tensors = [model.tensors[i] for i in used]
    for k in chosen:
        op = model.ops[k]
        sub.ops.append(
            type(op)(
                op.kind, [remap.get(i, -1) for i in op.inputs], [remap[o] for o in op.outputs], op.options
            )
        )
    sub.inputs = [InputBinding("", (), remap[i], 0.0, 0) for i in feeds]
    sub.outputs = [remap[model.ops[op_index].outputs[0]]]
    return sub


def per_op_agreement(onnx_path: str, model: Int8Model, x: np.ndarray) -> list[OpAgreement]:
    """Each op alone, fed the ONNX reference's int8 inputs: separates writer errors from drift.

    End to end, a 1-LSB difference early in the network can grow as it passes layers whose
    gain in output LSBs per input LSB exceeds one; run alone, a correctly written op only
    differs where TFLite Micro's double rounding lands on the other side of a half.
    """
    from mcu_effnet.quant.tflite_writer import write_tflite_bytes

    names = sorted({t.onnx_name for t in model.tensors if t.onnx_name})
    values = {k: _as_int8_codes(v) for k, v in run_onnx_values(onnx_path, x, names).items()}
    results = []
    for k, op in enumerate(model.ops):
        out = model.tensors[op.outputs[0]]
        producer = {o: j for j, o_op in enumerate(model.ops) for o in o_op.outputs}
        comparable = out.onnx_name and not _reordered(model, producer, op.outputs[0])
        sub = _single_op_model(model, k) if comparable else None
        if sub is None:
            continue
        inputs = [values[sub.tensors[b.tensor].onnx_name] for b in sub.inputs]
        got = run_tflm(write_tflite_bytes(sub), inputs)[0].astype(np.int64)
        d = np.abs(got - values[out.onnx_name].astype(np.int64)).reshape(-1)
        results.append(
            OpAgreement(
                k,
                op.kind,
                out.name,
                int(d.size),
                float(np.mean(d == 0)),
                float(np.mean(d <= 1)),
                int(d.max()),
            )
        )
    return results


def int8_predictions(model_bytes: bytes, images: np.ndarray) -> np.ndarray:
    """Top-1 class of every image, from the ``.tflite`` itself in TFLite Micro.

    ``images``: uint8 pixels (N, H, W, 3) or (N, 3, H, W), or float NCHW ``pixel / 255``, as
    the ONNX model takes them. They are quantized with the file's own input scale and zero
    point (for 1/255 and -128 that is exactly ``pixel - 128``).
    """
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    sub = model.subgraphs[0]
    tin = sub.tensors[sub.inputs[0]]
    _, h, w, c = (int(d) for d in tin.shape)
    x = np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images, got shape {x.shape}")
    if x.shape[1:] == (c, h, w) and x.shape[1:] != (h, w, c):
        x = np.transpose(x, (0, 2, 3, 1))
    if x.shape[1:] != (h, w, c):
        raise ValueError(f"images of shape {x.shape[1:]} do not fit the model input {(h, w, c)}")
    pixels = x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else x.astype(np.float32)
    q = quantize_like_onnx(pixels, float(tin.quantization.scale[0]), int(tin.quantization.zeroPoint[0]))
    return top1(run_tflm(model_bytes, q)[0])


def int8_top1(model_bytes: bytes, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the ``.tflite`` in TFLite Micro (what the firmware computes, bit for bit)."""
    labels = np.asarray(labels).reshape(-1)
    return float(np.mean(int8_predictions(model_bytes, images) == labels)) if len(labels) else 0.0


def labelled_chunks(
    dataset, chunk: int = 256, limit: int | None = None
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(first index, uint8 images, labels) of ``chunk`` items at a time from the first ``limit``
    (default: all) of ``dataset``, whose ``dataset[i]`` is (uint8 CHW image, label), as
    ``mcu_effnet.data.ImageDataset`` gives without augmentation."""
    total = len(dataset) if limit is None else min(len(dataset), limit)
    for start in range(0, total, chunk):
        items = [dataset[i] for i in range(start, min(start + chunk, total))]
        images = np.stack([np.asarray(image) for image, _ in items]).astype(np.uint8)
        yield start, images, np.array([int(label) for _, label in items])


def int8_predictions_on_dataset(
    model_bytes: bytes, dataset, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """``int8_predictions`` over a whole split (``labelled_chunks``), and its labels."""
    predictions, labels = [], []
    for _, images, chunk_labels in labelled_chunks(dataset, chunk):
        labels.append(chunk_labels)
        predictions.append(int8_predictions(model_bytes, images))
    if not labels:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(predictions), np.concatenate(labels)


def int8_top1_on_dataset(model_bytes: bytes, dataset, chunk: int = 256) -> float:
    """``int8_top1`` over a whole split (``int8_predictions_on_dataset``)."""
    predictions, labels = int8_predictions_on_dataset(model_bytes, dataset, chunk)
    return float(np.mean(predictions == labels)) if len(labels) else 0.0
