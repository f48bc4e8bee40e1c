"""mcu_effnet.boards: the catalog's facts (datasheets, QEMU's machine models) and look-up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mcu_effnet.boards import BOARDS, board_names, get_board
from mcu_effnet.errors import UserError

KiB, MiB = 1024, 1024 * 1024


def test_names_and_alias():
    assert board_names() == [
        "stm32f746g-disco",
        "stm32f405",
        "nucleo-h743zi",
        "nucleo-l4r5zi",
        "nrf52840dk",
        "qemu-m4",
        "qemu-m7",
        "qemu-m33",
    ]
    assert get_board("stm32") is get_board("stm32f746g-disco")
    assert get_board("STM32F405").name == "stm32f405"


def test_unknown_board_lists_names():
    with pytest.raises(UserError) as err:
        get_board("esp32")
    message = str(err.value)
    assert message.startswith("board 'esp32' is unknown") and err.value.options == ("board",)
    assert all(name in message for name in board_names())


@pytest.mark.parametrize(
    "name,core,clock_mhz,flash,sram,largest",
    [
        ("stm32f746g-disco", "cortex-m7", 216, 1 * MiB, 320 * KiB, 320 * KiB),
        ("stm32f405", "cortex-m4", 168, 1 * MiB, 192 * KiB, 128 * KiB),
        ("nucleo-h743zi", "cortex-m7", 480, 2 * MiB, 992 * KiB, 512 * KiB),
        ("nucleo-l4r5zi", "cortex-m4", 120, 2 * MiB, 640 * KiB, 640 * KiB),
        ("nrf52840dk", "cortex-m4", 64, 1 * MiB, 256 * KiB, 256 * KiB),
    ],
)
def test_datasheet_figures(name, core, clock_mhz, flash, sram, largest):
    b = get_board(name)
    assert (b.core, b.clock_hz, b.flash_bytes, b.sram_bytes) == (core, clock_mhz * 1_000_000, flash, sram)
    assert b.largest_sram_region.size == largest
    assert b.output == "uart" and b.flash_tool and b.emulator.output == "semihosting"


def test_h743_regions():
    regions = {r.name: (r.origin, r.size) for r in get_board("nucleo-h743zi").sram}
    assert regions == {
        "DTCM": (0x2000_0000, 128 * KiB),
        "AXI_SRAM": (0x2400_0000, 512 * KiB),
        "SRAM1_3": (0x3000_0000, 288 * KiB),
        "SRAM4": (0x3800_0000, 64 * KiB),
    }


def test_emulators():
    # A board without its own QEMU model runs on its core's MPS2 machine; the F405 on its own.
    expected = {
        "stm32f746g-disco": "mps2-an500",
        "stm32f405": "netduinoplus2",
        "nucleo-h743zi": "mps2-an500",
        "nucleo-l4r5zi": "mps2-an386",
        "nrf52840dk": "mps2-an386",
        "qemu-m4": "mps2-an386",
        "qemu-m7": "mps2-an500",
        "qemu-m33": "mps2-an505",
    }
    assert {b.name: b.emulator.machine for b in BOARDS} == expected
    for b in BOARDS:
        assert b.emulator.cpu == b.core
        if b.emulator.machine in ("mps2-an386", "mps2-an500"):  # hw/arm/mps2.c
            assert (b.emulator.flash.origin, b.emulator.ram.origin) == (0x0, 0x2000_0000)
    m33 = get_board("qemu-m33").emulator  # secure aliases of hw/arm/mps2-tz.c
    assert (m33.flash.origin, m33.ram.origin) == (0x1000_0000, 0x3800_0000)
    f405 = get_board("stm32f405").emulator
    assert (f405.flash.origin, f405.ram.origin) == (0x0800_0000, 0x2000_0000)


def test_linker_memory_fits_both_emulator_and_board():
    for b in BOARDS:
        flash, ram = b.linker_memory(emulated=True)
        em = b.emulator
        assert flash.origin == em.flash.origin and flash.size <= min(em.flash.size, b.flash_bytes)
        assert ram.origin == em.ram.origin and ram.size <= min(em.ram.size, b.largest_sram_region.size)
        flash, ram = b.linker_memory(emulated=False)
        assert ram == b.largest_sram_region and flash == b.flash[0]


def test_regions_do_not_overlap_and_flags():
    for b in BOARDS:
        spans = sorted((r.origin, r.origin + r.size) for r in (*b.flash, *b.sram))
        assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False)), b.name
        assert f"-mcpu={b.mcpu}" in b.cflags and f"-mfloat-abi={b.mfloat_abi}" in b.cflags
        assert b.has_dsp  # M4, M7 and M33 (as QEMU models it) all have the DSP extension


def test_boards_never_import_torch():
    code = "import sys, mcu_effnet.boards; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.toolchain
def test_qemu_knows_every_machine():
    listing = subprocess.run(
        ["qemu-system-arm", "-M", "help"], capture_output=True, text=True, check=True
    ).stdout
    machines = {line.split()[0] for line in listing.splitlines() if line.strip()}
    assert {b.emulator.machine for b in BOARDS} <= machines


@pytest.mark.toolchain
def test_gcc_accepts_every_board_flags(tmp_path):
    src = tmp_path / "t.c"
    src.write_text("int f(int a, int b) { return a * b; }\n")
    for b in BOARDS:
        subprocess.run(
            ["arm-none-eabi-gcc", *b.cflags, "-c", str(src), "-o", str(tmp_path / "t.o")], check=True
        )
