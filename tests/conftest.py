"""Shared fixtures: the Cortex-M toolchain gate and a runner for the installed command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

REQUIRE_TOOLCHAIN = os.environ.get("MCU_EFFNET_REQUIRE_TOOLCHAIN") == "1"


@pytest.fixture(scope="session")
def arm_toolchain() -> None:
    """Skips without arm-none-eabi-gcc and qemu-system-arm; fails instead when CI requires them."""
    tools = ("arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-size", "qemu-system-arm")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        message = f"missing {', '.join(missing)} (scripts/ensure_toolchain.sh installs them)"
        if REQUIRE_TOOLCHAIN:
            pytest.fail(message)
        pytest.skip(message)


# Debian's package installs `chromium`; other systems name the same browser differently.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


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
