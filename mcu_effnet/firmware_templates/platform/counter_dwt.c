/* Cycle counting on hardware: the DWT cycle counter (CYCCNT), extended to 64 bits as long as
 * it is read at least once per 2^32 cycles (20 s at 216 MHz). QEMU does not model it. */
#include "cmsis_regs.h"
#include "platform.h"

static uint32_t dwt_last;
static uint32_t dwt_high;

void counter_init(void)
{
    DEMCR |= DEMCR_TRCENA;
    DWT_LAR = 0xC5ACCE55u;
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    dwt_last = 0u;
    dwt_high = 0u;
}

uint64_t platform_counter(void)
{
    const uint32_t now = DWT_CYCCNT;
    if (now < dwt_last) {
        ++dwt_high;
    }
    dwt_last = now;
    return ((uint64_t)dwt_high << 32) | now;
}
