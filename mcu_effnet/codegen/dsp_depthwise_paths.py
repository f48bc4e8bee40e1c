"""Which run-time paths of the DSP depthwise kernel an engine carries (``ek_dsp_paths.h``), and
whether ``ek_conv2d_dsp`` keeps its path for 1 to 3 output channels past whole groups of four
(``EK_CONV_DSP_TAIL``: compiled in when some ``ek_conv_dsp_params`` has such a channel count; the
fully connected kernel ``ek_fully_connected_wide_dsp`` has its own struct and pairs).

``ek_depthwise_conv2d_dsp`` chooses by the call's geometry at run time among the whole-plane path
(``ek_depthwise_plane_dsp.c``, small 3x3 stride-1 maps, some stride-2 ones), the rows path
(``ek_depthwise_rows_dsp.c``, wide 3x3 / 5x5 maps) and the four-channel kernel, which every
engine keeps. The generator mirrors that choice for every call of the model and compiles out the
optional paths none of them takes (about 2.6 KB of code for the rows path, 2 KB for the plane
path), so a model without wide depthwise maps does not carry the rows path. A call whose
geometry is only known at run time (a band of a tiled segment, a row of a fused expansion)
keeps both. Getting the mirror wrong costs speed, never exactness: a compiled-out path's calls
fall through to the next path. The tail flag is the exception, and so is conservative: any
``ek_conv_dsp_params`` with such a channel count keeps it (the first-layer kernel's tail too).

Two more flags leave out code the engine's calls never run, exact mirrors as the tail flag is:
``EK_CONV_DSP_UNALIGNED`` (``ek_conv2d_dsp``'s gather of an in_c that is no multiple of 4, about
400 bytes: kept when some ``ek_conv_dsp_params`` with such an in_c goes anywhere but the
first-layer kernel) and ``EK_ADD_BROADCAST`` (``ek_add``'s broadcasting loop, about 650 bytes:
kept when some ADD's parameters miss its same-shape path, ``add_takes_same_shape``).
``EK_CONV_DSP_DEPTH16`` and ``EK_CONV_DSP_DEPTH32`` (``ek_conv2d_dsp``'s ``run_groups16`` and
``run_groups32``, windows of exactly 16 or 32 values, a 1x1 over 16 or 32 channels: about 320 and
480 bytes) are kept when some ``ek_conv_dsp_params`` with such a window goes anywhere but the
first-layer kernel; without them those windows run the general loop, as exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

# ek_conv_dsp.h
PLANE_MAX_HALFWORDS = 896
PLANE_ACC = 256
PLANE_MIN_PIXELS = 16
ROWS_MAX_HALFWORDS = 1152
ROWS_MIN_W3 = 20
ROWS_MIN_W5 = 14
ROWS_MIN_H = 2

HEADER = "ek_dsp_paths.h"
STRUCT = "ek_depthwise_dsp_params"
CONV_STRUCT = "ek_conv_dsp_params"  # ek_conv2d_dsp's tail path (1 to 3 channels past whole groups of 4)
# ek_conv2d_dsp's run_groups16 and run_groups32: windows of four and eight steps
FIXED_STEPS = {4: "conv_depth16", 8: "conv_depth32"}
OPTIONAL_PATHS = {
    "plane",
    "rows",
    "conv_tail",
    "conv_unaligned",
    "conv_depth16",
    "conv_depth32",
    "add_broadcast",
}
FIRST_KERNEL = "ek_conv2d_first_dsp"  # its own staging of in_c 1 to 3: no gather
BINARY_STRUCT = "ek_binary_params"  # ek_add's broadcasting path
WHOLE_KERNEL = "ek_depthwise_conv2d_dsp"
IN_PLACE_KERNEL = "ek_depthwise_conv2d_in_place_dsp"


@dataclass(frozen=True)
class DepthwiseGeometry:
    """The geometry fields of one ``ek_depthwise_dsp_params``."""

    batches: int
    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_left: int


def plane_fits(g: DepthwiseGeometry) -> bool:
    """ek_depthwise_plane_fits: stride 1, or stride 2 where four channels' planes fit with their
    rows 16 or 32 halfwords apart (its only loops)."""
    if (
        (g.k_h, g.k_w, g.dil_h, g.dil_w) != (3, 3, 1, 1)
        or g.stride_h != g.stride_w
        or g.stride_h not in (1, 2)
    ):
        return False
    if g.in_c != g.out_c or g.pad_left < 0 or g.out_h * g.out_w < PLANE_MIN_PIXELS:
        return False
    stride = g.stride_h
    transposed = g.out_h > g.out_w and g.pad_top >= 0
    out_h, out_w = (g.out_w, g.out_h) if transposed else (g.out_h, g.out_w)
    in_w, pad_l = (g.in_h, g.pad_top) if transposed else (g.in_w, g.pad_left)
    pairs = (out_w + 1) // 2
    width = max(2 * stride * pairs + 2, pad_l + in_w)
    width += width & 1
    rows = (out_h - 1) * stride + 3
    if rows * width > PLANE_MAX_HALFWORDS:
        return False
    group = 4 if g.in_c >= 4 and 4 * rows * width <= PLANE_MAX_HALFWORDS else 1
    pitch = 16 if width <= 16 else (32 if width <= 32 else 0)
    if stride == 2 and not (pitch and group == 4 and 4 * rows * pitch <= PLANE_MAX_HALFWORDS):
        return False
    return (PLANE_ACC - (out_w & 1)) // out_w >= 1


def rows_width(g: DepthwiseGeometry) -> int:
    """ek_depthwise_rows_width."""
    k = g.k_w
    if g.k_h != k or k not in (3, 5) or g.dil_h != 1 or g.dil_w != 1 or g.stride_h < 1:
        return 0
    if g.stride_w not in (1, 2) or g.pad_left < 0 or g.in_c != g.out_c:
        return 0
    if g.out_h < ROWS_MIN_H or g.out_w < (ROWS_MIN_W5 if k == 5 else ROWS_MIN_W3):
        return 0
    pixels = g.out_w + (g.out_w & 1)
    width = max((pixels - 1) * g.stride_w + k + 1, g.pad_left + g.in_w)
    width += width & 1
    return width if k * width <= ROWS_MAX_HALFWORDS else 0


def rows_in_place(g: DepthwiseGeometry) -> bool:
    """ek_depthwise_rows_in_place."""
    return (
        g.batches == 1 and g.out_w <= g.in_w and 0 <= g.pad_top < g.k_h and 1 <= g.stride_h <= g.k_h
    )  # fmt: skip


def path(g: DepthwiseGeometry, in_place: bool) -> str:
    """The path a whole call takes: "plane", "rows" or "four" (ek_depthwise_dsp.c)."""
    if in_place:
        if g.batches == 1 and g.out_h * g.out_w <= g.in_h * g.in_w and plane_fits(g):
            return "plane"
        return "rows" if rows_width(g) > 0 and rows_in_place(g) else "four"
    if plane_fits(g):
        return "plane"
    return "rows" if rows_width(g) > 0 else "four"


def _geometry(struct_fields: list[tuple[str, str]]) -> DepthwiseGeometry:
    values = dict(struct_fields)
    return DepthwiseGeometry(**{f.name: int(values[f.name]) for f in fields(DepthwiseGeometry)})


def _ints(field: str) -> list[int]:
    """The integers of a struct field as the builder wrote it (``-3`` or ``{1, 32, 32, 16}``)."""
    return [int(v) for v in re.findall(r"-?\d+", field)]


def _same_shape(dims: list[int], s1: list[int], s2: list[int]) -> bool:
    """ek_elementwise.c same_shape: both inputs walk the output's elements in order."""
    step = 1
    for k in (3, 2, 1, 0):
        expected = step if dims[k] > 1 else 0
        if s1[k] != expected or s2[k] != expected:
            return False
        step *= dims[k]
    return True


