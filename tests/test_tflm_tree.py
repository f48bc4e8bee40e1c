"""``--runtime tflm`` and the TensorFlow Lite Micro tree: where it is looked for, which library a
project links (prebuilt, or built once into a cache folder), and one clear line with exit code 2
for a tree that cannot serve the board.

Trees that differ from the real one are made of symlinks into it (plus the files under test), so
nothing here builds TFLite Micro: the cache build is checked with ``make -n`` and with a fake
tree whose "build" copies the prebuilt library.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tflite_builder import random_cnn, random_mbconv

from mcu_effnet.boards.catalog import BOARDS
from mcu_effnet.codegen.tflm import attributes_mismatch, check_tree, find_tflm_dir

REAL, _ = find_tflm_dir()  # tests that use it carry the tflm_tree marker (tests/conftest.py)
SCRIPT = os.path.join(os.path.dirname(sys.executable), "mcu-effnet")
RESOLVER = "tensorflow/lite/micro/micro_mutable_op_resolver.h"

# Stands in for the tree's Makefile: the same print-flags, and a "build" that copies the
# prebuilt Cortex-M4 library and counts how often it ran.
FAKE_MAKEFILE = """\
TFLM_ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
include $(TFLM_ROOT)/flags.mk
VARIANT ?= ref
print-flags:
\t@echo "ARCH_FLAGS=$(ARCH_FLAGS)"
\t@echo "DEFS=$(DEFS_$(VARIANT))"
\t@echo "INCLUDES=$(INCLUDES)"
\t@echo "CXXFLAGS=$(CXXFLAGS)"
\t@echo "CFLAGS=$(CFLAGS)"
ref cmsis_nn:
\t@mkdir -p $(BUILD_DIR)
\tcp {real}/prebuilt/cortex-m4/libtflm_$@.a $(BUILD_DIR)/
\techo $(CPU) $(FPU) $@ >> $(BUILD_DIR)/builds.log
"""


def fake_tree(
    dest: Path,
    prebuilt: dict[str, str] | None = None,
    replace: dict[str, str] | None = None,
) -> Path:
    """A tree of symlinks into the real one. ``prebuilt``: {"cortex-m4/libtflm_ref.a":
    "cortex-m7/libtflm_ref.a"} (only these libraries exist); ``replace``: {relative path: text}."""
    replace = replace or {}
    for root, _dirs, files in os.walk(REAL):
        rel = Path(root).relative_to(REAL)
        if rel.parts[:1] == ("prebuilt",):
            continue
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            path = rel / name
            if str(path) not in replace:
                os.symlink(Path(root) / name, dest / path)
    for rel, text in replace.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text)
    for lib, source in (prebuilt or {}).items():
        (dest / "prebuilt" / lib).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(REAL / "prebuilt" / source, dest / "prebuilt" / lib)
    return dest


def _model(tmp_path: Path, kind: str = "cnn", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path = tmp_path / f"{kind}.tflite"
    path.write_bytes(random_cnn(rng) if kind == "cnn" else random_mbconv(rng))
    return path


def mcu(*args, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCRIPT, *map(str, args)],
        capture_output=True,
        text=True,
        # Every test names its tree with --tflm-dir; a TFLM_DIR of the caller's must not leak into make.
        env={**{k: v for k, v in os.environ.items() if k != "TFLM_DIR"}, **(env or {})},
        cwd=cwd,
        timeout=600,
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mcu-effnet: error: "), result.stderr
    return lines[0]


def codegen_tflm(tmp_path: Path, tree: Path, *extra, kind="cnn", board="qemu-m4", env=None):
    return mcu(
        "codegen",
        _model(tmp_path, kind),
        "--board",
        board,
        "--runtime",
        "tflm",
        "--tflm-dir",
        tree,
        "--out",
        tmp_path / "fw",
        *extra,
        env=env,
    )


# ---- where the tree is found -------------------------------------------------------------------


def test_lookup_order(tmp_path, monkeypatch):
    tree = tmp_path / "env-tree" / "tensorflow" / "lite" / "micro"
    tree.mkdir(parents=True)
    (tree / "micro_interpreter.h").write_text("")
    monkeypatch.setenv("TFLM_DIR", str(tmp_path / "env-tree"))
    found, looked = find_tflm_dir(tmp_path / "nowhere")  # the option wins, even when wrong
    assert found is None and looked == [f"{tmp_path / 'nowhere'} (--tflm-dir)"]
    found, _ = find_tflm_dir()
    assert found == (tmp_path / "env-tree").resolve()
    monkeypatch.delenv("TFLM_DIR")
    found, looked = find_tflm_dir()
    assert all("shared/tflm" in where for where in looked)
    assert found is None or found.name == "tflm"


# ---- which library the Makefile links ----------------------------------------------------------


@pytest.mark.tflm_tree
def test_prebuilt_library_is_linked_when_the_core_has_one(tmp_path):
    result = codegen_tflm(tmp_path, REAL, "--no-build")
    assert result.returncode == 0, result.stderr
    lib = subprocess.run(
        ["make", "-s", "-C", str(tmp_path / "fw"), "print-tflm-lib"], capture_output=True, text=True
    )
    assert lib.stdout.strip() == f"{REAL}/prebuilt/cortex-m4/libtflm_ref.a"


@pytest.mark.tflm_tree
def test_core_without_prebuilt_library_builds_it_into_the_cache(tmp_path):
    """make -n: the library would be built by the tree's Makefile into the cache folder, for the
    board's core and FPU; nothing is written inside the tree."""
    tree = fake_tree(tmp_path / "tree", prebuilt={"cortex-m7/libtflm_ref.a": "cortex-m7/libtflm_ref.a"})
    result = codegen_tflm(tmp_path, tree, "--no-build")
    assert result.returncode == 0, result.stderr
    cache = tmp_path / "cache"
    env = dict(os.environ, TFLM_CACHE_ROOT=str(cache))
    dry = subprocess.run(
        ["make", "-n", "-C", str(tmp_path / "fw"), "qemu"], capture_output=True, text=True, env=env
    )
    assert dry.returncode == 0, dry.stderr
    m = re.search(rf"-C {tree} BUILD_DIR=({cache}/cortex-m4-ref-\d+) (\S+) (\S+) (\S+) ref", dry.stdout)
    assert m, dry.stdout[:3000]
    assert m.groups()[1:] == ("CPU=cortex-m4", "FPU=fpv4-sp-d16", "FLOAT_ABI=hard")
    assert f"{m.group(1)}/libtflm_ref.a" in dry.stdout  # linked from there
    # The tree's own Makefile (dry-run too) plans the library's compiles into that folder.
    compiles = [ln for ln in dry.stdout.splitlines() if "g++" in ln and f"-o {m.group(1)}/obj_" in ln]
    assert len(compiles) > 100 and all("-mcpu=cortex-m4" in ln for ln in compiles)
    assert not cache.exists() and not (tree / "prebuilt" / "cortex-m4").exists()
    # Another variant gets its own folder.
    lib = subprocess.run(
        ["make", "-s", "-C", str(tmp_path / "fw"), "print-tflm-lib", "TFLM_VARIANT=cmsis_nn"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert re.fullmatch(rf"{cache}/cortex-m4-cmsis_nn-\d+/libtflm_cmsis_nn.a", lib.stdout.strip())


@pytest.mark.tflm_tree
@pytest.mark.toolchain
def test_cached_library_is_built_once_and_runs_bit_exact(tmp_path):
    tree = fake_tree(tmp_path / "tree", replace={"Makefile": FAKE_MAKEFILE.format(real=REAL)})
    env = {"TFLM_CACHE_ROOT": str(tmp_path / "cache")}
    result = codegen_tflm(tmp_path, tree, env=env)
    assert result.returncode == 0, result.stderr
    result = mcu("run", tmp_path / "fw", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bit-exact: yes" in result.stdout
    (log,) = (tmp_path / "cache").glob("cortex-m4-ref-*/builds.log")
    assert log.read_text().split() == ["cortex-m4", "fpv4-sp-d16", "ref"]
    flags = (log.parent / "flags.txt").read_text()
    assert "ARCH_FLAGS=-mcpu=cortex-m4" in flags and "-DCMSIS_NN" not in flags
    shutil.rmtree(tmp_path / "fw" / "build")
    assert mcu("run", tmp_path / "fw", env=env).returncode == 0
    assert len(log.read_text().splitlines()) == 1  # not built again


# ---- bad input: one line, exit code 2 ------------------------------------------------------------


@pytest.mark.toolchain
def test_no_tree_says_where_it_looked(tmp_path):
    missing = tmp_path / "no-tflm"
    line = one_error_line(
        mcu("compare", _model(tmp_path), "--board", "qemu-m4", "--tflm-dir", missing, cwd=tmp_path)
    )
    assert str(missing) in line and "--tflm-dir" in line and "native runtime needs none" in line
    assert not (tmp_path / "compare").exists()


@pytest.mark.tflm_tree
@pytest.mark.toolchain
def test_library_built_for_another_core(tmp_path):
    tree = fake_tree(tmp_path / "tree", prebuilt={"cortex-m4/libtflm_ref.a": "cortex-m7/libtflm_ref.a"})
    line = one_error_line(codegen_tflm(tmp_path, tree))
    assert "prebuilt/cortex-m4/libtflm_ref.a" in line and "does not match the board's flags" in line
    assert "VFPv4-D16" in line and "FPv5" in line
    assert not (tmp_path / "fw").exists()


@pytest.mark.tflm_tree
@pytest.mark.toolchain
def test_library_of_the_other_variant(tmp_path):
    tree = fake_tree(tmp_path / "tree", prebuilt={"cortex-m4/libtflm_cmsis_nn.a": "cortex-m4/libtflm_ref.a"})
    line = one_error_line(codegen_tflm(tmp_path, tree, "--kernels", "cmsis-nn"))
    assert "libtflm_cmsis_nn.a" in line and "lacks the CMSIS-NN kernels" in line


@pytest.mark.tflm_tree
@pytest.mark.toolchain
def test_flags_that_do_not_define_the_variant(tmp_path):
    flags = (
        (REAL / "flags.mk")
        .read_text()
        .replace("DEFS_cmsis_nn := $(COMMON_DEFS) -DCMSIS_NN", "DEFS_cmsis_nn := $(COMMON_DEFS)")
    )
    tree = fake_tree(
        tmp_path / "tree",
        prebuilt={"cortex-m4/libtflm_cmsis_nn.a": "cortex-m4/libtflm_cmsis_nn.a"},
        replace={"flags.mk": flags},
    )
    line = one_error_line(codegen_tflm(tmp_path, tree, "--kernels", "cmsis-nn"))
    assert "lacks -DCMSIS_NN" in line


@pytest.mark.tflm_tree
@pytest.mark.toolchain
def test_op_missing_from_the_trees_resolver(tmp_path):
    header = (REAL / RESOLVER).read_text().replace("AddHardSwish(", "AddSomethingElse(")
    tree = fake_tree(
        tmp_path / "tree",
        prebuilt={"cortex-m4/libtflm_ref.a": "cortex-m4/libtflm_ref.a"},
        replace={RESOLVER: header},
    )
    line = one_error_line(codegen_tflm(tmp_path, tree, kind="mbconv"))
    assert "AddHardSwish()" in line and "HARD_SWISH" in line and "--runtime native" in line


@pytest.mark.tflm_tree
def test_core_without_library_and_without_compiler(tmp_path):
    tree = fake_tree(tmp_path / "tree", prebuilt={"cortex-m7/libtflm_ref.a": "cortex-m7/libtflm_ref.a"})
    line = one_error_line(codegen_tflm(tmp_path, tree, env={"PATH": str(tmp_path / "no-tools")}))
    assert "cortex-m4" in line and "no prebuilt TFLite Micro library" in line
    assert "arm-none-eabi-g++" in line and "--runtime native" in line
    assert not (tmp_path / "fw").exists()


@pytest.mark.toolchain
def test_project_without_a_tree_fails_to_build_with_one_line(tmp_path):
    """codegen --no-build found no tree: the Makefile says so instead of failing on a missing header."""
    result = codegen_tflm(tmp_path, tmp_path / "no-tflm", "--no-build")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^TFLM_DIR\s*\?=\s*$", (tmp_path / "fw" / "Makefile").read_text(), re.M)
    line = one_error_line(mcu("run", tmp_path / "fw"))
    assert "TFLM_DIR=''" in line and "not a TensorFlow Lite Micro tree" in line
    clean = subprocess.run(["make", "-C", str(tmp_path / "fw"), "clean"], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr


@pytest.mark.tflm_tree
@pytest.mark.toolchain
def test_run_checks_the_tree_make_will_use(tmp_path):
    """A project made against the real tree, run with TFLM_DIR (the environment wins over the
    Makefile's default) naming a tree whose library was built for another core."""
    assert codegen_tflm(tmp_path, REAL, "--no-build").returncode == 0
    tree = fake_tree(tmp_path / "tree", prebuilt={"cortex-m4/libtflm_ref.a": "cortex-m33/libtflm_ref.a"})
    line = one_error_line(mcu("run", tmp_path / "fw", env={"TFLM_DIR": str(tree)}))
    assert f"{tree}/prebuilt/cortex-m4/libtflm_ref.a" in line and "v8-M.mainline" in line
    assert not (tmp_path / "fw" / "build").exists()


# ---- the library check itself ------------------------------------------------------------------


def test_attribute_rules():
    m4 = {"Tag_CPU_arch": "v7E-M", "Tag_FP_arch": "VFPv4-D16", "Tag_ABI_VFP_args": "VFP registers"}
    m4_sp = dict(m4, Tag_ABI_HardFP_use="SP only")
    m7_dp = dict(m4, Tag_FP_arch="FPv5/FP-D16 for ARMv8")
    m7_sp = dict(m7_dp, Tag_ABI_HardFP_use="SP only")
    assert not attributes_mismatch(m4_sp, m4_sp)
    assert not attributes_mismatch(m7_sp, m7_dp)  # single-precision library, double-precision FPU
    assert attributes_mismatch(m7_dp, m7_sp)  # the other way round: the library may use DP
    assert attributes_mismatch(m4_sp, m7_sp)  # another FPU
    assert attributes_mismatch(m4_sp, {"Tag_CPU_arch": "v7E-M"})  # soft-float board
    assert attributes_mismatch(m4_sp, dict(m4_sp, Tag_CPU_arch="v8-M.mainline"))


@pytest.mark.tflm_tree
@pytest.mark.toolchain
def test_every_catalog_board_accepts_the_real_tree():
    """No false alarm: each board of the catalog links its core's prebuilt library."""
    for board in BOARDS:
        lib = check_tree(REAL, board, "ref", ["CONV_2D", "HARD_SWISH"])
        assert lib == REAL / "prebuilt" / board.core / "libtflm_ref.a", board.name
    assert check_tree(REAL, BOARDS[0], "cmsis_nn", ["CONV_2D"]).name == "libtflm_cmsis_nn.a"
