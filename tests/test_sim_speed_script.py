"""benchmarks/sim_speed.py runs end to end on a given model and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from tflite_builder import random_cnn

ROOT = Path(__file__).resolve().parent.parent


def test_sim_speed_script_on_a_model_path(tmp_path):
    model = tmp_path / "small.tflite"
    model.write_bytes(random_cnn(np.random.default_rng(0), size=8))
    out = tmp_path / "speed.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "sim_speed.py"),
            str(model),
            "--no-builtin",
            "--batch",
            "8",
            "--repeats",
            "3",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "small.tflite" in result.stdout and "sim ms/img" in result.stdout
    (row,) = json.loads(out.read_text())["results"]
    assert row["bit_exact"] is True and row["batch"] == 8
    assert row["sim_batch1_ms"] > 0 and row["tflm_batch1_ms"] > 0
    assert abs(row["batch1_speedup"] - row["tflm_batch1_ms"] / row["sim_batch1_ms"]) < 1e-9
