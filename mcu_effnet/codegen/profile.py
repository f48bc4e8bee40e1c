"""Per-layer profile of a firmware built with ``codegen --profile``, measured in QEMU.

The firmware reads its counter at fixed points of the test vector's inference (``profile_mark``
in ``firmware_templates/platform/profile.c``):

- native engine: entry of ``model_invoke``, after the input copy, after every op, exit;
- TFLite Micro: entry, the start and end of every kernel invoke (its ``MicroProfilerInterface``),
  exit.

and prints them (``MCU-EFFNET STAMP``) with the measured cost of one mark (``MARKCOST``).
``from_run`` turns those lines into per-layer instructions: each interval between two marks
holds the end of one mark and the start of the next, so one mark's cost is taken off each.
What lies outside the ops (the native engine's input/output copies; TFLite Micro's interpreter
between kernels and its copies) is its own row, so the rows add up to the whole inference
within the marks' own cost.

Resolution: QEMU's SysTick counts at the board's 25 MHz, and ``-icount shift=0`` makes one
tick 40 instructions; a layer's count is the difference of two readings, so it is exact to
within one tick.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mcu_effnet.errors import UserError
from mcu_effnet.graph.tiling import DEFAULT_MAX_RECOMPUTE

PLATFORM_FILES = ("profile.c", "profile.h")
NATIVE_MARK = "MODEL_PROFILE_MARK();"  # one per counter reading in the generated model.c
OUTSIDE_OPS = {
    "native": "outside ops (input/output copies)",
    "tflm": "outside ops (interpreter between kernels, input/output copies)",
}


def marks_per_inference(runtime: str, ops: int) -> int:
    """Counter readings per inference: native, entry + before the first op + one per op + exit;
    TFLite Micro, entry + a pair per kernel invoke + exit."""
    return ops + 3 if runtime == "native" else 2 * ops + 2


def project_marks(runtime: str, ops: int, model_c: str | None = None) -> int:
    """``marks_per_inference``, checked against the generated model.c's marks (native)."""
    marks = marks_per_inference(runtime, ops)
    if model_c is not None and model_c.count(NATIVE_MARK) != marks:
        raise AssertionError(f"model.c has {model_c.count(NATIVE_MARK)} profile marks for {ops} ops")
    return marks


def render(templates: Path, dest: Path, files: list[str]) -> None:
    """Copies the profiling recorder into the project's platform folder."""
    for name in PLATFORM_FILES:
        shutil.copyfile(templates / "platform" / name, dest / "platform" / name)
        files.append(f"platform/{name}")


@dataclass
class LayerCost:
    step: int  # execution order
    index: int  # the op's index in the model
    op: str
    instructions: int  # one mark's cost taken off; never below 0
    macs: int
    instructions_per_mac: float | None


@dataclass
class Profile:
    runtime: str
    inference_instructions: int  # the whole test-vector inference, as the harness measured it
    resolution_instructions: float  # one counter tick
    mark_instructions: float  # cost of one counter reading (a mark), measured on the target
    marks: int
    outside_ops_instructions: int
    layers: list[LayerCost] = field(default_factory=list)

    @property
    def layer_sum(self) -> int:
        return sum(layer.instructions for layer in self.layers)

    @property
    def counter_overhead_instructions(self) -> float:
        """What the marks themselves added to the inference."""
        return self.marks * self.mark_instructions

    @property
    def unexplained_instructions(self) -> int:
        """Inference minus the rows (layers and outside ops): the marks' own cost, give or take
        the counter's resolution at the two ends."""
        return self.inference_instructions - self.layer_sum - self.outside_ops_instructions

    def agrees(self) -> bool:
        """The rows add up to the whole inference within the counter's own overhead."""
        slack = self.counter_overhead_instructions + 2 * self.resolution_instructions
        return -2 * self.resolution_instructions <= self.unexplained_instructions <= slack

    def op_type_totals(self) -> dict[str, int]:
        """Instructions per op type, most expensive first, the outside-ops row last."""
        totals: dict[str, int] = {}
        for layer in self.layers:
            totals[layer.op] = totals.get(layer.op, 0) + layer.instructions
        ordered = dict(sorted(totals.items(), key=lambda kv: -kv[1]))
        ordered["(outside ops)"] = self.outside_ops_instructions
        return ordered

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "unit": "instructions",
            "inference_instructions": self.inference_instructions,
            "resolution_instructions": self.resolution_instructions,
            "mark_instructions": round(self.mark_instructions, 2),
            "marks": self.marks,
            "counter_overhead_instructions": round(self.counter_overhead_instructions),
            "layer_sum_instructions": self.layer_sum,
            "outside_ops": OUTSIDE_OPS[self.runtime],
            "outside_ops_instructions": self.outside_ops_instructions,
            "unexplained_instructions": self.unexplained_instructions,
            "agrees": self.agrees(),
            "op_types": self.op_type_totals(),
            "layers": [asdict(layer) for layer in self.layers],
        }


