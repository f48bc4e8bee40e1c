"""The run folder: one training run's config, checkpoint, history, metrics and exported models.

Every file is written to a temporary name in the same folder and renamed over the old one, so a
crash or Ctrl-C at any moment leaves each file either whole-old or whole-new: never a run folder
with a half-written checkpoint. A new run refuses a folder that already holds files.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import torch

from mcu_effnet.atomic import atomic_write_bytes, staged
from mcu_effnet.errors import UserError

RUNS_ROOT = Path("runs")
CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
HISTORY = "history.csv"
CURVES = "curves.png"
METRICS = "metrics.json"
LABELS = "labels.txt"
ONNX = "model.onnx"
VAL_SAMPLES = "val_samples.npz"


def default_run_name(variant: str, phi: float, resolution: int, when: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    return f"{variant}-phi{phi:g}-r{resolution}-{stamp}"


class RunFolder:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    # -- creation and opening -----------------------------------------------------------------

    @classmethod
    def create(cls, path: Path) -> RunFolder:
        """A new, empty run folder (an existing empty folder is fine; one with files is not)."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UserError(
                f"{path}: already exists and is not empty; resume that run or write to another folder"
            )
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"{path}: cannot create run folder ({exc.strerror})") from None
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> RunFolder:
        """An existing run folder with a config and a checkpoint (for --resume and export)."""
        path = Path(path)
        if not path.is_dir():
            raise UserError(f"{path}: no such run folder")
        for name in (CONFIG, CHECKPOINT):
            if not (path / name).is_file():
                raise UserError(f"{path}: not a run folder (no {name})")
        return cls(path)

    # -- files --------------------------------------------------------------------------------

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        atomic_write_bytes(self.file(name), (json.dumps(data, indent=2, sort_keys=False) + "\n").encode())

    def read_json(self, name: str) -> dict[str, Any]:
        try:
            return json.loads(self.file(name).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"{self.file(name)}: unreadable ({exc})") from None

    def update_json(self, name: str, updates: dict[str, Any]) -> dict[str, Any]:
        data = self.read_json(name) if self.file(name).exists() else {}
        data.update(updates)
        self.write_json(name, data)
        return data

    def write_text(self, name: str, text: str) -> None:
        atomic_write_bytes(self.file(name), text.encode())

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(self.file(CHECKPOINT), buffer.getvalue())

    def load_checkpoint(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        try:
            return torch.load(self.file(CHECKPOINT), map_location=map_location, weights_only=False)
        except Exception as exc:  # a torn or foreign file: any unpickling error
            raise UserError(
                f"{self.file(CHECKPOINT)}: unreadable checkpoint ({type(exc).__name__}: {exc})"
            ) from None

    def link_latest(self) -> None:
        """Points ``<parent>/latest`` at this folder (relative link, replaced atomically)."""
        latest = self.path.parent / "latest"
        if latest.exists() and not latest.is_symlink():
            return  # someone's real folder called "latest": leave it alone
        with staged(latest) as tmp:
            tmp.symlink_to(self.path.name)
