"""The gates of the tests that need the Cortex-M toolchain or a TensorFlow Lite Micro tree, and a
runner for the installed command.

``@pytest.mark.toolchain`` (arm-none-eabi-gcc/g++ and qemu-system-arm; fixtures that build
firmware depend on ``arm_toolchain`` instead) and
``@pytest.mark.tflm_tree`` (``TFLM_DIR``, or the ``shared/tflm`` folder beside the repository)
skip a test when what it needs is missing, and fail it instead under
``MCU_EFFNET_REQUIRE_TOOLCHAIN=1`` (CI), so CI cannot pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

REQUIRE_TOOLCHAIN = os.environ.get("MCU_EFFNET_REQUIRE_TOOLCHAIN") == "1"


TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-size", "qemu-system-arm")


def _missing(message: str) -> None:
    if REQUIRE_TOOLCHAIN:
        pytest.fail(f"{message} (required: MCU_EFFNET_REQUIRE_TOOLCHAIN=1)", pytrace=False)
    pytest.skip(message)


def _require_toolchain() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        _missing(f"missing {', '.join(missing)} (scripts/ensure_toolchain.sh installs them)")


@pytest.fixture(scope="session")
def arm_toolchain() -> None:
    """The same gate for fixtures that build firmware (a marker does not apply to a fixture)."""
    _require_toolchain()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("toolchain"):
        _require_toolchain()
    if item.get_closest_marker("tflm_tree"):
        from mcu_effnet.codegen.tflm import find_tflm_dir

        found, looked = find_tflm_dir()
        if found is None:
            _missing(f"no TensorFlow Lite Micro tree; looked in {'; '.join(looked)}")


# Under `pytest -n 2 --dist loadgroup` (make test) the tests that share a costly module fixture
# run on one worker, which builds it once; spread over both, each worker would build it.
SHARED_FIXTURE_GROUPS = {
    "base_run": "recipe_base_run",  # test_recipe: a finished QAT run, tens of seconds of training
}


@pytest.hookimpl(trylast=True)  # after xdist's own pass over the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    loadgroup = getattr(config.option, "loadgroup", False)
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            shared = {
                SHARED_FIXTURE_GROUPS[f]
                for f in getattr(item, "fixturenames", ())
                if f in SHARED_FIXTURE_GROUPS
            }
            if shared:
                item.add_marker(pytest.mark.xdist_group(min(shared)))
        if loadgroup:
            _suffix_group(item)
    if loadgroup:
        # The workers take tests in this order (groups first, the largest first): the firmware
        # builds and the slow tests start early, and short tests fill in at the end, where one
        # long test left for last would keep a worker busy while the other idles.
        items.sort(
            key=lambda item: not (item.get_closest_marker("slow") or item.get_closest_marker("toolchain"))
        )


def _suffix_group(item: pytest.Item) -> None:
    """The ``@group`` suffix of the node id, by which the xdist controller keeps a group on one
    worker. xdist 3.8 writes it to ``item._nodeid``, which pytest 9.2 no longer reads (the id
    lives in ``item._id``): without this every xdist_group was silently ignored and each worker
    built the shared fixtures itself."""
    names = sorted(
        {
            str(m.args[0] if m.args else m.kwargs.get("name", "default"))
            for m in item.iter_markers("xdist_group")
        }
    )
    if not names or item.nodeid.endswith("@" + "_".join(names)):
        return
    nodeid = f"{item.nodeid}@{'_'.join(names)}"
    if hasattr(item, "_id"):
        from _pytest.nodeid import coerce_node_id

        item._id = coerce_node_id(nodeid)
    else:
        item._nodeid = nodeid


# Debian's package installs `chromium`; other systems name the same browser differently.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test: the training tests' tensors are too small to gain from a
    second OpenMP thread, and on a busy machine its barrier spinning makes every op many times
    slower (README, training speed). Training test files use it for every test (pytestmark)."""
    import torch  # only the training tests pay for the import

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless-capable Chromium; skips without one, fails when CI requires it."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    message = "missing chromium (scripts/ensure_toolchain.sh installs it)"
    if REQUIRE_TOOLCHAIN:
        pytest.fail(message)
    pytest.skip(message)


def _console_script() -> str:
    beside_python = os.path.join(os.path.dirname(sys.executable), "mcu-effnet")
    return beside_python if os.path.exists(beside_python) else "mcu-effnet"


@pytest.fixture
def cli():
    """Runs the installed ``mcu-effnet`` console script in a subprocess, as a user would.

    Returns a function ``cli(*args, cwd=None, timeout=600) -> CompletedProcess`` (text mode).
    """

    def invoke(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 600):
        return subprocess.run(
            [_console_script(), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout
        )

    return invoke


@pytest.fixture(scope="module")
def host(request, tmp_path_factory):
    """One host-built engine runtime (gcc, ASan/UBSan) per test module (``tests/host_engine.py``);
    a module that sets ``HOST_DSP = True`` gets the runtime with the DSP kernels (ACLE emulated)."""
    from host_engine import HostRuntime

    workdir = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    return HostRuntime(workdir, dsp=getattr(request.module, "HOST_DSP", False))


@pytest.fixture(scope="session")
def host_plain(tmp_path_factory):
    """The runtime kernels compiled once for the host (ASan, UBSan), shared by the modules that
    run generated engines (compiling them takes tens of seconds)."""
    from host_engine import HostRuntime

    return HostRuntime(tmp_path_factory.mktemp("host_plain"))


@pytest.fixture(scope="session")
def host_dsp(tmp_path_factory):
    """The same with the DSP kernels (portable ACLE emulation)."""
    from host_engine import HostRuntime

    return HostRuntime(tmp_path_factory.mktemp("host_dsp"), dsp=True)
