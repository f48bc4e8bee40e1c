"""``--runtime tflm``: a TensorFlow Lite Micro firmware project for the same board and harness.

The arena is sized from TFLite Micro's own allocation recording
(``mcu_effnet.oracle.recorded_arena_bytes``) plus a margin, plus the largest scratch buffer CMSIS-NN's kernels request (the reference kernels
the recording runs request none); the op resolver registers exactly the model's op kinds. The Makefile links the
prebuilt library of the board's core from ``TFLM_DIR`` or, for a core without one, builds the
library once into a cache folder outside the (read-only) tree. ``check_tree`` refuses, before
anything is compiled, a tree that cannot serve the board: a resolver without one of the model's
ops, flags that do not match the library, or no library and no compiler to build one.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcu_effnet.boards import Board
from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph, Op
from mcu_effnet.ops.common import op_padding
from mcu_effnet.oracle import recorded_arena_bytes

# TFLite builtin name -> MicroMutableOpResolver method (tensorflow/lite/micro/micro_mutable_op_resolver.h).
RESOLVER_METHODS = {
    "ADD": "AddAdd",
    "ARG_MAX": "AddArgMax",
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
    "PRELU": "AddPrelu",
    "SUM": "AddSum",
    "REDUCE_MAX": "AddReduceMax",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "STRIDED_SLICE": "AddStridedSlice",
    "TRANSPOSE": "AddTranspose",
    "EXPAND_DIMS": "AddExpandDims",
    "SLICE": "AddSlice",
    "PACK": "AddPack",
    "UNPACK": "AddUnpack",
    "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV",
    "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "DEPTH_TO_SPACE": "AddDepthToSpace",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "RESIZE_BILINEAR": "AddResizeBilinear",
}

# --kernels -> the prebuilt TFLite Micro library variant (libtflm_<variant>.a)
TFLM_KERNELS = {"reference": "ref", "cmsis-nn": "cmsis_nn"}

ARENA_MARGIN_FRACTION = 0.10
ARENA_MARGIN_BYTES = 1024


def find_tflm_dir(explicit: str | os.PathLike | None = None) -> tuple[Path | None, list[str]]:
    """--tflm-dir, else $TFLM_DIR, else the ``shared/tflm`` folder beside the repository or cwd.

    An explicit choice (option or environment) is final: a wrong path is reported, not silently
    replaced by another tree.
    """
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


def _align4(n: int) -> int:
    return (n + 3) // 4 * 4


def _op_scratch_bytes(graph: Graph, op: Op) -> int:
    """The scratch buffer TFLite Micro's CMSIS-NN kernel for ``op`` requests on a core with the
    DSP extension (no MVE), as CMSIS-NN's ``*_get_buffer_size`` functions compute it."""
    a = op.attrs
    if op.kind == "CONV_2D":
        x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
        kh, kw, cin = int(w.shape[1]), int(w.shape[2]), int(x.shape[3])
        if (kh, kw) == (1, 1):
            return 0  # arm_convolve_1x1_s8_fast: no buffer under gcc; the non-fast 1x1 none at all
        return 2 * _align4(kh * kw * cin) * 2  # two im2col columns of int16
    if op.kind == "DEPTHWISE_CONV_2D":
        x, w, y = (graph.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
        kh, kw, cin = int(w.shape[1]), int(w.shape[2]), int(x.shape[3])
        if cin != int(y.shape[3]) or (a.get("dilation_h_factor", 1), a.get("dilation_w_factor", 1)) != (1, 1):
            return 0  # the generic kernel, without a buffer
        if (kh, kw) == (3, 3) and max(op_padding(graph, op)) <= 1:
            return 0  # arm_depthwise_conv_3x3_s8
        return cin * kh * kw * 2  # arm_depthwise_conv_s8_opt: the window of every channel in int16
    if op.kind == "FULLY_CONNECTED":
        y, w = graph.tensors[op.outputs[0]], graph.tensors[op.inputs[1]]
        per_channel = w.scale.size > 1
        if len(y.shape) > 2 and int(w.shape[-1]) % 4 == 0 and not per_channel:
            return int(w.shape[0]) * 4 * 2  # per-channel multipliers and shifts faked for conv 1x1
        return 0
    if op.kind == "AVERAGE_POOL_2D":
        return int(graph.tensors[op.inputs[0]].shape[-1]) * 4  # an int32 sum per channel
    return 0


def cmsis_nn_scratch_bytes(graph: Graph) -> int:
    """The largest CMSIS-NN scratch request of the model's ops, plus alignment.

    The arena is recorded with the reference kernels, which request none; TFLite Micro plans a
    scratch buffer for the duration of its op only, so the largest one bounds what CMSIS-NN adds.
    """
    largest = max((_op_scratch_bytes(graph, op) for op in graph.ops), default=0)
    return largest + 16 if largest else 0


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

    def sources(self, env, common: dict[str, Any]) -> dict[str, str]:
        """The TFLite Micro program and the model as a C array: path in the project -> text."""
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
        templates = ("main.cc", "model/model.h", "model/model_data.h", "model/model_data.cc")
        return {rel: env.get_template(f"tflm/{Path(rel).name}.j2").render(**values) for rel in templates}


def model_ops(graph: Graph, advice: str) -> list[str]:
    """The model's op kinds, first use first; UserError (with ``advice``) for one without a resolver entry."""
    for op in graph.ops:
        if op.kind not in RESOLVER_METHODS:
            raise UserError(
                f"{graph.source or 'model'}: op {op.index} ({op.kind}) has no TFLite Micro resolver "
                f"entry known to mcu-effnet; {advice}"
            )
    return list(dict.fromkeys(op.kind for op in graph.ops))


def check_index_types(graph: Graph, label: str) -> None:
    """UserError for an op TFLite Micro resolves but whose Eval refuses this model's types:
    ARG_MAX to int64 indices (TFLite's default output_type; its kernel writes int32 only)."""
    for op in graph.ops:
        y = graph.tensors[op.outputs[0]]
        if op.kind == "ARG_MAX" and y.dtype != "int32":
            raise UserError(
                f"{label}: op {op.index} ARG_MAX writes {y.dtype} indices; TFLite Micro's ARG_MAX "
                "writes int32 only (use --runtime native, or output_type int32)"
            )


def require_tree(found: Path | None, looked: list[str]) -> Path:
    """The tree ``find_tflm_dir`` found, or UserError listing where it looked."""
    if found is None:
        raise UserError(
            "no TensorFlow Lite Micro tree found (looked in "
            + "; ".join(looked)
            + "): pass --tflm-dir or set TFLM_DIR (the native runtime needs none)"
        )
    return found


def plan(
    graph: Graph, model_bytes: bytes, tflm_dir: str | os.PathLike | None = None, kernels: str = "reference"
) -> TflmPlan:
    kinds = model_ops(graph, "use --runtime native")
    recorded = recorded_arena_bytes(model_bytes)
    scratch = cmsis_nn_scratch_bytes(graph) if kernels == "cmsis-nn" else 0
    arena = int(recorded * (1 + ARENA_MARGIN_FRACTION)) + ARENA_MARGIN_BYTES + scratch
    arena = (arena + 15) // 16 * 16
    found, looked = find_tflm_dir(tflm_dir)
    return TflmPlan(model_bytes, kinds, recorded, arena, found, looked)


# ---- the tree and its library ----------------------------------------------------------------

_RESOLVER_HEADER = Path("tensorflow/lite/micro/micro_mutable_op_resolver.h")
# ELF build attributes that must agree between the library and the board's own code: the
# architecture, the FPU and whether floats travel in VFP registers (the calling convention).
_ARCH_TAGS = ("Tag_CPU_arch", "Tag_FP_arch", "Tag_ABI_VFP_args")
# Any CMSIS-NN kernel: present in libtflm_cmsis_nn.a, absent from libtflm_ref.a.
_CMSIS_NN_SYMBOL = "arm_convolve_s8"


def prebuilt_library(tflm_dir: Path, board: Board, variant: str) -> Path:
    """Where the tree keeps the library for the board's core (it may not exist)."""
    return Path(tflm_dir) / "prebuilt" / board.core / f"libtflm_{variant}.a"


def _tool(name: str) -> str | None:
    import shutil

    return shutil.which(f"arm-none-eabi-{name}")


def _run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def print_flags(tflm_dir: Path, board: Board, variant: str) -> dict[str, str]:
    """``make print-flags`` of the tree for the board: {"ARCH_FLAGS": ..., "DEFS": ..., ...}."""
    cmd = ["make", "-s", "--no-print-directory", "-C", str(tflm_dir), "print-flags", f"VARIANT={variant}"]
    cmd += [f"CPU={board.mcpu}", f"FPU={board.mfpu}", f"FLOAT_ABI={board.mfloat_abi}"]
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)  # a parent make's -n must not turn print-flags into a dry run
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    flags = dict(ln.split("=", 1) for ln in proc.stdout.splitlines() if "=" in ln)
    if proc.returncode != 0 or "DEFS" not in flags:
        raise UserError(
            f"TFLM_DIR {tflm_dir}: 'make print-flags' gives no flags (not the lean TFLite Micro tree "
            "with prebuilt libraries described in its README?)"
        )
    return flags