def _int(row: dict[str, str | None], key: str, what: str) -> int:
    try:
        return int(row[key] or "")
    except (KeyError, ValueError):
        raise UserError(f"firmware profile: {what} line without a number for {key}") from None


def from_run(
    lines: dict[str, list[dict[str, str | None]]],
    runtime: str,
    layers: list[dict[str, Any]],
    inference_instructions: int,
) -> Profile:
    """The profile of one run from the firmware's parsed lines (``toolchain.parse_output``).

    ``layers``: report.json's rows in execution order (``index``, ``op``, ``macs``).
    """
    head = (lines.get("PROFILE") or [None])[0]
    cost = (lines.get("MARKCOST") or [None])[0]
    if head is None or cost is None:
        raise UserError("the firmware printed no profile (MCU-EFFNET PROFILE / MARKCOST lines)")
    marks, expected = _int(head, "marks", "PROFILE"), _int(head, "expected", "PROFILE")
    hz = _int(head, "hz", "PROFILE")
    want = marks_per_inference(runtime, len(layers))
    if marks != expected or expected != want:
        raise UserError(
            f"firmware profile: {marks} counter marks in one inference, the build expects {expected} "
            f"and {len(layers)} layers need {want}"
        )
    stamps = [0] * marks
    for row in lines.get("STAMP", []):
        stamps[_int(row, "i", "STAMP")] = _int(row, "ticks", "STAMP")
    per_tick = 1e9 / hz  # -icount shift=0: 1 ns of virtual time per instruction
    mark = (_int(cost, "ticks", "MARKCOST") - _int(cost, "reads_ticks", "MARKCOST")) * per_tick
    mark /= _int(cost, "marks", "MARKCOST")

    if runtime == "native":  # entry, before op 0, after each op, exit
        spans = [(stamps[1 + i], stamps[2 + i]) for i in range(len(layers))]
        outside = [(stamps[0], stamps[1]), (stamps[-2], stamps[-1])]
    else:  # entry, (begin, end) per kernel, exit
        spans = [(stamps[1 + 2 * i], stamps[2 + 2 * i]) for i in range(len(layers))]
        edges = [stamps[0]] + [t for span in spans for t in span] + [stamps[-1]]
        outside = [(edges[k], edges[k + 1]) for k in range(0, len(edges), 2)]

    def net(span: tuple[int, int]) -> float:
        return (span[1] - span[0]) * per_tick - mark

    rows = []
    for step, (row, span) in enumerate(zip(layers, spans, strict=True)):
        instructions = max(0, round(net(span)))
        macs = int(row.get("macs") or 0)
        rows.append(
            LayerCost(
                step=step,
                index=int(row.get("index", step)),
                op=str(row.get("op", "?")),
                instructions=instructions,
                macs=macs,
                instructions_per_mac=round(instructions / macs, 3) if macs else None,
            )
        )
    return Profile(
        runtime=runtime,
        inference_instructions=int(inference_instructions),
        resolution_instructions=per_tick,
        mark_instructions=mark,
        marks=marks,
        outside_ops_instructions=max(0, round(sum(net(s) for s in outside))),
        layers=rows,
    )


