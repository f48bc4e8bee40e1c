"""Files and folders that replace their target in one rename, so nobody reads half of one."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _replace_folder(tmp: Path, out: Path) -> None:
    """Moves the finished folder into place; an old one goes only after the new one is there."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.rename(out, old / "project")
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.rename(old / "project", out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged(target: Path, folder: bool = False) -> Iterator[Path]:
    """A path beside ``target`` to fill (a fresh empty folder when ``folder``). When the block ends
    without an error it takes ``target``'s place (atomic on POSIX for a file); otherwise it is
    removed and ``target`` stays as it was."""
    if folder:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    else:
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        _remove(tmp)  # left by a process that died with our id
    try:
        yield tmp
        (_replace_folder if folder else os.replace)(tmp, target)
    finally:
        _remove(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file, synced, and a rename."""
    with staged(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
