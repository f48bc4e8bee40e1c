"""The board catalog as data: cores, compiler flags, memories, emulators, flash tools.

Memory origins and sizes are those of the reference manuals (real boards) and of QEMU's
machine models (``hw/arm/mps2.c``: AN386/AN500 have 4 MB SSRAM1 at 0x0 and 4 MB SSRAM2&3 at
0x20000000; ``hw/arm/mps2-tz.c``: AN505 has SSRAM1 behind the secure alias 0x10000000 and
SSRAM2 at 0x38000000; ``stm32f405_soc``: 1 MB flash at 0x08000000, 128 KB SRAM at
0x20000000, 64 KB CCM at 0x10000000). This module imports nothing of ours and no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * 1024


@dataclass(frozen=True)
class MemoryRegion:
    name: str
    origin: int
    size: int


@dataclass(frozen=True)
class Emulator:
    """The QEMU machine that runs a board's firmware, and the memory the linker must use there.

    ``flash`` / ``ram`` are the emulator's regions for code and data; a board's own sizes are
    enforced on top of them by the linker script (see ``Board.linker_memory``).
    """

    machine: str  # qemu-system-arm -M <machine>
    cpu: str  # qemu-system-arm -cpu <cpu>
    flash: MemoryRegion
    ram: MemoryRegion
    output: str = "semihosting"
    clock_hz: int = 25_000_000  # the machine's SYSCLK (what SysTick counts at)


@dataclass(frozen=True)
class Board:
    name: str
    core: str  # cortex-m4 / cortex-m7 / cortex-m33
    mcpu: str
    mfpu: str
    mfloat_abi: str
    has_dsp: bool  # dual 16-bit MAC (SMLAD) instructions: Armv7E-M, Armv8-M Mainline + DSP
    clock_hz: int
    flash: tuple[MemoryRegion, ...]
    sram: tuple[MemoryRegion, ...]
    emulator: Emulator
    output: str  # how results leave the chip on the real board
    flash_tool: str | None  # usual command to program the board; None for emulator-only boards
    note: str
    aliases: tuple[str, ...] = ()

    @property
    def cflags(self) -> tuple[str, ...]:
        return (
            "-mthumb",
            f"-mcpu={self.mcpu}",
            f"-mfpu={self.mfpu}",
            f"-mfloat-abi={self.mfloat_abi}",
        )

    @property
    def flash_bytes(self) -> int:
        return sum(r.size for r in self.flash)

    @property
    def sram_bytes(self) -> int:
        return sum(r.size for r in self.sram)

    @property
    def largest_sram_region(self) -> MemoryRegion:
        """The arena must be contiguous: this is the most an arena can use."""
        return max(self.sram, key=lambda r: r.size)

    def linker_memory(self, emulated: bool) -> tuple[MemoryRegion, MemoryRegion]:
        """(FLASH, RAM) for the linker script.

        On the board: its first flash region and its largest SRAM region. Under the emulator:
        the emulator's origins with the board's sizes (capped by what the emulator has), so a
        firmware that links for QEMU also fits the real board.
        """
        flash, ram = self.flash[0], self.largest_sram_region
        if not emulated:
            return flash, ram
        em = self.emulator
        return (
            MemoryRegion("FLASH", em.flash.origin, min(self.flash_bytes, em.flash.size)),
            MemoryRegion("RAM", em.ram.origin, min(ram.size, em.ram.size)),
        )


# --- QEMU machines ------------------------------------------------------------------------

_MPS2_FLASH = MemoryRegion("SSRAM1", 0x0000_0000, 4 * MiB)
_MPS2_RAM = MemoryRegion("SSRAM2_3", 0x2000_0000, 4 * MiB)

MPS2_AN386 = Emulator("mps2-an386", "cortex-m4", _MPS2_FLASH, _MPS2_RAM)
MPS2_AN500 = Emulator("mps2-an500", "cortex-m7", _MPS2_FLASH, _MPS2_RAM)
# AN505 boots secure: code through the secure alias of SSRAM1, data in SSRAM2 (secure alias).
MPS2_AN505 = Emulator(
    "mps2-an505",
    "cortex-m33",
    MemoryRegion("SSRAM1_S", 0x1000_0000, 4 * MiB),
    MemoryRegion("SSRAM2_S", 0x3800_0000, 2 * MiB),
    clock_hz=20_000_000,
)
NETDUINOPLUS2 = Emulator(
    "netduinoplus2",
    "cortex-m4",
    MemoryRegion("FLASH", 0x0800_0000, 1 * MiB),
    MemoryRegion("SRAM", 0x2000_0000, 128 * KiB),
    clock_hz=168_000_000,
)

_M4F = dict(core="cortex-m4", mcpu="cortex-m4", mfpu="fpv4-sp-d16", mfloat_abi="hard", has_dsp=True)
_M7_SP = dict(core="cortex-m7", mcpu="cortex-m7", mfpu="fpv5-sp-d16", mfloat_abi="hard", has_dsp=True)
_M7_DP = dict(core="cortex-m7", mcpu="cortex-m7", mfpu="fpv5-d16", mfloat_abi="hard", has_dsp=True)
_M33 = dict(core="cortex-m33", mcpu="cortex-m33", mfpu="fpv5-sp-d16", mfloat_abi="hard", has_dsp=True)

BOARDS: tuple[Board, ...] = (
    Board(
        name="stm32f746g-disco",
        **_M7_SP,
        clock_hz=216_000_000,
        flash=(MemoryRegion("FLASH", 0x0800_0000, 1 * MiB),),
        # DTCM 64 KB + SRAM1 240 KB + SRAM2 16 KB are contiguous from 0x20000000.
        sram=(MemoryRegion("SRAM", 0x2000_0000, 320 * KiB),),
        emulator=MPS2_AN500,
        output="uart",
        flash_tool="st-flash --reset write firmware.bin 0x08000000",
        note="MCUNet / TinyEngine's reference board; runs under QEMU's mps2-an500 (Cortex-M7)",
        aliases=("stm32",),
    ),
    Board(
        name="stm32f405",
        **_M4F,
        clock_hz=168_000_000,
        flash=(MemoryRegion("FLASH", 0x0800_0000, 1 * MiB),),
        # SRAM1 112 KB + SRAM2 16 KB are contiguous; CCM is separate (and not DMA-reachable).
        sram=(MemoryRegion("SRAM", 0x2000_0000, 128 * KiB), MemoryRegion("CCM", 0x1000_0000, 64 * KiB)),
        emulator=NETDUINOPLUS2,
        output="uart",
        flash_tool="st-flash --reset write firmware.bin 0x08000000",
        note="runs on QEMU's own STM32F405 model (netduinoplus2)",
    ),
    Board(
        name="nucleo-h743zi",
        **_M7_DP,
        clock_hz=480_000_000,
        flash=(MemoryRegion("FLASH", 0x0800_0000, 2 * MiB),),
        sram=(
            MemoryRegion("DTCM", 0x2000_0000, 128 * KiB),
            MemoryRegion("AXI_SRAM", 0x2400_0000, 512 * KiB),
            MemoryRegion("SRAM1_3", 0x3000_0000, 288 * KiB),  # SRAM1 128 + SRAM2 128 + SRAM3 32
            MemoryRegion("SRAM4", 0x3800_0000, 64 * KiB),
        ),
        emulator=MPS2_AN500,
        output="uart",
        flash_tool='openocd -f board/st_nucleo_h743zi.cfg -c "program firmware.elf verify reset exit"',
        note="1 MB of SRAM in four regions: the arena lives in the 512 KB AXI SRAM",
    ),
    Board(
        name="nucleo-l4r5zi",
        **_M4F,
        clock_hz=120_000_000,
        flash=(MemoryRegion("FLASH", 0x0800_0000, 2 * MiB),),
        # SRAM1 192 KB + SRAM2 64 KB (aliased at 0x20030000) + SRAM3 384 KB are contiguous.
        sram=(MemoryRegion("SRAM", 0x2000_0000, 640 * KiB),),
        emulator=MPS2_AN386,
        output="uart",
        flash_tool="pyocd flash -t stm32l4r5zitx firmware.elf",
        note="low-power M4F with 640 KB contiguous SRAM; runs under QEMU's mps2-an386 (Cortex-M4)",
    ),
    Board(
        name="nrf52840dk",
        **_M4F,
        clock_hz=64_000_000,
        flash=(MemoryRegion("FLASH", 0x0000_0000, 1 * MiB),),
        sram=(MemoryRegion("RAM", 0x2000_0000, 256 * KiB),),
        emulator=MPS2_AN386,
        output="uart",
        flash_tool="nrfjprog --program firmware.hex --chiperase --verify --reset",
        note="Nordic nRF52840 (BLE SoC); runs under QEMU's mps2-an386 (Cortex-M4)",
    ),
    Board(
        name="qemu-m4",
        **_M4F,
        clock_hz=MPS2_AN386.clock_hz,
        flash=(_MPS2_FLASH,),
        sram=(_MPS2_RAM,),
        emulator=MPS2_AN386,
        output="semihosting",
        flash_tool=None,
        note="QEMU's MPS2 AN386 FPGA image (Cortex-M4F); emulator only",
    ),
    Board(
        name="qemu-m7",
        **_M7_SP,
        clock_hz=MPS2_AN500.clock_hz,
        flash=(_MPS2_FLASH,),
        sram=(_MPS2_RAM,),
        emulator=MPS2_AN500,
        output="semihosting",
        flash_tool=None,
        note="QEMU's MPS2 AN500 FPGA image (Cortex-M7); emulator only",
    ),
    Board(
        name="qemu-m33",
        **_M33,
        clock_hz=MPS2_AN505.clock_hz,
        flash=(MPS2_AN505.flash,),
        sram=(MPS2_AN505.ram,),
        emulator=MPS2_AN505,
        output="semihosting",
        flash_tool=None,
        note="QEMU's MPS2 AN505 (Cortex-M33, TrustZone); boots secure: code at 0x10000000, RAM at 0x38000000",
    ),
)