def _attributes(path: Path) -> dict[str, str]:
    """The first object's ELF build attributes (every object of our libraries carries the same)."""
    proc = _run([_tool("readelf") or "arm-none-eabi-readelf", "-A", str(path)])
    tags: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("File:") and tags:
            break
        name, sep, value = line.partition(":")
        if sep and name.startswith("Tag_"):
            tags.setdefault(name, value.strip())
    return tags


def _board_attributes(board: Board) -> dict[str, str] | None:
    """Attributes of an empty object compiled with the board's flags (None: no compiler for them)."""
    import tempfile

    gcc = _tool("gcc")
    if gcc is None:
        return None
    with tempfile.TemporaryDirectory(prefix="mcu-effnet-attr-") as tmp:
        obj = Path(tmp) / "empty.o"
        proc = _run([gcc, *board.cflags, "-c", "-x", "c", os.devnull, "-o", str(obj)])
        return _attributes(obj) if proc.returncode == 0 else None


def _describe(tags: dict[str, str]) -> str:
    arch = tags.get("Tag_CPU_arch", "?")
    fpu = tags.get("Tag_FP_arch", "no FPU")
    if tags.get("Tag_ABI_HardFP_use") == "SP only":
        fpu += " single precision"
    abi = "hard-float" if tags.get("Tag_ABI_VFP_args") == "VFP registers" else "soft-float"
    return f"{arch}, {fpu}, {abi}"


