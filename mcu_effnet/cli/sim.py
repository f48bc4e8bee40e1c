"""``mcu-effnet sim MODEL.tflite``: run the host int8 simulator on inputs, an image, or dump every tensor."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from mcu_effnet.atomic import staged
from mcu_effnet.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="run a .tflite model in the host int8 simulator (bit-exact with TFLite Micro)",
        description="Run an int8 .tflite model in the host simulator. Give --input X.npy (int8, leading "
        "batch axis, or one sample without it) or --image PATH.",
    )
    parser.add_argument("model", metavar="MODEL.tflite")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input",
        metavar="X.npy",
        action="append",
        help="int8 (int16 for a 16x8 model, float32 where the model quantizes it) inputs with a leading "
        "batch axis; once per model input, in the model's order",
    )
    source.add_argument(
        "--image", metavar="PATH", help="an image: resized to the input resolution; prints the top 5"
    )
    parser.add_argument(
        "--output",
        metavar="Y.npy",
        action="append",
        help="write the outputs here (one row per sample): once per model output, or once for all "
        "(further outputs beside it as Y_1.npy, Y_2.npy, ...)",
    )
    parser.add_argument(
        "--dump", metavar="DIR", help="write every intermediate tensor to DIR/<index>_<name>.npy"
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from mcu_effnet.graph import load_tflite
    from mcu_effnet.sim import inputs as model_inputs
    from mcu_effnet.sim import run

    graph = load_tflite(args.model)
    if args.image:
        x = model_inputs.load_image(args.image, graph)
    else:
        x = _load_inputs(args.input, graph)
    if args.output and len(args.output) not in (1, len(graph.outputs)):
        raise UserError(
            f"--output given {len(args.output)} times; the model has {len(graph.outputs)} outputs "
            "(give it once, or once per output)"
        )

    if args.dump:
        tensors = run(graph, x, capture=True)
        outputs = [tensors[i] for i in graph.outputs]
        _write_dump(Path(args.dump), graph, tensors)
    else:
        result = run(graph, x)
        outputs = result if isinstance(result, list) else [result]

    if args.output:
        _write_outputs([Path(p) for p in args.output], outputs)
    if args.image:
        _print_top5(outputs[0][0], graph, args.model)
    else:
        _print_summary(x, outputs, args)
    return 0


def _load_npy(path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable .npy array ({' '.join(str(exc).split())})") from None


def _load_inputs(paths: list[str], graph) -> np.ndarray | list[np.ndarray]:
    """One X.npy per model input, each fitted to its input, all with the same batch."""
    from mcu_effnet.sim import inputs as model_inputs

    if len(paths) != len(graph.inputs):
        raise UserError(f"--input given {len(paths)} times; the model has {len(graph.inputs)} inputs")
    xs = [model_inputs.fit_batch(_load_npy(p), graph, p, k) for k, p in enumerate(paths)]
    if len({x.shape[0] for x in xs}) > 1:
        raise UserError(
            f"--input: the files hold {', '.join(str(x.shape[0]) for x in xs)} samples; every input needs as many"
        )
    return xs[0] if len(xs) == 1 else xs


def _write_outputs(paths: list[Path], outputs: list[np.ndarray]) -> None:
    """One path per output; or one path: the first output to Y.npy, further outputs beside it as
    Y_1.npy, Y_2.npy, ..."""
    if len(paths) == 1:
        path = paths[0]
        paths = [path] + [
            path.with_name(f"{path.stem}_{k}{path.suffix or '.npy'}") for k in range(1, len(outputs))
        ]
    for path in paths:
        if path.parent and not path.parent.exists():
            raise UserError(f"{path}: the folder {path.parent} does not exist")
    for path, y in zip(paths, outputs, strict=True):
        try:
            np.save(path, y)
        except OSError as exc:
            raise UserError(f"{path}: cannot write the outputs ({exc.strerror or exc})") from None


def sanitise(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned[:80] or "tensor"


def _write_dump(directory: Path, graph, tensors: dict[int, np.ndarray]) -> None:
    """Fills a temporary sibling folder, then moves it into place: never a half-written dump."""
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory}: exists and is not a folder")
    if directory.is_dir() and any(directory.iterdir()) and not (directory / "index.json").is_file():
        raise UserError(
            f"{directory}: folder is not empty and holds no previous dump (index.json); not touching it"
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    producers = {t: op for op in graph.ops for t in op.outputs}
    entries = []
    with staged(directory, folder=True) as staging:
        for index in sorted(tensors):
            tensor = graph.tensor(index)
            array = tensors[index]
            filename = f"{index}_{sanitise(tensor.name)}.npy"
            np.save(staging / filename, array)
            op = producers.get(index)
            entries.append(
                {
                    "index": index,
                    "name": tensor.name,
                    "file": filename,
                    "shape": list(array.shape),
                    "dtype": str(array.dtype),
                    "scale": [float(s) for s in tensor.scale],
                    "zero_point": [int(z) for z in tensor.zero_point],
                    "producer": None if op is None else {"op": op.index, "kind": op.kind},
                    "role": "input"
                    if index in graph.inputs
                    else "output"
                    if index in graph.outputs
                    else "intermediate",
                }
            )
        (staging / "index.json").write_text(
            json.dumps({"tensors": entries}, indent=1) + "\n", encoding="utf-8"
        )
    print(f"wrote {len(entries)} tensors to {directory}/ (index.json lists them)")


def _print_top5(scores: np.ndarray, graph, model_path: str) -> None:
    from mcu_effnet.sim.inputs import class_names

    out = graph.output_tensors[0]
    flat = scores.reshape(-1).astype(np.int64)
    scale = float(out.scale[0]) if out.scale.size else 1.0
    zero_point = int(out.zero_point[0]) if out.zero_point.size else 0
    names = class_names(model_path, graph)
    order = np.argsort(-flat, kind="stable")[:5]
    for rank, k in enumerate(order, start=1):
        label = names[k] if names is not None and k < len(names) else f"class {k}"
        print(
            f"{rank}. {label:<30} {(flat[k] - zero_point) * scale:8.4f}  (index {k}, {out.dtype} {flat[k]})"
        )


def _print_summary(
    x: np.ndarray | list[np.ndarray], outputs: list[np.ndarray], args: argparse.Namespace
) -> None:
    shapes = ", ".join(f"{tuple(o.shape)} {o.dtype}" for o in outputs)
    where = f" -> {', '.join(args.output)}" if args.output else ""
    print(f"{(x[0] if isinstance(x, list) else x).shape[0]} samples: output {shapes}{where}")
    if not args.output:
        first = outputs[0].reshape(outputs[0].shape[0], -1)
        for i in range(min(first.shape[0], 5)):
            print(
                f"sample {i}: argmax {int(first[i].argmax())}, {first.dtype} {np.array2string(first[i][:10])}"
            )
