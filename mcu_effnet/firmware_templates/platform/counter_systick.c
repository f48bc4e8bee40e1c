/* Instruction counting under QEMU: SysTick on the processor clock, extended to 64 bits by
 * counting its wrap-arounds. With `-icount shift=0` QEMU advances virtual time by exactly
 * 1 ns per instruction, so one tick of a clock at PLATFORM_COUNTER_HZ is
 * 1e9 / PLATFORM_COUNTER_HZ instructions (40 on the 25 MHz MPS2 machines). */
#include "cmsis_regs.h"
#include "platform.h"

#ifndef SYSTICK_RELOAD
#define SYSTICK_RELOAD 0x00FFFFFFu /* the 24-bit maximum; tests override it to exercise wraps */
#endif

static volatile uint32_t systick_wraps;

void SysTick_Handler(void);
void SysTick_Handler(void) { ++systick_wraps; }

void counter_init(void)
{
    SYST_CSR = 0u;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0u;
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
    /* The counter starts at 0 and loads the reload value on its first tick: wait for that, so
     * the first reading does not see 0 as the end of a period that never began. */
    while (SYST_CVR == 0u) {
    }
}

uint64_t platform_counter(void)
{
    irq_disable();
    uint32_t wraps = systick_wraps;
    uint32_t value = SYST_CVR;
    if ((SCB_ICSR & SCB_ICSR_PENDSTSET) != 0u) {
        /* Wrapped, handler not yet run: count the wrap and re-read after it. */
        value = SYST_CVR;
        ++wraps;
    }
    irq_enable();
    return (uint64_t)wraps * (SYSTICK_RELOAD + 1u) + (SYSTICK_RELOAD - value);
}
