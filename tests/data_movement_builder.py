"""Builder helpers for the data-movement ops (SQUEEZE ... SPLIT_V) on a ``tflite_builder.ModelBuilder``.

Output shapes come from numpy indexing of a stand-in array (Python's slice semantics clamp as
TensorFlow's do), never from mcu-effnet's own code. Outputs keep the input's quantization, as
TensorFlow's converter writes these ops.
"""

from __future__ import annotations

import numpy as np
from tflite_builder import ModelBuilder


def _like(b: ModelBuilder, x: int, name: str, shape: tuple[int, ...]) -> int:
    scale, zp = b.qparams(x)
    return b.activation(name, tuple(int(d) for d in shape), scale, zp)


def _const(b: ModelBuilder, name: str, values, dtype: str = "int32") -> int:
    values = np.asarray(values, dtype=dtype).reshape(-1)
    return b.add_tensor(f"{name}_{len(b.tensors)}", (values.size,), dtype, data=values)


def squeeze(b: ModelBuilder, x: int, dims: list[int] | None = None) -> int:
    shape = b.info[x].shape
    out = np.squeeze(np.zeros(shape), axis=tuple(dims) if dims else None).shape
    y = _like(b, x, "squeeze", out)
    b.add_op("SQUEEZE", [x], [y], squeeze_dims=list(dims or []))
    return y


def expand_dims(b: ModelBuilder, x: int, axis: int) -> int:
    y = _like(b, x, "expand", np.expand_dims(np.zeros(b.info[x].shape), axis).shape)
    b.add_op("EXPAND_DIMS", [x, _const(b, "axis", [axis])], [y])
    return y


def transpose(b: ModelBuilder, x: int, perm: list[int]) -> int:
    y = _like(b, x, "transpose", np.transpose(np.zeros(b.info[x].shape), perm).shape)
    b.add_op("TRANSPOSE", [x, _const(b, "perm", perm)], [y])
    return y


def slice_(b: ModelBuilder, x: int, begin: list[int], size: list[int], dtype: str = "int32") -> int:
    shape = b.info[x].shape
    out = tuple(d - s0 if n == -1 else n for d, s0, n in zip(shape, begin, size, strict=True))
    y = _like(b, x, "slice", out)
    b.add_op("SLICE", [x, _const(b, "begin", begin, dtype), _const(b, "size", size, dtype)], [y])
    return y


def strided_index(
    shape: tuple[int, ...], begin, end, strides, begin_mask=0, end_mask=0, shrink_axis_mask=0
) -> tuple:
    """The numpy index STRIDED_SLICE means (masks as None, shrunk axes as integers)."""
    index: list = []
    for k, d in enumerate(shape):
        if shrink_axis_mask >> k & 1:
            index.append(begin[k] + d if begin[k] < 0 else begin[k])
            continue
        lo = None if begin_mask >> k & 1 else begin[k]
        hi = None if end_mask >> k & 1 else end[k]
        index.append(slice(lo, hi, strides[k]))
    return tuple(index)


def strided_slice(
    b: ModelBuilder, x: int, begin, end, strides, begin_mask=0, end_mask=0, shrink_axis_mask=0
) -> int:
    shape = b.info[x].shape
    index = strided_index(shape, begin, end, strides, begin_mask, end_mask, shrink_axis_mask)
    y = _like(b, x, "strided_slice", np.zeros(shape)[index].shape)
    ins = [x, _const(b, "begin", begin), _const(b, "end", end), _const(b, "strides", strides)]
    b.add_op(
        "STRIDED_SLICE",
        ins,
        [y],
        begin_mask=begin_mask,
        end_mask=end_mask,
        shrink_axis_mask=shrink_axis_mask,
    )
    return y


def pack(b: ModelBuilder, xs: list[int], axis: int) -> int:
    shape = b.info[xs[0]].shape
    y = _like(b, xs[0], "pack", np.stack([np.zeros(shape)] * len(xs), axis=axis).shape)
    b.add_op("PACK", list(xs), [y], values_count=len(xs), axis=axis)
    return y


