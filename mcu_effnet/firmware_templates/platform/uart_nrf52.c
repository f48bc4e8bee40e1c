/* Console on the nRF52840 DK: UARTE0 TX on P0.06 (the J-Link virtual COM port), 115200 baud
 * 8N1, polled through EasyDMA from a RAM buffer (EasyDMA cannot read flash). Register offsets
 * from the nRF52840 Product Specification (UARTE, GPIO). Minimal on purpose: transmit only. */
#include "cmsis_regs.h"
#include "platform.h"

#define UARTE0_BASE 0x40002000u
#define UARTE_TASKS_STARTTX REG32(UARTE0_BASE + 0x008u)
#define UARTE_EVENTS_ENDTX REG32(UARTE0_BASE + 0x120u)
#define UARTE_ENABLE REG32(UARTE0_BASE + 0x500u)
#define UARTE_PSEL_TXD REG32(UARTE0_BASE + 0x50Cu)
#define UARTE_PSEL_RXD REG32(UARTE0_BASE + 0x514u)
#define UARTE_BAUDRATE REG32(UARTE0_BASE + 0x524u)
#define UARTE_TXD_PTR REG32(UARTE0_BASE + 0x544u)
#define UARTE_TXD_MAXCNT REG32(UARTE0_BASE + 0x548u)
#define UARTE_CONFIG REG32(UARTE0_BASE + 0x56Cu)

#define GPIO_P0_OUTSET REG32(0x50000508u)
#define GPIO_P0_DIRSET REG32(0x50000518u)

#define TX_PIN 6u
#define UARTE_ENABLE_VALUE 8u
#define UARTE_BAUD_115200 0x01D60000u
#define PSEL_DISCONNECTED 0xFFFFFFFFu

static uint8_t uarte_buf[64];

static void uart_init(void)
{
    GPIO_P0_OUTSET = 1u << TX_PIN;
    GPIO_P0_DIRSET = 1u << TX_PIN;
    UARTE_PSEL_TXD = TX_PIN;
    UARTE_PSEL_RXD = PSEL_DISCONNECTED;
    UARTE_BAUDRATE = UARTE_BAUD_115200;
    UARTE_CONFIG = 0u; /* no parity, no flow control */
    UARTE_ENABLE = UARTE_ENABLE_VALUE;
}

static void uart_send(const uint8_t *data, size_t len)
{
    UARTE_TXD_PTR = (uint32_t)(uintptr_t)data;
    UARTE_TXD_MAXCNT = (uint32_t)len;
    UARTE_EVENTS_ENDTX = 0u;
    UARTE_TASKS_STARTTX = 1u;
    while (UARTE_EVENTS_ENDTX == 0u) {
    }
    UARTE_EVENTS_ENDTX = 0u;
}

void platform_init(void)
{
    uart_init();
    counter_init();
}

void platform_write(const char *data, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; ++i) {
        if (data[i] == '\n') {
            uarte_buf[n++] = '\r';
        }
        uarte_buf[n++] = (uint8_t)data[i];
        if (n >= sizeof uarte_buf - 1u) {
            uart_send(uarte_buf, n);
            n = 0;
        }
    }
    if (n > 0) {
        uart_send(uarte_buf, n);
    }
}

void platform_exit(int status)
{
    (void)status;
    for (;;) {
        __asm__ volatile("wfi");
    }
}
