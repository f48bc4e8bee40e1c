"""Getting user data into a model's int8 input, and class names out of a model.

Pixels become int8 through the input tensor's own quantization,
``q = clamp(round(pixel / 255 / scale) + zero_point)``, which is ``pixel - 128`` for the
usual scale 1/255 and zero point -128. Batches carry a leading axis that replaces the
input tensor's first dimension (1 in the file).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mcu_effnet.errors import UserError
from mcu_effnet.graph.ir import Graph, Tensor
from mcu_effnet.oracle import float_codes

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
LABELS_METADATA = "mcu_effnet_labels"


def sample_shape(tensor: Tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.shape[1:])


def describe(shape: tuple[int, ...], dtype: str) -> str:
    return f"({', '.join(str(d) for d in shape)}) {dtype}"


def fit_batch(x: np.ndarray, graph: Graph, source: str, k: int = 0) -> np.ndarray:
    """A batch for the model's input ``k``: accepts a batch (N, ...) or a single sample without batch axis."""
    tensor = graph.input_tensors[k]
    per_sample = sample_shape(tensor)
    expected = (
        f"(N, {', '.join(str(d) for d in per_sample)}) {tensor.dtype}"
        if per_sample
        else f"(N,) {tensor.dtype}"
    )
    if x.dtype != np.dtype(tensor.dtype):
        raise UserError(
            f"{source}: input {describe(x.shape, str(x.dtype))} does not fit the model input{_which(graph, k)} {expected}"
        )
    if tuple(x.shape[1:]) == per_sample and x.ndim == len(per_sample) + 1:
        return np.ascontiguousarray(x)
    if tuple(x.shape) == per_sample:
        return np.ascontiguousarray(x[None])
    raise UserError(
        f"{source}: input {describe(x.shape, str(x.dtype))} does not fit the model input{_which(graph, k)} {expected}"
    )


def _which(graph: Graph, k: int) -> str:
    return f" {k} ('{graph.input_tensors[k].name}')" if len(graph.inputs) > 1 else ""


def image_geometry(graph: Graph) -> tuple[int, int, int]:
    """(height, width, channels) of an NHWC image input; a UserError for other inputs."""
    tensor = graph.input_tensors[0]
    if len(tensor.shape) != 4 or tensor.shape[3] not in (1, 3):
        raise UserError(
            f"the model input {describe(tuple(tensor.shape), tensor.dtype)} is not an NHWC image with 1 or 3 channels"
        )
    if tensor.dtype not in ("int8", "int16"):
        # A float input's pixel normalisation (0..1, -1..1, mean/std) is not recorded in the model.
        raise UserError(
            f"the model input is {tensor.dtype} and its pixel scaling is not recorded in the model; "
            "give --input X.npy with the values the model expects"
        )
    return int(tensor.shape[1]), int(tensor.shape[2]), int(tensor.shape[3])


def quantize_pixels(pixels: np.ndarray, tensor: Tensor) -> np.ndarray:
    """Pixel values in [0, 255] (any real dtype) to the input tensor's int8 grid."""
    scale = float(tensor.scale[0]) if tensor.scale.size else 1.0 / 255.0
    zero_point = int(tensor.zero_point[0]) if tensor.zero_point.size else -128
    return float_codes(np.asarray(pixels, dtype=np.float64) / 255.0, scale, zero_point, tensor.dtype)


def dequantize_to_unit(x: np.ndarray, tensor: Tensor) -> np.ndarray:
    """The inverse: int8 input back to pixel / 255, as float32 (what the ONNX export takes)."""
    return ((x.astype(np.float64) - int(tensor.zero_point[0])) * float(tensor.scale[0])).astype(np.float32)


def _open_image(path: Path, height: int, width: int, channels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB" if channels == 3 else "L")
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the image ({exc})") from None
    return pixels.reshape(height, width, channels)


def load_image(path: str | os.PathLike, graph: Graph) -> np.ndarray:
    """One image file as a batch of one, resized to the model's input resolution."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such image file")
    height, width, channels = image_geometry(graph)
    return quantize_pixels(_open_image(path, height, width, channels)[None], graph.input_tensors[0])


def load_image_folder(path: Path, graph: Graph, limit: int) -> np.ndarray:
    """Up to ``limit`` images from a folder (searched recursively, in sorted order)."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{path}: no image files in this folder")
    height, width, channels = image_geometry(graph)
    pixels = np.stack([_open_image(p, height, width, channels) for p in files[:limit]])
    return quantize_pixels(pixels, graph.input_tensors[0])


def _resize_pixels(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    out = []
    for image in pixels:
        mode_image = Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image)
        resized = np.asarray(mode_image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
        out.append(resized.reshape(height, width, image.shape[-1]))
    return np.stack(out)


def load_npz(path: Path, graph: Graph, limit: int) -> np.ndarray:
    """``x_test`` of an .npz: int8 taken as is; uint8 pixels, or floats in [0, 1], quantized and resized."""
    try:
        with np.load(path) as archive:
            if "x_test" not in archive:
                raise UserError(f"{path}: no x_test array (has {', '.join(archive.files) or 'nothing'})")
            x = archive["x_test"][:limit]
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the .npz ({exc})") from None
    tensor = graph.input_tensors[0]
    if x.dtype == np.dtype(tensor.dtype):
        return fit_batch(x, graph, str(path))
    if x.dtype.kind not in "uif":
        raise UserError(f"{path}: x_test has dtype {x.dtype}, expected int8 inputs, uint8 pixels or floats")
    height, width, channels = image_geometry(graph)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim == 4 and x.shape[1] == channels and x.shape[-1] != channels:
        x = x.transpose(0, 2, 3, 1)  # NCHW -> NHWC
    if x.ndim != 4 or x.shape[-1] != channels:
        raise UserError(
            f"{path}: x_test {describe(x.shape, str(x.dtype))} does not fit the model input "
            f"(N, {height}, {width}, {channels})"
        )
    if x.dtype.kind == "f" and float(np.max(x, initial=0.0)) <= 1.0:
        x = x * 255.0
    pixels = np.clip(np.asarray(x, dtype=np.float64), 0, 255)
    if x.shape[1:3] != (height, width):
        pixels = _resize_pixels(np.rint(pixels).astype(np.uint8), height, width)
    return quantize_pixels(pixels, tensor)


def load_data(path: str | os.PathLike, graph: Graph, limit: int) -> np.ndarray:
    """``--data``: a folder of images, or an .npz holding x_test."""
    path = Path(path)
    if path.is_dir():
        return load_image_folder(path, graph, limit)
    if path.is_file() and path.suffix == ".npz":
        return load_npz(path, graph, limit)
    raise UserError(f"{path}: expected a folder of images or an .npz file with x_test")


def class_names(model_path: str | os.PathLike | None, graph: Graph) -> list[str] | None:
    """From ``labels.txt`` beside the model, else the model's ``mcu_effnet_labels`` metadata."""
    if model_path is not None:
        beside = Path(model_path).with_name("labels.txt")
        if beside.is_file():
            return [line.strip() for line in beside.read_text(encoding="utf-8").splitlines() if line.strip()]
    raw = getattr(graph, "metadata", {}).get(LABELS_METADATA)
    if raw:
        text = bytes(raw).decode("utf-8", errors="replace")
        return [line.strip() for line in text.splitlines() if line.strip()]
    return None
