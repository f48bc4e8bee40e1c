#!/usr/bin/env bash
# Makes sure the Cortex-M cross compiler (C and C++, with newlib), QEMU and Chromium (the
# report.html test renders the page headless) exist.
# As root it installs them with apt-get; otherwise it prints the one command to run.
set -u
PKGS="gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm chromium"

have_toolchain() {
    command -v arm-none-eabi-gcc >/dev/null 2>&1 || return 1
    command -v arm-none-eabi-g++ >/dev/null 2>&1 || return 1
    command -v qemu-system-arm >/dev/null 2>&1 || return 1
    command -v chromium >/dev/null 2>&1 || return 1
    # newlib: the compiler finds a real libc.a (it echoes the bare name when it does not)
    [ -f "$(arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -print-file-name=libc.a)" ] || return 1
    [ -f "$(arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -print-file-name=libstdc++.a)" ] || return 1
}

have_toolchain && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing the Cortex-M toolchain and QEMU: apt-get install -y $PKGS"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq $PKGS >/dev/null || {
        echo "error: apt-get could not install $PKGS" >&2
        exit 1
    }
    have_toolchain && exit 0
fi

echo "missing arm-none-eabi-gcc (with newlib), qemu-system-arm or chromium; install them with:" >&2
echo "    sudo apt-get install -y $PKGS" >&2
if [ "${MCU_EFFNET_REQUIRE_TOOLCHAIN:-0}" = "1" ]; then
    exit 1
fi
echo "(continuing: the tests that need them will be skipped)" >&2
exit 0
