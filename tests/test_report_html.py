"""``report.html``: self-contained, written by codegen and run, and its charts visible when
headless Chromium renders it (the screenshot has each chart's bar colour where the chart is)."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest
from conftest import _console_script
from tflite_builder import random_cnn

from mcu_effnet.codegen import report_html

WINDOW = (1000, 2600)
PAGE_MARGIN = 24  # body margin in the template's CSS, in CSS pixels

# One worker runs the module under `make test` (--dist loadgroup): its module fixture builds and
# runs a profiling firmware, which each worker it was spread over would make again.
pytestmark = pytest.mark.xdist_group("report_html")


def _cli(*args, timeout=600):
    return subprocess.run(
        [_console_script(), *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


@pytest.fixture(scope="module")
def profiled_project(tmp_path_factory, arm_toolchain):
    work = tmp_path_factory.mktemp("html")
    model = work / "cnn.tflite"
    model.write_bytes(random_cnn(np.random.default_rng(5)))
    out = work / "fw"
    made = _cli("codegen", model, "--board", "qemu-m4", "--out", out, "--profile")
    assert made.returncode == 0, made.stderr
    before = (out / "report.html").read_text()
    ran = _cli("run", out)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return out, before


def _screenshot(chromium: str, page, png, tmp_path):
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # root in a container has no user namespace for the sandbox
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert png.exists(), proc.stderr[-2000:]
    from PIL import Image

    return np.asarray(Image.open(png).convert("RGB"))


def test_codegen_writes_the_page_and_run_fills_in_the_profile(profiled_project):
    out, before = profiled_project
    after = (out / "report.html").read_text()
    assert "Not profiled yet" in before and 'id="arena-chart"' in before
    assert 'id="instructions-chart"' in after and 'id="per-mac-chart"' in after
    assert 'id="flash-chart"' in after
    report = json.loads((out / "report.json").read_text())
    assert f"{report['instructions_per_inference']:,}" in after


def test_page_is_self_contained(profiled_project):
    text = (profiled_project[0] / "report.html").read_text()
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=""", text, re.IGNORECASE)
    assert "@import" not in text and "url(" not in text
    # The only URL is the SVG namespace, which names and does not fetch.
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}


def test_chromium_shows_the_charts(profiled_project, chromium, tmp_path):
    out, _ = profiled_project
    image = _screenshot(chromium, out / "report.html", tmp_path / "report.png", tmp_path)
    assert image.std() > 10, "blank screenshot"
    report = json.loads((out / "report.json").read_text())

    rows_of = {}
    for name, colour in (
        ("arena", report_html.ARENA_COLOUR),
        ("instructions", report_html.INSTRUCTIONS_COLOUR),
        ("per MAC", report_html.PER_MAC_COLOUR),
        ("weights", report_html.WEIGHTS_COLOUR),
    ):
        mask = np.all(image == _rgb(colour), axis=-1)
        assert mask.sum() > 300, f"no {name} bars in the screenshot"
        rows_of[name] = (np.nonzero(mask.any(axis=1))[0], mask)
    # The charts come in the page's order, top to bottom, without overlapping.
    order = ["arena", "instructions", "per MAC", "weights"]
    for upper, lower in zip(order, order[1:], strict=False):
        assert rows_of[upper][0].max() < rows_of[lower][0].min(), (upper, lower)

    # The tallest instructions bar stands where the most expensive layer's bar belongs.
    layers = sorted(report["layers"], key=lambda r: r["step"])
    mask = rows_of["instructions"][1]
    heights = mask.sum(axis=0)
    slot = (report_html.WIDTH - report_html.MARGIN_LEFT - 10) / len(layers)
    top_step = max(range(len(layers)), key=lambda i: layers[i]["instructions"])
    centre = PAGE_MARGIN + report_html.MARGIN_LEFT + (top_step + 0.5) * slot
    assert abs(int(np.argmax(heights)) - centre) < slot / 2
    # Bar heights follow the counts: the second most expensive layer's bar is shorter.
    second = sorted(range(len(layers)), key=lambda i: -layers[i]["instructions"])[1]
    x2 = int(PAGE_MARGIN + report_html.MARGIN_LEFT + (second + 0.5) * slot)
    expected = layers[second]["instructions"] / layers[top_step]["instructions"]
    assert heights[x2] / heights.max() == pytest.approx(expected, abs=0.05)


def test_render_without_a_build_or_profile(tmp_path):
    report = {
        "board": "qemu-m4",
        "runtime": "native",
        "model": "m",
        "model_source": "m.tflite",
        "emulator": "mps2-an386",
        "input_shape": [1, 4, 4, 3],
        "output_shape": [1, 2],
        "arena_bytes": 100,
        "model_ram_bytes": 100,
        "weights_bytes": 40,
        "flash_bytes": None,
        "instructions_per_inference": None,
        "layers": [
            {
                "step": 0,
                "index": 0,
                "op": "CONV_2D",
                "output_shape": [1, 2, 2, 4],
                "macs": 432,
                "live_bytes": 64,
            },
            {"step": 1, "index": 1, "op": "MEAN", "output_shape": [1, 2], "macs": 0, "live_bytes": 24},
        ],
    }
    text = report_html.render(report, tmp_path)
    assert 'id="arena-chart"' in text
    assert "Not profiled yet" in text and "Not built yet" in text
    assert text.count(f'fill="{report_html.ARENA_COLOUR}"') == 2
