"""ImageFolder layout: ``ROOT/train/<class>/*`` and ``ROOT/val/<class>/*`` (or ``test/``).

Any file Pillow can identify is an image. Only headers are read while scanning; pixels are decoded
lazily, one image per ``load`` call, in the DataLoader workers.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from mcu_effnet.data.sources import DataBundle, RawImage, Warn, warn_stderr
from mcu_effnet.errors import UserError

VAL_SPLIT_NAMES = ("val", "test")


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _readable(path: Path) -> str | None:
    """None if Pillow can identify the file as an image, else the reason it cannot."""
    try:
        with Image.open(path) as image:
            image.size  # noqa: B018 (the header is parsed by open; size proves it has dimensions)
        return None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class FolderSource:
    """One split of an ImageFolder tree: file paths and labels, images decoded on demand."""

    def __init__(self, paths: list[Path], labels: list[int]) -> None:
        self.paths = paths
        self.labels = labels

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int, size_hint: int) -> RawImage:
        image = self._decode(self.paths[index], size_hint)
        if image is not None:
            return image
        # A file whose header was fine at scan time can still fail to decode (a truncated JPEG).
        # One bad file should not end a long run: it was named in a warning; use the next images
        # of the same class in its place (so the label stays right).
        label = self.labels[index]
        tried = 0
        for j in range(index + 1, len(self.paths)):
            if self.labels[j] != label:
                continue
            image = self._decode(self.paths[j], size_hint)
            if image is not None:
                return image
            tried += 1
            if tried == 20:
                break
        raise UserError(f"{self.paths[index]}: cannot decode this image nor the next ones of its class")

    @staticmethod
    def _decode(path: Path, size_hint: int) -> Image.Image | None:
        try:
            with Image.open(path) as image:
                # JPEG decodes at 1/2, 1/4 or 1/8 scale: no need to decode 4000 px for a 96 px model.
                image.draft("RGB", (size_hint, size_hint))
                return image.convert("RGB")
        except (OSError, ValueError) as exc:
            warn_stderr(f"{path}: cannot decode image ({exc}); using another image of its class")
            return None


def is_image_folder(root: Path) -> bool:
    return (root / "train").is_dir() and any((root / name).is_dir() for name in VAL_SPLIT_NAMES)


def _class_dirs(split_dir: Path) -> list[Path]:
    return sorted((p for p in split_dir.iterdir() if p.is_dir() and _visible(p)), key=lambda p: p.name)


def _scan_split(split_dir: Path, class_names: list[str], warn: Warn) -> FolderSource:
    paths: list[Path] = []
    labels: list[int] = []
    unreadable: list[tuple[Path, str]] = []
    for label, name in enumerate(class_names):
        class_dir = split_dir / name
        found = 0
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and _visible(p))
        for path in files:
            reason = _readable(path)
            if reason is not None:
                unreadable.append((path, reason))
                continue
            paths.append(path)
            labels.append(label)
            found += 1
        if found == 0:
            detail = f" ({len(files)} files, none readable)" if files else " (empty)"
            raise UserError(f"{class_dir}: class folder has no readable images{detail}")
    if unreadable:
        first, reason = unreadable[0]
        warn(
            f"skipped {len(unreadable)} unreadable image{'s' if len(unreadable) != 1 else ''} "
            f"in {split_dir} (first: {first}: {reason})"
        )
    return FolderSource(paths, labels)


def open_image_folder(root: Path, warn: Warn = warn_stderr) -> DataBundle:
    """Scans ``root/train`` and ``root/val`` (or ``root/test``); both must name the same classes."""
    train_dir = root / "train"
    val_name = next(name for name in VAL_SPLIT_NAMES if (root / name).is_dir())
    val_dir = root / val_name
    train_classes = [p.name for p in _class_dirs(train_dir)]
    val_classes = [p.name for p in _class_dirs(val_dir)]
    if not train_classes:
        raise UserError(f"{train_dir}: no class folders (expected one subfolder of images per class)")
    if not val_classes:
        raise UserError(f"{val_dir}: no class folders (expected one subfolder of images per class)")
    if train_classes != val_classes:
        only_train = sorted(set(train_classes) - set(val_classes))
        only_val = sorted(set(val_classes) - set(train_classes))
        parts = []
        if only_train:
            parts.append(f"only in train/: {', '.join(only_train)}")
        if only_val:
            parts.append(f"only in {val_name}/: {', '.join(only_val)}")
        raise UserError(f"{root}: class folders differ between train/ and {val_name}/ ({'; '.join(parts)})")
    train = _scan_split(train_dir, train_classes, warn)
    val = _scan_split(val_dir, train_classes, warn)
    return DataBundle(
        name=root.resolve().name,
        kind="imagefolder",
        class_names=train_classes,
        train=train,
        val=val,
        val_split_name=val_name,
    )
