"""The console UART of each real board: what the firmware's ``platform/uart.c`` drives.

STM32 boards get registers and pins for ``uart_stm32.c.j2``; the nRF52 board the name of a
platform file copied as it is. Emulator-only boards print through semihosting and have no entry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mcu_effnet.boards.catalog import Board


@dataclass(frozen=True)
class RegisterBit:
    """One bit set at start-up to clock or power the UART and its pin."""

    address: int
    bit: int
    note: str


@dataclass(frozen=True)
class StmUart:
    """A polled transmit-only console on an STM32 (register data for ``uart_stm32.c.j2``)."""

    name: str
    base: int
    legacy_registers: bool  # STM32F4 (SR/DR/BRR/CR1) vs F7/H7/L4 (CR1/BRR/ISR/TDR)
    gpio_base: int
    tx_pin: int
    tx_pin_name: str
    af: int
    enable: tuple[RegisterBit, ...]
    brr: int
    brr_note: str
    clock_note: str
    note: str
    baud: int = 115200


# USART1 on PA9, the same registers and clocks on the F4 and the F7 (bar the register layout).
_USART1_PA9 = StmUart(
    name="USART1",
    base=0x4001_1000,
    legacy_registers=False,
    gpio_base=0x4002_0000,
    tx_pin=9,
    tx_pin_name="PA9",
    af=7,
    enable=(
        RegisterBit(0x4002_3830, 0, "RCC_AHB1ENR.GPIOAEN"),
        RegisterBit(0x4002_3844, 4, "RCC_APB2ENR.USART1EN"),
    ),
    brr=139,
    brr_note="16 MHz HSI / 115200",
    clock_note="16 MHz HSI",
    note="USART1 is the ST-LINK virtual COM port on the discovery board.",
)

# Console UART of each real board (the ST-LINK / J-Link virtual COM port where there is one).
# A name instead of registers: a platform file copied as it is.
CONSOLE_UARTS: dict[str, StmUart | str] = {
    "stm32f746g-disco": _USART1_PA9,
    "stm32f405": replace(
        _USART1_PA9,
        legacy_registers=True,
        note="Connect a USB-serial adapter to PA9 (no on-board debugger UART is assumed).",
    ),
    "nucleo-h743zi": StmUart(
        name="USART3",
        base=0x4000_4800,
        legacy_registers=False,
        gpio_base=0x5802_0C00,
        tx_pin=8,
        tx_pin_name="PD8",
        af=7,
        enable=(
            RegisterBit(0x5802_44E0, 3, "RCC_AHB4ENR.GPIODEN"),
            RegisterBit(0x5802_44E8, 18, "RCC_APB1LENR.USART3EN"),
        ),
        brr=556,
        brr_note="64 MHz HSI / 115200",
        clock_note="64 MHz HSI",
        note="USART3 is the ST-LINK virtual COM port on Nucleo-144 boards.",
    ),
    "nucleo-l4r5zi": StmUart(
        name="LPUART1",
        base=0x4000_8000,
        legacy_registers=False,
        gpio_base=0x4800_1800,
        tx_pin=7,
        tx_pin_name="PG7",
        af=8,
        enable=(
            RegisterBit(0x4002_1058, 28, "RCC_APB1ENR1.PWREN"),
            RegisterBit(0x4000_7004, 9, "PWR_CR2.IOSV (port G is powered from VDDIO2)"),
            RegisterBit(0x4002_104C, 6, "RCC_AHB2ENR.GPIOGEN"),
            RegisterBit(0x4002_105C, 0, "RCC_APB1ENR2.LPUART1EN"),
        ),
        brr=8889,
        brr_note="256 * 4 MHz MSI / 115200 (LPUART)",
        clock_note="4 MHz MSI",
        note="LPUART1 is the ST-LINK virtual COM port on Nucleo-144 L4R5ZI.",
    ),
    "nrf52840dk": "uart_nrf52.c",
}


def uart_note(board: Board) -> str:
    """Where the board's console output goes, for its project's README."""
    uart = CONSOLE_UARTS.get(board.name)
    if uart is None:
        return "semihosting (QEMU)"
    if isinstance(uart, str):
        return "UARTE0 TX on P0.06 (J-Link virtual COM port), 115200 8N1"
    return f"{uart.name} TX on {uart.tx_pin_name}, {uart.baud} 8N1"
