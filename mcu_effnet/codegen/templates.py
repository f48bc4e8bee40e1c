"""The one Jinja environment over ``firmware_templates/``, for the engine and the projects."""

from __future__ import annotations

from pathlib import Path

import jinja2

from mcu_effnet.codegen.c_literals import c_array_body

TEMPLATES = Path(__file__).resolve().parent.parent / "firmware_templates"
KiB = 1024


def kib(n: float) -> str:
    """A size for people: bytes below 1 KB, else KB with one decimal below 10 KB."""
    if n < KiB:
        return f"{int(n)} B"
    value = n / KiB
    return f"{value:.0f} KB" if value >= 10 or value == int(value) else f"{value:.1f} KB"


def environment() -> jinja2.Environment:
    """Strict (an undefined name is an error), C-friendly whitespace, no HTML escaping."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["c_array"] = c_array_body
    env.globals["kib"] = kib
    return env