def unpack(b: ModelBuilder, x: int, axis: int) -> list[int]:
    shape = b.info[x].shape
    out = np.take(np.zeros(shape), 0, axis=axis).shape
    ys = [_like(b, x, "unpack", out) for _ in range(shape[axis])]
    b.add_op("UNPACK", [x], ys, num=len(ys), axis=axis)
    return ys


def split(b: ModelBuilder, x: int, axis: int, parts: int) -> list[int]:
    pieces = np.split(np.zeros(b.info[x].shape), parts, axis=axis)
    axis_index = _const(b, "axis", [axis])
    ys = [_like(b, x, "split", p.shape) for p in pieces]
    b.add_op("SPLIT", [axis_index, x], ys, num_splits=parts)
    return ys


def split_v(b: ModelBuilder, x: int, sizes: list[int], axis: int) -> list[int]:
    shape = b.info[x].shape
    known = [s for s in sizes if s >= 0]
    resolved = [s if s >= 0 else shape[axis] - sum(known) for s in sizes]
    pieces = np.split(np.zeros(shape), np.cumsum(resolved)[:-1], axis=axis)
    ys = [_like(b, x, "split_v", p.shape) for p in pieces]
    b.add_op("SPLIT_V", [x, _const(b, "sizes", sizes), _const(b, "axis", [axis])], ys, num_splits=len(sizes))
    return ys


def space_to_depth(b: ModelBuilder, x: int, block: int) -> int:
    n, h, w, c = b.info[x].shape
    y = _like(b, x, "space_to_depth", (n, h // block, w // block, c * block * block))
    b.add_op("SPACE_TO_DEPTH", [x], [y], block_size=block)
    return y


def depth_to_space(b: ModelBuilder, x: int, block: int) -> int:
    n, h, w, c = b.info[x].shape
    y = _like(b, x, "depth_to_space", (n, h * block, w * block, c // (block * block)))
    b.add_op("DEPTH_TO_SPACE", [x], [y], block_size=block)
    return y


def resize(
    b: ModelBuilder,
    x: int,
    size: tuple[int, int],
    bilinear: bool,
    align_corners=False,
    half_pixel_centers=False,
) -> int:
    n, _, _, c = b.info[x].shape
    kind = "RESIZE_BILINEAR" if bilinear else "RESIZE_NEAREST_NEIGHBOR"
    y = _like(b, x, kind.lower(), (n, *size, c))
    flags = dict(align_corners=align_corners, half_pixel_centers=half_pixel_centers)
    b.add_op(kind, [x, _const(b, "size", list(size))], [y], **flags)
    return y


def pytorch_mobilenet_v2(rng: np.random.Generator, size: int = 16, classes: int = 10) -> bytes:
    """A MobileNetV2-like network as PyTorch exports it: NCHW input, TRANSPOSE to NHWC first,
    stem conv, three inverted-residual blocks (expand 1x1 + ReLU6, depthwise 3x3 + ReLU6,
    project 1x1, residual ADD where the shape allows), a 1x1 head, then TRANSPOSE back to NCHW
    and RESHAPE (PyTorch's flatten) before the classifier."""
    b = ModelBuilder(rng)
    x = b.input((1, 3, size, size), scale=1 / 255, zero_point=-128)
    h = transpose(b, x, [0, 2, 3, 1])
    h = b.conv2d(h, 8, (3, 3), (2, 2), "SAME", activation="RELU6")
    for out_c, stride in ((8, 1), (12, 2), (12, 1)):
        c = b.info[h].shape[-1]
        e = b.conv2d(h, 4 * c, (1, 1), activation="RELU6")
        d = b.depthwise(e, (3, 3), (stride, stride), activation="RELU6")
        p = b.conv2d(d, out_c, (1, 1))
        h = b.add(h, p) if stride == 1 and out_c == c else p
    h = b.conv2d(h, 16, (1, 1), activation="RELU6")
    n, hh, ww, c = b.info[h].shape
    nchw = transpose(b, h, [0, 3, 1, 2])
    flat = b.reshape(nchw, (1, c * hh * ww))
    b.outputs = [b.fully_connected(flat, classes)]
    return b.build()