def execution_layers(report: dict[str, Any]) -> list[dict[str, Any]]:
    """report.json's layer rows in the order the firmware runs them (native: ``step``; TFLite
    Micro runs the model's stored order)."""
    rows = list(report.get("layers") or [])
    key = "step" if report.get("runtime") == "native" else "index"
    return sorted(rows, key=lambda r: int(r.get(key, 0)))


def merge_into_report(report: dict[str, Any], profile: Profile) -> None:
    """Per-layer ``instructions``, ``macs``, ``instructions_per_mac`` into report.json's layer rows,
    and the whole profile under ``profile``."""
    ordered = execution_layers(report)
    for row, cost in zip(ordered, profile.layers, strict=True):
        row.update(
            instructions=cost.instructions, macs=cost.macs, instructions_per_mac=cost.instructions_per_mac
        )
    report["profile"] = profile.to_dict()


def require_profiling(folder: Path, marker: dict[str, Any], report: dict[str, Any]) -> None:
    """``run --profile`` on a project generated without it: one line that says how to rebuild."""
    if marker.get("profile"):
        return
    command = f"mcu-effnet codegen {report.get('model_source') or 'MODEL'} --board {marker.get('board')}"
    if marker.get("runtime") == "tflm":
        command += " --runtime tflm"
        if marker.get("kernels", "reference") != "reference":
            command += f" --kernels {marker['kernels']}"
    recompute = marker.get("max_recompute")
    if recompute is not None and recompute != DEFAULT_MAX_RECOMPUTE:
        command += f" --max-recompute {recompute:g}"
    raise UserError(
        f"{folder}: generated without profiling; regenerate it with: {command} --profile --out {folder}"
    )


def _fmt(n: float) -> str:
    return f"{n:,.0f}"


def format_by_cost(profile: Profile, title: str = "") -> str:
    """The layers by cost, top first, with their share of the inference."""
    total = profile.inference_instructions or 1
    res = profile.resolution_instructions
    lines = [
        f"per-layer profile{f' ({title})' if title else ''}: {_fmt(profile.inference_instructions)} "
        f"instructions per inference; each layer to within ±{res:.0f} instructions (one counter tick), "
        f"{profile.marks} counter reads of {profile.mark_instructions:.1f} instructions each taken off",
        f"{'rank':>4} {'step':>4} {'op':<20} {'instructions':>13} {'share':>6} {'MACs':>11} {'instr/MAC':>9}",
    ]
    ranked = sorted(profile.layers, key=lambda c: -c.instructions)
    for rank, c in enumerate(ranked, 1):
        ipm = "-" if c.instructions_per_mac is None else f"{c.instructions_per_mac:.2f}"
        lines.append(
            f"{rank:>4} {c.step:>4} {c.op:<20} {_fmt(c.instructions):>13} "
            f"{100 * c.instructions / total:>5.1f}% {_fmt(c.macs):>11} {ipm:>9}"
        )
    lines.append(
        f"{'':>9} {OUTSIDE_OPS[profile.runtime]}: {_fmt(profile.outside_ops_instructions)} "
        f"({100 * profile.outside_ops_instructions / total:.1f}%)"
    )
    verdict = "within" if profile.agrees() else "NOT within"
    lines.append(
        f"{'':>9} layers {_fmt(profile.layer_sum)} + outside ops {_fmt(profile.outside_ops_instructions)} "
        f"= {_fmt(profile.layer_sum + profile.outside_ops_instructions)} of {_fmt(profile.inference_instructions)}"
        f" measured: {verdict} the counter's own {_fmt(profile.counter_overhead_instructions)}"
    )
    return "\n".join(lines)


def format_op_types(columns: dict[str, dict[str, int]]) -> str:
    """Per-op-type instructions of several runtimes side by side (markdown)."""
    labels = list(columns)
    kinds: list[str] = []
    for totals in columns.values():
        kinds += [k for k in totals if k not in kinds and k != "(outside ops)"]
    kinds.sort(key=lambda k: -max(t.get(k, 0) for t in columns.values()))
    kinds.append("(outside ops)")
    lines = [
        "| op type | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for kind in kinds:
        cells = [_fmt(columns[label][kind]) if kind in columns[label] else "-" for label in labels]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