def add_takes_same_shape(fields: dict[str, str], whole_calls_only: bool) -> bool:
    """Whether every call of ek_add with this ADD's ek_binary_params takes add_same_shape
    (ek_elementwise.c ek_add: left shift 20, every shift in [-30, 0], inputs of the output's
    shape). ``whole_calls_only``: the struct goes to ``ek_add`` itself alone; otherwise a fused
    kernel (``ek_conv_add_chunks``) calls it on runs of n * out_c values, one value when out_c is 1."""
    shifts = [_ints(fields[f])[0] for f in ("in1_shift", "in2_shift", "out_shift")]
    dims = _ints(fields["out_dims"])
    if _ints(fields["left_shift"])[0] != 20 or not all(-30 <= s <= 0 for s in shifts):
        return False
    if not _same_shape(dims, _ints(fields["in1_strides"]), _ints(fields["in2_strides"])):
        return False
    return whole_calls_only or dims[3] > 1


def conv_steps(f: dict[str, str]) -> int:
    """``ek_conv2d_dsp``'s steps of four window values: k_h rows of k_w * in_c, each padded to 4."""
    return int(f["k_h"]) * ((int(f["k_w"]) * int(f["in_c"]) + 3) // 4)


def paths_used(structs: list[dict], model_c: str) -> set[str]:
    """The optional paths (OPTIONAL_PATHS) some call of the engine may take: ``structs`` the
    builder's parameter structs, ``model_c`` the generated calls."""
    used: set[str] = set()
    for s in structs:
        name = re.escape(s["name"])
        if s["ctype"] == BINARY_STRUCT and s["kind"] == "ADD":
            whole = len(re.findall(rf"\bek_add\(&{name}\b", model_c))
            if not add_takes_same_shape(dict(s["fields"]), whole == len(re.findall(rf"&{name}\b", model_c))):
                used.add("add_broadcast")
        if s["ctype"] == CONV_STRUCT and int(dict(s["fields"])["in_c"]) % 4:
            # the first-layer kernel has its own staging; any other use may gather
            first = len(re.findall(rf"\b{FIRST_KERNEL}\w*\(&{name}\b", model_c))
            if len(re.findall(rf"&{name}\b", model_c)) > first:
                used.add("conv_unaligned")
        if s["ctype"] == CONV_STRUCT and conv_steps(dict(s["fields"])) in FIXED_STEPS:
            first = len(re.findall(rf"\b{FIRST_KERNEL}\w*\(&{name}\b", model_c))
            if len(re.findall(rf"&{name}\b", model_c)) > first:
                used.add(FIXED_STEPS[conv_steps(dict(s["fields"]))])
        if s["ctype"] == CONV_STRUCT and int(dict(s["fields"])["out_c"]) % 4:
            used.add("conv_tail")  # every view of a convolution keeps its channels
        if s["ctype"] != STRUCT:
            continue
        name = re.escape(s["name"])
        mentions = len(re.findall(rf"&{name}\b", model_c))
        whole = len(re.findall(rf"\b{WHOLE_KERNEL}\(&{name}\b", model_c))
        in_place = len(re.findall(rf"\b{IN_PLACE_KERNEL}\(&{name}\b", model_c))
        if mentions > whole + in_place:  # bands, fused rows: geometry decided at run time
            used |= {"plane", "rows"}
            continue
        g = _geometry(s["fields"])
        used |= {path(g, False)} if whole else set()
        used |= {path(g, True)} if in_place else set()
    return used & OPTIONAL_PATHS


def paths_header(used: set[str]) -> str:
    lines = [
        "/* Generated: the depthwise DSP kernel's optional run-time paths this engine's calls take",
        " * (mcu_effnet.codegen.dsp_depthwise_paths); the others are compiled out. */",
        "#ifndef EK_DSP_PATHS_H",
        "#define EK_DSP_PATHS_H",
        f"#define EK_DEPTHWISE_PLANE_PATH {int('plane' in used)}",
        f"#define EK_DEPTHWISE_ROWS_PATH {int('rows' in used)}",
        f"#define EK_CONV_DSP_TAIL {int('conv_tail' in used)}",
        f"#define EK_CONV_DSP_UNALIGNED {int('conv_unaligned' in used)}",
        f"#define EK_CONV_DSP_DEPTH16 {int('conv_depth16' in used)}",
        f"#define EK_CONV_DSP_DEPTH32 {int('conv_depth32' in used)}",
        f"#define EK_ADD_BROADCAST {int('add_broadcast' in used)}",
        "#endif",
        "",
    ]
    return "\n".join(lines)
