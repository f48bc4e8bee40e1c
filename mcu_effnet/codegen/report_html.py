"""``report.html``: the project's report.json as a page a person can look at.

Self-contained (inline SVG and CSS, no script, nothing fetched): the arena's live bytes over the
ops, per-layer instructions and instructions per MAC (once a profiling build has run), flash by
section with the weights apart. ``write`` is called by ``codegen`` and again by ``run``, which
adds the measurements; the page is rendered from ``firmware_templates/report/report.html.j2``.
"""

from __future__ import annotations

import html
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcu_effnet.codegen.profile import execution_layers

TEMPLATES = Path(__file__).resolve().parent.parent / "firmware_templates"

# Bar colours (Paul Tol's bright scheme), one per chart so a screenshot tells them apart.
ARENA_COLOUR = "#4477aa"
INSTRUCTIONS_COLOUR = "#ee6677"
PER_MAC_COLOUR = "#228833"
WEIGHTS_COLOUR = "#ccbb44"
SECTION_COLOURS = ("#66ccee", "#aa3377", "#bbbbbb", "#332288", "#999933")
LINE_COLOUR = "#222222"

WIDTH, HEIGHT = 920, 300
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 70, 110, 16


@dataclass(frozen=True)
class Segment:
    label: str
    size: int
    colour: str


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _si(v: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def bar_chart(
    values: list[float],
    labels: list[str],
    colour: str,
    unit: str,
    lines: tuple[tuple[float, str], ...] = (),
) -> str:
    """One SVG bar chart: a bar per value, labels under the bars, dashed reference lines."""
    top = max([*values, *(v for v, _ in lines), 1e-9]) * 1.12
    plot_w = WIDTH - MARGIN_LEFT - 10
    plot_h = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    n = max(len(values), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.75, 1.0)
    y0 = MARGIN_TOP + plot_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img">',
        f'<line x1="{MARGIN_LEFT}" y1="{y0}" x2="{WIDTH - 10}" y2="{y0}" stroke="#888"/>',
    ]
    for k in range(5):  # y grid and ticks
        v = top * k / 4
        y = y0 - plot_h * k / 4
        parts.append(f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{WIDTH - 10}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_si(v)}</text>')
    parts.append(
        f'<text x="14" y="{MARGIN_TOP + plot_h / 2:.0f}" transform="rotate(-90 14 {MARGIN_TOP + plot_h / 2:.0f})" '
        f'text-anchor="middle">{_esc(unit)}</text>'
    )
    for i, (v, label) in enumerate(zip(values, labels, strict=True)):
        h = plot_h * v / top
        x = MARGIN_LEFT + i * slot + (slot - bar_w) / 2
        parts.append(
            f'<rect x="{x:.1f}" y="{y0 - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}">'
            f"<title>{_esc(label)}: {v:,.4g} {_esc(unit)}</title></rect>"
        )
        if n <= 60:  # labels stay readable up to about 60 bars
            cx = x + bar_w / 2
            parts.append(
                f'<text x="{cx:.1f}" y="{y0 + 10}" transform="rotate(-45 {cx:.1f} {y0 + 10})" '
                f'text-anchor="end" class="small">{_esc(label)}</text>'
            )
    for v, label in lines:
        y = y0 - plot_h * v / top
        parts.append(
            f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{WIDTH - 10}" y2="{y:.1f}" stroke="{LINE_COLOUR}" '
            f'stroke-dasharray="6 4"/><text x="{WIDTH - 12}" y="{y - 4:.1f}" text-anchor="end">{_esc(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def stacked_bar(segments: list[Segment]) -> str:
    """One horizontal bar split into segments, with a legend under it."""
    total = sum(s.size for s in segments) or 1
    height = 60 + 22 * ((len(segments) + 2) // 3)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img">'
    ]
    x = 10.0
    span = WIDTH - 20
    for s in segments:
        w = span * s.size / total
        parts.append(
            f'<rect x="{x:.1f}" y="8" width="{w:.1f}" height="36" fill="{s.colour}">'
            f"<title>{_esc(s.label)}: {s.size:,} bytes</title></rect>"
        )
        x += w
    for i, s in enumerate(segments):
        lx, ly = 10 + (i % 3) * 300, 62 + 22 * (i // 3)
        parts.append(f'<rect x="{lx}" y="{ly - 11}" width="12" height="12" fill="{s.colour}"/>')
        parts.append(
            f'<text x="{lx + 18}" y="{ly}">{_esc(s.label)}: {s.size:,} B ({100 * s.size / total:.1f}%)</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def flash_sections(elf: Path) -> dict[str, int]:
    """Sections the image loads into flash (allocated, with contents) and their sizes; {} when
    the ELF or objdump is not there."""
    try:
        proc = subprocess.run(
            ["arm-none-eabi-objdump", "-h", str(elf)], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if proc.returncode != 0:
        return {}
    sections: dict[str, int] = {}
    rows = proc.stdout.splitlines()
    for head, flags in zip(rows, rows[1:], strict=False):
        fields = head.split()
        if len(fields) >= 7 and fields[0].isdigit():
            size = int(fields[2], 16)
            if size and "ALLOC" in flags and "LOAD" in flags and "CONTENTS" in flags:
                sections[fields[1]] = size
    return sections


def flash_segments(report: dict[str, Any], sections: dict[str, int]) -> list[Segment]:
    """Flash by section, the weights shown apart from the read-only section that holds them."""
    weights = int(report.get("weights_bytes") or 0)
    segments = [
        Segment(
            "weights" if report.get("runtime") == "native" else "model (.tflite)", weights, WEIGHTS_COLOUR
        )
    ]
    holder = ".rodata" if sections.get(".rodata", 0) >= weights else ".text"
    colours = iter(SECTION_COLOURS * 4)
    for name, size in sorted(sections.items(), key=lambda kv: -kv[1]):
        rest = size - weights if name == holder else size
        if rest > 0:
            label = f"{name} without the weights" if name == holder and weights else name
            segments.append(Segment(label, rest, next(colours)))
    return segments if sections else []


def _elf(report: dict[str, Any], folder: Path) -> Path | None:
    for rel in (report.get("elf"), "build/qemu/firmware.elf"):
        if rel and (folder / rel).is_file():
            return folder / rel
    return None


def render(report: dict[str, Any], folder: Path) -> str:
    """The page's HTML for ``report`` (the project folder gives the ELF for flash sections)."""
    import jinja2

    rows = execution_layers(report)
    labels = [f"{_position(r, i)} {r.get('op', '?')}" for i, r in enumerate(rows)]
    table = [
        {
            "step": _position(r, i),
            "op": r.get("op", r.get("layer", "?")),
            "output_shape": r.get("output_shape", ""),
            "macs": r.get("macs"),
            "live_bytes": r.get("live_bytes"),
            "instructions": r.get("instructions"),
            "instructions_per_mac": r.get("instructions_per_mac"),
        }
        for i, r in enumerate(rows)
    ]
    live = [r.get("live_bytes") for r in rows]
    arena_svg = None
    if rows and all(v is not None for v in live):
        arena_svg = bar_chart(
            [float(v) for v in live],
            labels,
            ARENA_COLOUR,
            "bytes live",
            lines=((float(report["arena_bytes"]), f"arena {report['arena_bytes']:,} B"),),
        )
    profiled = report.get("profile") and rows and all(r.get("instructions") is not None for r in rows)
    instructions_svg = per_mac_svg = None
    if profiled:
        instructions_svg = bar_chart(
            [float(r["instructions"]) for r in rows], labels, INSTRUCTIONS_COLOUR, "instructions"
        )
        with_macs = [
            (lab, r) for lab, r in zip(labels, rows, strict=True) if r.get("instructions_per_mac") is not None
        ]
        if with_macs:
            per_mac_svg = bar_chart(
                [float(r["instructions_per_mac"]) for _, r in with_macs],
                [lab for lab, _ in with_macs],
                PER_MAC_COLOUR,
                "instructions / MAC",
                lines=((1.0, "1 instruction / MAC"),),
            )
    elf = _elf(report, folder)
    segments = flash_segments(report, flash_sections(elf) if elf else {})
    flash_svg = stacked_bar(segments) if segments else None
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report/report.html.j2").render(
        report=report,
        rows=table,
        profile=report.get("profile"),
        arena_svg=_markup(arena_svg),
        instructions_svg=_markup(instructions_svg),
        per_mac_svg=_markup(per_mac_svg),
        flash_svg=_markup(flash_svg),
        flash_total=sum(s.size for s in segments),
        elf=str(elf.relative_to(folder)) if elf else None,
    )


def _position(row: dict[str, Any], i: int) -> int:
    return int(row.get("step", row.get("index", i)))


def _markup(svg: str | None):
    from markupsafe import Markup

    return Markup(svg) if svg else None


def write(path: str | Path, report: dict[str, Any], folder: str | Path) -> None:
    Path(path).write_text(render(report, Path(folder)))
