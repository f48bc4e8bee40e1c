"""The generator's mirror of the DSP depthwise kernel's run-time path choice
(``codegen.dsp_depthwise_paths``) against the C functions it mirrors, and the optional paths an
engine keeps (``ek_dsp_paths.h``)."""

from __future__ import annotations

import subprocess
from dataclasses import astuple, fields

import numpy as np
import public_models
from host_engine import CFLAGS, DSP_EMULATION, compiled_runtime

from mcu_effnet.codegen import dsp_depthwise_paths as paths
from mcu_effnet.codegen.engine import generate_engine
from mcu_effnet.graph import load_tflite

HARNESS = r"""
#include <stdio.h>
#include <string.h>
#include "ek_conv_dsp.h"
int main(void)
{
    ek_depthwise_dsp_params p;
    memset(&p, 0, sizeof p);
    while (scanf("%d %d %d %d %d %d %d %d %d %d %d %d %d %d %d", &p.batches, &p.in_h, &p.in_w, &p.in_c, &p.out_h,
                 &p.out_w, &p.out_c, &p.k_h, &p.k_w, &p.stride_h, &p.stride_w, &p.dil_h, &p.dil_w, &p.pad_top,
                 &p.pad_left) == 15) {
        printf("%d %d %d\n", (int)ek_depthwise_plane_fits(&p), (int)ek_depthwise_rows_width(&p),
               (int)ek_depthwise_rows_in_place(&p));
    }
    return 0;
}
"""


def _random_geometries(count: int) -> list[paths.DepthwiseGeometry]:
    """Geometries around every threshold: 3x3 and 5x5 among other kernels, strides 1-3,
    paddings from -2 (a band below the image's top) to 3, maps from 1 to 60 pixels a side."""
    rng = np.random.default_rng(13)
    out = []
    for _ in range(count):
        c = int(rng.integers(1, 9))
        k_h, k_w = (int(k) for k in rng.choice([1, 3, 5, 7], 2, p=[0.1, 0.5, 0.3, 0.1]))
        if rng.random() < 0.7:
            k_w = k_h
        values = dict(
            batches=int(rng.integers(1, 3)), in_h=int(rng.integers(1, 61)), in_w=int(rng.integers(1, 61)), in_c=c,
            out_h=int(rng.integers(1, 61)), out_w=int(rng.integers(1, 61)), out_c=c if rng.random() < 0.9 else 2 * c,
            k_h=k_h, k_w=k_w, stride_h=int(rng.integers(1, 4)), stride_w=int(rng.integers(1, 4)),
            dil_h=int(rng.choice([1, 1, 1, 2])), dil_w=int(rng.choice([1, 1, 1, 2])),
            pad_top=int(rng.integers(-2, 4)), pad_left=int(rng.integers(-1, 4)),
        )  # fmt: skip
        if rng.random() < 0.5:  # stride 1 both ways, the plane path's case
            values.update(stride_h=1, stride_w=1)
        out.append(paths.DepthwiseGeometry(**values))
    return out


def test_mirror_matches_the_kernel(tmp_path):
    runtime = compiled_runtime(True)
    (tmp_path / "harness.c").write_text(HARNESS)
    exe = tmp_path / "harness"
    objects = [str(runtime / f"{name}.o") for name in ("ek_depthwise_plane_dsp", "ek_depthwise_rows_dsp")]
    subprocess.run(
        [
            "gcc",
            *CFLAGS,
            *DSP_EMULATION,
            f"-I{runtime}",
            str(tmp_path / "harness.c"),
            *objects,
            "-o",
            str(exe),
        ],
        check=True,
    )
    geometries = _random_geometries(3000)
    text = "\n".join(" ".join(str(v) for v in astuple(g)) for g in geometries)
    proc = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
    rows = [tuple(int(v) for v in line.split()) for line in proc.stdout.splitlines()]
    assert len(rows) == len(geometries)
    taken = {"plane": 0, "rows": 0}
    for g, (plane, width, in_place) in zip(geometries, rows, strict=True):
        assert (paths.plane_fits(g), paths.rows_width(g), paths.rows_in_place(g)) == (
            bool(plane),
            width,
            bool(in_place),
        ), g
        taken["plane"] += plane
        taken["rows"] += width > 0
    assert min(taken.values()) > 50  # both paths' conditions are exercised, not only refusals
    assert [f.name for f in fields(paths.DepthwiseGeometry)][-1] == "pad_left"


