"""The ``scale`` report: a spec as the JSON document and the text table of ``mcu-effnet scale``."""

from __future__ import annotations

from typing import Any

from mcu_effnet.arch.estimate import flash_bytes, peak_step, stage_costs
from mcu_effnet.arch.spec import ArchSpec

STAGE_KEYS = (
    "stage",
    "operator",
    "kernel",
    "stride",
    "resolution",
    "channels",
    "layers",
    "scaled_resolution",
    "scaled_channels",
    "scaled_layers",
)


def scale_report(spec: ArchSpec) -> dict[str, Any]:
    """The JSON of ``mcu-effnet scale --json``.

    ``depth_mult``, ``width_mult`` and ``resolution_mult`` are the compound-scaling multipliers
    (or the explicit overrides); ``resolution``, ``params``, ``macs`` and the stages describe
    the network as built, i.e. after fitting when there is a board; ``fit`` then holds the
    fitted resolution and width, the estimates and the budgets.
    """
    report: dict[str, Any] = {
        "phi": spec.phi,
        "alpha": spec.alpha,
        "beta": spec.beta,
        "gamma": spec.gamma,
        "depth_mult": spec.depth_mult,
        "width_mult": spec.fit.scaled_width_mult if spec.fit else spec.width_mult,
        "resolution_mult": spec.resolution_mult,
        "resolution": spec.resolution,
        "params": spec.params,
        "macs": spec.macs,
        "stages": [{k: getattr(s, k) for k in STAGE_KEYS} for s in spec.stages],
    }
    if spec.fit is not None:
        f = spec.fit
        report["board"] = f.board
        report["fit"] = {
            "resolution": f.resolution,
            "width_mult": f.width_mult,
            "peak_activation_bytes": f.peak_activation_bytes,
            "weight_bytes": f.weight_bytes,
            "sram_bytes": f.sram_bytes,
            "flash_bytes": f.flash_bytes,
            "arena_bytes": f.arena_bytes,
            "ram_bytes": f.ram_bytes,
            "code_bytes": f.code_bytes,
            "flash_needed_bytes": f.flash_needed_bytes,
            "firmware_flash_bytes": f.firmware_flash_bytes,
            "reserve_ram_bytes": f.reserve_ram_bytes,
            "reserve_flash_bytes": f.reserve_flash_bytes,
            "instructions": f.instructions,
            "latency_ms": f.latency_ms,
            "max_ms": f.max_ms,
        }
    return report


def _si(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def _kib(n: int) -> str:
    return f"{n:,} B ({n / 1024:.1f} KiB)"


def format_scale_table(spec: ArchSpec, unfitted: ArchSpec | None = None) -> str:
    """The human table: per stage the built values with the raw scaled ones in brackets, and,
    for a fitted spec, the compound-scaled (unfitted) resolution and channels beside them."""
    lines = [
        f"EfficientNet-{spec.variant}  phi={spec.phi:g}  alpha={spec.alpha:g} beta={spec.beta:g} "
        f"gamma={spec.gamma:g}  classes={spec.classes}",
        f"compound scaling: depth x{spec.depth_mult:.3f}  width x"
        f"{(spec.fit.scaled_width_mult if spec.fit else spec.width_mult):.3f}  "
        f"resolution x{spec.resolution_mult:.3f} -> "
        f"{spec.fit.scaled_resolution if spec.fit else spec.resolution} px",
    ]
    if spec.fit is not None:
        f = spec.fit
        lines.append(
            f"fitted to {f.board}: {f.resolution} px, width x{f.width_mult:.3f} "
            f"(SRAM budget {f.sram_bytes:,} B, flash budget {f.flash_bytes:,} B"
            + (
                f", after reserving {f.reserve_ram_bytes / 1024:g} KiB SRAM and "
                f"{f.reserve_flash_bytes / 1024:g} KiB flash for the application"
                if f.reserve_ram_bytes is not None and f.reserve_flash_bytes is not None
                else ""
            )
            + (f", at most {f.max_ms:g} ms" if f.max_ms is not None else "")
            + ")"
        )
    lines.append("")
    costs = {c.stage: c for c in stage_costs(spec)}
    header = ["stage", "operator", "k", "s", "resolution [scaled]", "channels [scaled]", "layers [scaled]"]
    if unfitted is not None and spec.fit is not None:
        header += ["unfitted res", "unfitted ch"]
    header += ["params", "MACs"]
    rows = [header]
    for i, s in enumerate(spec.stages):
        row = [
            str(s.stage),
            s.operator,
            f"{s.kernel}x{s.kernel}",
            str(s.stride),
            f"{s.resolution}x{s.resolution} [{s.scaled_resolution:.1f}]",
            f"{s.channels} [{s.scaled_channels:.1f}]",
            f"{s.layers} [{s.scaled_layers:.2f}]",
        ]
        if unfitted is not None and spec.fit is not None:
            u = unfitted.stages[i]
            row += [f"{u.resolution}x{u.resolution}", str(u.channels)]
        row += [_si(costs[s.stage].params), _si(costs[s.stage].macs)]
        rows.append(row)
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    for r in rows:
        lines.append(
            "  ".join(
                cell.ljust(w) if c < 2 else cell.rjust(w)
                for c, (cell, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    op, peak = peak_step(spec)
    lines += [
        "",
        f"params             {spec.params:,}",
        f"MACs               {spec.macs:,} ({_si(spec.macs)})",
        f"int8 weight bytes  {_kib(flash_bytes(spec))}  (weights + int32 biases + requant constants)",
        f"peak activation    {_kib(peak)}  (int8, at {op}; estimate: nothing fused or in place)",
    ]
    f = spec.fit
    if f is not None and f.ram_bytes is not None and f.arena_bytes is not None:
        lines.append(
            f"planned RAM        {_kib(f.ram_bytes)}  (arena {f.arena_bytes:,} B as codegen plans it, "
            f"+ I/O, stack, runtime; estimated {peak:,} B)"
        )
    if f is not None and f.firmware_flash_bytes is not None:
        lines.append(
            f"firmware flash     {_kib(f.firmware_flash_bytes)}  (code {f.code_bytes:,} B, engine weights "
            f"{f.weight_bytes:,} B, test vector; DSP weights widened within the reserve)"
        )
    if f is not None and f.instructions is not None and f.latency_ms is not None:
        lines.append(
            f"latency            {f.latency_ms:.1f} ms at {f.board}'s clock  ({_si(f.instructions)} instructions "
            "measured per op kind in QEMU; instructions, not cycles)"
        )
    return "\n".join(lines)