def attributes_mismatch(library: dict[str, str], board: dict[str, str]) -> bool:
    """True when code built with the board's flags cannot safely link the library.

    Architecture, FPU and float ABI must be equal; a single-precision-only library is fine for a
    board whose FPU also does double precision (the board runs every instruction it uses).
    """
    if any(library.get(t) != board.get(t) for t in _ARCH_TAGS):
        return True
    return library.get("Tag_ABI_HardFP_use") != board.get("Tag_ABI_HardFP_use") and (
        library.get("Tag_ABI_HardFP_use") != "SP only"
    )


def _has_cmsis_nn(library: Path) -> bool:
    proc = _run([_tool("nm") or "arm-none-eabi-nm", "-g", "--defined-only", str(library)])
    return any(line.split()[-1] == _CMSIS_NN_SYMBOL for line in proc.stdout.splitlines() if line.strip())


def check_resolver(tflm_dir: Path, ops: list[str]) -> None:
    """Every op's resolver method is declared by this tree's MicroMutableOpResolver."""
    header = Path(tflm_dir) / _RESOLVER_HEADER
    try:
        text = header.read_text(errors="replace")
    except OSError:
        raise UserError(f"TFLM_DIR {tflm_dir}: no {_RESOLVER_HEADER}") from None
    for kind in ops:
        if not re.search(rf"\b{RESOLVER_METHODS[kind]}\s*\(", text):
            raise UserError(
                f"TFLM_DIR {tflm_dir}: TFLite Micro's op resolver has no {RESOLVER_METHODS[kind]}() for "
                f"the model's {kind} op (an older tree?); use runtime native or a newer tree",
                options=("runtime",),
            )


def _check_compiler(board: Board, library: Path) -> None:
    """A core with no prebuilt library needs arm-none-eabi-g++ that knows it."""
    gxx = _tool("g++")
    where = f"{board.name} ({board.core}): no prebuilt TFLite Micro library in {library.parent}"
    if gxx is None:
        raise UserError(
            f"{where} and no arm-none-eabi-g++ to build one (sudo apt-get install gcc-arm-none-eabi "
            "libstdc++-arm-none-eabi-newlib), or use runtime native",
            options=("runtime",),
        )
    probe = _run([gxx, *board.cflags, "-c", "-x", "c++", os.devnull, "-o", os.devnull])
    if probe.returncode != 0:
        raise UserError(
            f"{where} and arm-none-eabi-g++ cannot compile for {' '.join(board.cflags)}; use runtime native",
            options=("runtime",),
        )


def check_tree(tflm_dir: Path, board: Board, variant: str, ops: list[str]) -> Path | None:
    """Refuses a tree that cannot build this model for this board; returns the prebuilt library
    that the Makefile will link, or None when it will build one into its cache folder.

    What needs ``make`` (print-flags) or binutils (the library's attributes and symbols) is
    skipped without them: the build itself reports the problem then.
    """
    import shutil

    check_resolver(tflm_dir, ops)
    library = prebuilt_library(tflm_dir, board, variant)
    prebuilt = library.is_file()
    if not prebuilt:
        _check_compiler(board, library)
    if shutil.which("make") is None:
        return library if prebuilt else None
    flags = print_flags(tflm_dir, board, variant)
    defines_nn = "-DCMSIS_NN" in flags["DEFS"].split()
    if defines_nn != (variant == "cmsis_nn"):
        raise UserError(
            f"TFLM_DIR {tflm_dir}: print-flags for VARIANT={variant} "
            f"{'defines' if defines_nn else 'lacks'} -DCMSIS_NN, so its kernel headers do not match "
            f"libtflm_{variant}.a"
        )
    if not prebuilt or _tool("readelf") is None or _tool("nm") is None:
        return library if prebuilt else None
    want = _board_attributes(board)
    have = _attributes(library)
    if want is not None and attributes_mismatch(have, want):
        raise UserError(
            f"{library}: built for {_describe(have)}, but {board.name} compiles for {_describe(want)} "
            f"({' '.join(board.cflags)}); the library does not match the board's flags"
        )
    if _has_cmsis_nn(library) != (variant == "cmsis_nn"):
        what = "has" if variant == "ref" else "lacks"
        raise UserError(
            f"{library}: {what} the CMSIS-NN kernels ({_CMSIS_NN_SYMBOL}), so it was not built with "
            f"the flags of VARIANT={variant} (print-flags: {flags['DEFS']})"
        )
    return library