def _kept(model: bytes, **options) -> str:
    engine = generate_engine(load_tflite(model), dsp=True, **options)
    return engine.files[paths.HEADER]


def test_engines_keep_the_paths_their_calls_take():
    # KWS: four 25x5 stride-1 layers, all on the plane path
    kws = _kept(public_models.ds_cnn())
    assert "EK_DEPTHWISE_PLANE_PATH 1" in kws and "EK_DEPTHWISE_ROWS_PATH 0" in kws
    # ResNet-8: no depthwise layer
    resnet = _kept(public_models.resnet8())
    assert "EK_DEPTHWISE_PLANE_PATH 0" in resnet and "EK_DEPTHWISE_ROWS_PATH 0" in resnet
    # ek_conv2d_dsp's 16- and 32-value windows: ResNet-8's 1x1 16 -> 32 and 32 -> 64, none in KWS
    assert "EK_CONV_DSP_DEPTH16 1" in resnet and "EK_CONV_DSP_DEPTH32 1" in resnet
    assert "EK_CONV_DSP_DEPTH16 0" in kws and "EK_CONV_DSP_DEPTH32 0" in kws
    # a wide 5x5 layer takes the rows path; a 3x3 stride-2 one on a small map neither
    from tflite_builder import ModelBuilder

    b = ModelBuilder(np.random.default_rng(3))
    x = b.input((1, 16, 40, 8))
    y = b.depthwise(x, (5, 5))
    b.outputs = [b.depthwise(y, (3, 3), (2, 2))]
    wide = _kept(b.build(), max_recompute=None)
    assert "EK_DEPTHWISE_PLANE_PATH 0" in wide and "EK_DEPTHWISE_ROWS_PATH 1" in wide


def test_engines_leave_out_the_unaligned_gather_and_the_add_broadcast_they_never_run():
    """EK_CONV_DSP_UNALIGNED and EK_ADD_BROADCAST: ResNet-8 (depths of 16 to 64, same-shape ADDs,
    fused or not) carries neither (its firmware runs them compiled out, bit-exact in
    benchmarks/compare.py); a 3x3 over 6 channels keeps the gather's value-by-value path, a
    broadcasting ADD keeps ek_add's loop, a first layer over 3 channels needs no gather."""
    from tflite_builder import ModelBuilder

    resnet = _kept(public_models.resnet8())
    assert "EK_CONV_DSP_UNALIGNED 0" in resnet and "EK_ADD_BROADCAST 0" in resnet
    b = ModelBuilder(np.random.default_rng(5))
    x = b.input((1, 5, 5, 6))
    y = b.conv2d(x, 8, (3, 3))
    bias = b.conv2d(b.mean(y, (1, 2)), 8, (1, 1))  # [1, 1, 1, 8]
    b.outputs = [b.add(y, bias)]
    kept = _kept(b.build(), max_recompute=None)
    assert "EK_CONV_DSP_UNALIGNED 1" in kept and "EK_ADD_BROADCAST 1" in kept
    b = ModelBuilder(np.random.default_rng(5))
    x = b.input((1, 8, 8, 3))
    b.outputs = [b.conv2d(b.conv2d(x, 16, (3, 3)), 16, (3, 3))]
    first = _kept(b.build(), max_recompute=None)
    assert "EK_CONV_DSP_UNALIGNED 0" in first


def test_add_same_shape_mirror():
    """add_takes_same_shape: ek_add's shortcut conditions, and one value per chunk (out_c 1) when
    a fused kernel calls it."""
    fields = {
        "out_dims": "{1, 4, 4, 2}", "in1_strides": "{0, 8, 2, 1}", "in2_strides": "{0, 8, 2, 1}",
        "left_shift": "20", "in1_shift": "-3", "in2_shift": "0", "out_shift": "-30",
    }  # fmt: skip
    assert paths.add_takes_same_shape(fields, True) and paths.add_takes_same_shape(fields, False)
    assert not paths.add_takes_same_shape({**fields, "out_shift": "1"}, True)
    assert not paths.add_takes_same_shape({**fields, "in2_strides": "{0, 0, 0, 1}"}, True)
    single = {
        **fields,
        "out_dims": "{1, 4, 4, 1}",
        "in1_strides": "{0, 4, 1, 0}",
        "in2_strides": "{0, 4, 1, 0}",
    }
    assert paths.add_takes_same_shape(single, True) and not paths.add_takes_same_shape(single, False)
