"""From a run folder to deployable files: ``export_run`` (used by ``qat`` and ``export``).

Each artefact is produced in memory or under a temporary name, checked, and only then renamed
into the run folder, so a failed check never leaves a half-valid model there. The int8
``.tflite`` export belongs beside the ONNX step in ``export_run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from mcu_effnet.arch import ArchSpec
from mcu_effnet.atomic import staged
from mcu_effnet.errors import UserError
from mcu_effnet.quant.onnx_export import OnnxCheck, check_against_model, export_qcdq
from mcu_effnet.quant.run_folder import CONFIG, METRICS, ONNX, VAL_SAMPLES, RunFolder


@dataclass
class ExportReport:
    run_dir: Path
    files: list[Path] = field(default_factory=list)
    onnx: OnnxCheck | None = None
    tflite: object | None = None  # mcu_effnet.quant.tflite_export.ExportReport


def load_quant_model(folder: RunFolder) -> tuple[ArchSpec, nn.Module, dict]:
    """The run's spec and its Brevitas model with the checkpoint's QAT weights and scales."""
    from mcu_effnet.models import build_quant

    config = folder.read_json(CONFIG)
    spec = ArchSpec.from_dict(config["spec"])
    state = folder.load_checkpoint()
    if state.get("phase") != "qat":
        raise UserError(
            f"{folder.path}: training stopped in the float phase, there is no QAT model yet; "
            f"finish it with mcu-effnet qat ... --resume {folder.path}"
        )
    model = build_quant(spec)
    model.load_state_dict(state["model"])
    return spec, model.eval(), state


def load_val_samples(folder: RunFolder) -> tuple[np.ndarray, np.ndarray]:
    path = folder.file(VAL_SAMPLES)
    try:
        with np.load(path) as archive:
            return archive["x"], archive["y"]
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"{path}: unreadable validation samples ({exc})") from None


def export_onnx(folder: RunFolder, spec: ArchSpec, model: nn.Module) -> OnnxCheck:
    """Writes ``model.onnx`` after checking it against ``model`` on the stored validation images."""
    images, _ = load_val_samples(folder)
    target = folder.file(ONNX)
    with staged(target) as tmp:
        export_qcdq(model, spec.resolution, tmp)
        check = check_against_model(tmp.read_bytes(), model, images)
    return check


def export_run(run_dir: str | Path, log=print, strict: bool = False) -> ExportReport:
    """(Re-)exports a run folder's QAT model: ``model.onnx`` now; the int8 ``.tflite`` goes here too."""
    folder = RunFolder.open(Path(run_dir))
    spec, model, state = load_quant_model(folder)
    if not state.get("done"):
        log(f"mcu-effnet: warning: {folder.path}: training is not finished; exporting the QAT weights so far")
    report = ExportReport(run_dir=folder.path)
    report.onnx = export_onnx(folder, spec, model)
    report.files.append(folder.file(ONNX))
    folder.update_json(METRICS, {"onnx_check": report.onnx.to_dict()})
    log(
        f"wrote {folder.file(ONNX)} (onnxruntime vs Brevitas: exact on {report.onnx.exact_images}/"
        f"{report.onnx.images} validation images, max |diff| {report.onnx.max_abs_diff:.2g} = "
        f"{report.onnx.max_lsb:.2g} LSB, same top-1 {100 * report.onnx.same_top1:.0f}%)"
    )
    from mcu_effnet.quant.tflite_run import TFLITE, export_run_tflite

    report.tflite = export_run_tflite(folder, strict=strict, log=log, qat_model=model)
    report.files.append(folder.file(TFLITE))
    return report


def train_and_export(
    spec: ArchSpec,
    data,
    options,
    ctx,
    *,
    out: Path | None = None,
    resume: Path | None = None,
    data_path: str | None = None,
    progress: bool = True,
    strict: bool = False,
    log=print,
):
    """``mcu-effnet qat``: ``run_qat`` on every process, then ``export_run`` on rank 0."""
    from mcu_effnet.quant.train import run_qat

    result = run_qat(
        spec, data, options, ctx, out=out, resume=resume, data_path=data_path, progress=progress, log=log
    )
    if ctx.is_main:
        export_run(result.run_dir, log=log, strict=strict)
    return result
