"""mcu_effnet.atomic: a file or folder takes its target's place whole, or not at all."""

from __future__ import annotations

import pytest

from mcu_effnet.atomic import atomic_write_bytes, staged


def test_a_file_replaces_its_target_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "model.tflite"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError), staged(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 1


def test_a_symlink_is_staged_like_a_file(tmp_path):
    (tmp_path / "run-a").mkdir()
    with staged(tmp_path / "latest") as tmp:
        tmp.symlink_to("run-a")
    assert (tmp_path / "latest").resolve() == (tmp_path / "run-a").resolve()


def test_a_folder_replaces_an_old_one_and_a_failure_leaves_it(tmp_path):
    out = tmp_path / "fw"
    for text in ("first", "second"):
        with staged(out, folder=True) as tmp:
            (tmp / "main.c").write_text(text)
    assert (out / "main.c").read_text() == "second"
    with pytest.raises(RuntimeError), staged(out, folder=True) as tmp:
        (tmp / "main.c").write_text("third")
        raise RuntimeError("build failed")
    assert (out / "main.c").read_text() == "second" and [p.name for p in tmp_path.iterdir()] == ["fw"]
