"""``mcu-effnet validate``: the simulator against TFLite Micro, LiteRT and the QCDQ ONNX model.

On one set of int8 inputs, each reference runs and its output is compared with the
simulator's. TFLite Micro is the oracle (every element must match); LiteRT is reported
(its kernels may legitimately differ by an LSB); the ONNX model runs in float and its
logits are quantized with the output tensor's scale and zero point before comparing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mcu_effnet import oracle
from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph
from mcu_effnet.sim import inputs as model_inputs

SINGLE_ROUNDING_ROW = "ONNX, sim 1-rounding"


@dataclass
class Comparison:
    """One reference against the simulator, over every element of the (first) output."""

    reference: str
    samples: int = 0
    elements: int = 0
    differing: int | None = None
    exact_pct: float | None = None
    max_lsb: int | None = None
    within_1lsb_pct: float | None = None
    top1_agreement_pct: float | None = None
    error: str | None = None  # the reference could not run: why
    first_mismatch: dict | None = None  # TFLite Micro only: the first op whose output differs

    @property
    def ran(self) -> bool:
        return self.error is None


@dataclass
class Mismatch:
    """Where the simulator first leaves TFLite Micro, found on one differing sample."""

    sample: int
    op: int
    kind: str
    tensor: str
    differing: int
    elements: int
    max_lsb: int

    def describe(self) -> str:
        return (
            f"first difference: op {self.op} {self.kind} -> tensor '{self.tensor}' on sample {self.sample} "
            f"({self.differing} of {self.elements} elements, up to {self.max_lsb} LSB)"
        )


@dataclass
class ValidationReport:
    model: str
    inputs: str
    samples: int
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def bit_exact(self) -> bool:
        """The verdict: the simulator matches TFLite Micro on every element."""
        tflm = self.comparisons[0]
        return tflm.ran and tflm.differing == 0

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "inputs": self.inputs,
            "samples": self.samples,
            "bit_exact_with_tflm": self.bit_exact,
            "comparisons": [asdict(c) for c in self.comparisons],
        }


def compare(reference: str, sim_out: np.ndarray, ref_out: np.ndarray) -> Comparison:
    """Element-wise agreement of two int8 batches, plus top-1 agreement (``oracle.top1_agreement``)."""
    if sim_out.shape != ref_out.shape:
        return Comparison(
            reference, error=f"output shape {ref_out.shape} differs from the simulator's {sim_out.shape}"
        )
    diff = np.abs(sim_out.astype(np.int64) - ref_out.astype(np.int64))
    return Comparison(
        reference,
        samples=sim_out.shape[0],
        elements=int(diff.size),
        differing=int(np.count_nonzero(diff)),
        exact_pct=100.0 * float(np.mean(diff == 0)) if diff.size else 100.0,
        max_lsb=int(diff.max(initial=0)),
        within_1lsb_pct=100.0 * float(np.mean(diff <= 1)) if diff.size else 100.0,
        top1_agreement_pct=100.0 * oracle.top1_agreement(ref_out, sim_out),
    )


def _guarded(
    reference: str, produce: Callable[[], np.ndarray], sim_out: np.ndarray
) -> tuple[Comparison, np.ndarray | None]:
    """Runs one reference; a failure becomes a row with the reason instead of a traceback."""
    try:
        ref_out = produce()
    except UserError:
        raise
    except Exception as exc:  # the reference runtimes raise plain RuntimeErrors with their own messages
        message = " ".join(str(exc).split()) or type(exc).__name__
        return Comparison(reference, error=message[:300]), None
    return compare(reference, sim_out, ref_out), ref_out


def make_inputs(
    graph: Graph, samples: int, data: str | os.PathLike | None, seed: int
) -> tuple[np.ndarray, str]:
    if data is not None:
        x = model_inputs.load_data(data, graph, samples)
        return x, f"{x.shape[0]} samples from {data}"
    tensor = graph.input_tensors[0]
    rng = np.random.default_rng(seed)
    shape = (samples, *model_inputs.sample_shape(tensor))
    if tensor.dtype == "float32":  # QUANTIZE reads it: unit normal times 4 reaches its clamps too
        x = (rng.standard_normal(shape) * 4).astype(np.float32)
        return x, f"{samples} random float32 samples (normal, sd 4, seed {seed})"
    info = np.iinfo(np.dtype(tensor.dtype))
    x = rng.integers(info.min, int(info.max) + 1, size=shape, dtype=np.int64).astype(tensor.dtype)
    return x, f"{samples} random {tensor.dtype} samples (seed {seed})"


def validate(
    model_path: str | os.PathLike,
    onnx_path: str | os.PathLike | None = None,
    samples: int = 100,
    data: str | os.PathLike | None = None,
    seed: int = 0,
) -> ValidationReport:
    from mcu_effnet.graph import load_tflite
    from mcu_effnet.sim import run

    model_path = Path(model_path)
    if samples < 1:
        raise UserError(f"samples must be at least 1, got {samples}", options=("samples",))
    if onnx_path is not None and not Path(onnx_path).is_file():
        raise UserError(f"{onnx_path}: no such ONNX file")
    graph = load_tflite(model_path)
    model_bytes = model_path.read_bytes()
    x, described = make_inputs(graph, samples, data, seed)

    sim_out = _first(run(graph, x))
    report = ValidationReport(str(model_path), described, int(x.shape[0]))
    tflm, tflm_out = _guarded("TFLite Micro", lambda: oracle.run_tflm(model_bytes, x)[0], sim_out)
    if tflm.ran and tflm.differing and tflm_out is not None:
        first = locate_mismatch(model_bytes, graph, x, sim_out, tflm_out)
        tflm.first_mismatch = None if first is None else asdict(first)
    report.comparisons.append(tflm)
    report.comparisons.append(_guarded("LiteRT", lambda: oracle.run_litert(model_bytes, x)[0], sim_out)[0])
    if onnx_path is not None:
        in_tensor, out_tensor = graph.input_tensors[0], graph.output_tensors[0]

        def onnx_as_codes() -> np.ndarray:  # on the output grid: int8, or int16 for 16x8
            unit = model_inputs.dequantize_to_unit(x, in_tensor)
            nchw = unit.transpose(0, 3, 1, 2) if unit.ndim == 4 else unit
            logits = oracle.run_onnx(str(onnx_path), nchw)[0]
            return oracle.float_codes(
                logits.reshape(sim_out.shape), out_tensor.scale[0], out_tensor.zero_point[0], out_tensor.dtype
            )

        onnx_row, onnx_out = _guarded("ONNX (QCDQ, float)", onnx_as_codes, sim_out)
        report.comparisons.append(onnx_row)
        if onnx_out is not None:
            # The same file without TFLite Micro's double rounding: separates the runtime's rounding
            # from what the model computes when the ONNX row shows drift.
            from mcu_effnet.sim.requantize import rounding

            with rounding("single"):
                single_out = _first(run(graph, x))  # plans read the mode at run time
            report.comparisons.append(compare(SINGLE_ROUNDING_ROW, single_out, onnx_out))
    return report


def locate_mismatch(
    model: bytes, graph: Graph, x: np.ndarray, sim_out: np.ndarray, tflm_out: np.ndarray
) -> Mismatch | None:
    """Re-runs the first differing sample in both with every tensor kept; names the first op that differs."""
    from mcu_effnet.sim import run

    rows = np.flatnonzero((sim_out != tflm_out).reshape(sim_out.shape[0], -1).any(axis=1))
    if rows.size == 0:
        return None
    i = int(rows[0])
    sample = x[i : i + 1]
    ours = run(graph, sample, capture=True)
    theirs = oracle.tflm_all_tensors(model, sample)
    for op in graph.ops:
        for index in op.outputs:
            a = ours[index].astype(np.int64)
            b = theirs[index].reshape(a.shape).astype(np.int64)
            if not np.array_equal(a, b):
                diff = np.abs(a - b)
                tensor = graph.tensor(index)
                return Mismatch(
                    i,
                    op.index,
                    op.kind,
                    tensor.name,
                    int(np.count_nonzero(diff)),
                    int(diff.size),
                    int(diff.max()),
                )
    return None


def _first(outputs: np.ndarray | list[np.ndarray]) -> np.ndarray:
    return outputs[0] if isinstance(outputs, list) else outputs


def _cell(value: float | int | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_table(report: ValidationReport) -> str:
    header = f"{'simulator vs':<20} {'samples':>7} {'elements':>9} {'differing':>9} {'exact %':>8} {'max LSB':>7} {'<=1 LSB %':>9} {'top-1 %':>8}"
    lines = [f"{report.model}: {report.inputs}", header, "-" * len(header)]
    for c in report.comparisons:
        if not c.ran:
            lines.append(f"{c.reference:<20} failed: {c.error}")
            continue
        lines.append(
            f"{c.reference:<20} {c.samples:>7} {c.elements:>9} {_cell(c.differing, 'd'):>9} "
            f"{_cell(c.exact_pct, '.2f'):>8} {_cell(c.max_lsb, 'd'):>7} {_cell(c.within_1lsb_pct, '.2f'):>9} "
            f"{_cell(c.top1_agreement_pct, '.2f'):>8}"
        )
        if c.first_mismatch:
            lines.append("  " + Mismatch(**c.first_mismatch).describe())
    if any(c.reference == SINGLE_ROUNDING_ROW for c in report.comparisons):
        lines.append(
            f"{SINGLE_ROUNDING_ROW}: the simulator with single-rounding requantization (TFLite Micro built "
            "with TFLITE_SINGLE_ROUNDING) vs ONNX"
        )
    verdict = "bit-exact with TFLite Micro" if report.bit_exact else "NOT bit-exact with TFLite Micro"
    lines.append(f"simulator: {verdict}")
    return "\n".join(lines)
