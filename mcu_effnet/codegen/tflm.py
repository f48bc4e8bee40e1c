"""``--runtime tflm``: a TensorFlow Lite Micro firmware project for the same board and harness.

The arena is sized from TFLite Micro's own allocation recording (the tflite-micro Python
interpreter's ``RecordingMicroAllocator``, run in a child process because it prints from C++)
plus a margin; the op resolver registers exactly the model's op kinds. The Makefile links the
prebuilt library of the board's core from ``TFLM_DIR``.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph

# TFLite builtin name -> MicroMutableOpResolver method (tensorflow/lite/micro/micro_mutable_op_resolver.h).
RESOLVER_METHODS = {
    "ADD": "AddAdd",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize",
    "FULLY_CONNECTED": "AddFullyConnected",
    "HARD_SWISH": "AddHardSwish",
    "LOGISTIC": "AddLogistic",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MEAN": "AddMean",
    "MUL": "AddMul",
    "PAD": "AddPad",
    "PADV2": "AddPadV2",
    "QUANTIZE": "AddQuantize",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "SOFTMAX": "AddSoftmax",
    "SQUEEZE": "AddSqueeze",
    "SUB": "AddSub",
    "TANH": "AddTanh",
    "LEAKY_RELU": "AddLeakyRelu",
    "MAXIMUM": "AddMaximum",
    "MINIMUM": "AddMinimum",
    "STRIDED_SLICE": "AddStridedSlice",
    "TRANSPOSE": "AddTranspose",
}

ARENA_MARGIN_FRACTION = 0.10
ARENA_MARGIN_BYTES = 1024

_RECORD_SCRIPT = r"""
import sys
from tflite_micro.python.tflite_micro import runtime
data = open(sys.argv[1], "rb").read()
interpreter = runtime.Interpreter.from_bytes(data, arena_size=int(sys.argv[2]))
sys.stdout.flush()
interpreter.print_allocations()
"""


def find_tflm_dir(explicit: str | os.PathLike | None = None) -> tuple[Path | None, list[str]]:
    """--tflm-dir, else $TFLM_DIR, else the ``shared/tflm`` folder beside the repository or cwd."""
    looked: list[str] = []
    candidates: list[tuple[str, Path]] = []
    if explicit:
        candidates.append(("--tflm-dir", Path(explicit)))
    elif os.environ.get("TFLM_DIR"):
        candidates.append(("TFLM_DIR", Path(os.environ["TFLM_DIR"])))
    else:
        repo = Path(__file__).resolve().parents[2]
        candidates += [("beside the repository", repo.parent / "shared" / "tflm")]
        candidates += [("beside the current folder", Path.cwd().parent / "shared" / "tflm")]
    for how, path in candidates:
        looked.append(f"{path} ({how})")
        if (path / "tensorflow" / "lite" / "micro" / "micro_interpreter.h").is_file():
            return path.resolve(), looked
    return None, looked


def recorded_arena_bytes(model_bytes: bytes) -> int:
    """TFLite Micro's recorded arena total for the model (host build of the interpreter)."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(model_bytes)
        f.flush()
        # Recording needs an arena at least as large as what it records: grow it until it fits.
        for size in (max(len(model_bytes) * 10, 1 << 20), 16 << 20, 256 << 20):
            proc = subprocess.run(
                [sys.executable, "-c", _RECORD_SCRIPT, f.name, str(size)],
                capture_output=True,
                text=True,
                timeout=300,
            )
            m = re.search(r"Arena allocation total (\d+) bytes", proc.stdout + proc.stderr)
            if proc.returncode == 0 and m:
                break
    if proc.returncode != 0 or not m:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"TFLite Micro could not allocate the model's tensors: {tail}")
    return int(m.group(1))


def layer_rows(graph: Graph) -> list[dict[str, Any]]:
    from mcu_effnet.graph.stats import graph_stats

    return [
        {
            "index": s.index,
            "op": s.kind,
            "output_shape": list(s.output_shape),
            "macs": s.macs,
            "live_bytes": s.working_bytes,
        }
        for s in graph_stats(graph).layers
    ]


@dataclass
class TflmPlan:
    model_bytes: bytes
    ops: list[str]
    recorded_bytes: int
    arena_bytes: int
    tflm_dir: Path | None
    looked: list[str] = field(default_factory=list)

    def render(self, env, dest: Path, common: dict[str, Any], files: list[str]) -> None:
        ops = [{"kind": k, "method": RESOLVER_METHODS[k]} for k in self.ops]
        values = dict(
            common,
            ops=ops,
            arena_bytes=self.arena_bytes,
            recorded_bytes=self.recorded_bytes,
            model_bytes=np.frombuffer(self.model_bytes, dtype=np.uint8),
            model_len=len(self.model_bytes),
            model_source=common.get("model_source", "model.tflite"),
            sha256=hashlib.sha256(self.model_bytes).hexdigest(),
        )
        for template, rel in (
            ("tflm/main.cc.j2", "main.cc"),
            ("tflm/model.h.j2", "model/model.h"),
            ("tflm/model_data.h.j2", "model/model_data.h"),
            ("tflm/model_data.cc.j2", "model/model_data.cc"),
        ):
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(env.get_template(template).render(**values))
            files.append(rel)


def plan(graph: Graph, model_bytes: bytes, tflm_dir: str | os.PathLike | None = None) -> TflmPlan:
    kinds: list[str] = []
    for op in graph.ops:
        if op.kind not in RESOLVER_METHODS:
            raise UserError(
                f"{graph.source or 'model'}: op {op.index} ({op.kind}) has no TFLite Micro resolver "
                "entry known to mcu-effnet; use --runtime native"
            )
        if op.kind not in kinds:
            kinds.append(op.kind)
    recorded = recorded_arena_bytes(model_bytes)
    arena = int(recorded * (1 + ARENA_MARGIN_FRACTION)) + ARENA_MARGIN_BYTES
    arena = (arena + 15) // 16 * 16
    found, looked = find_tflm_dir(tflm_dir)
    return TflmPlan(model_bytes, kinds, recorded, arena, found, looked)
