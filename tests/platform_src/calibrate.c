/* SysTick calibration under QEMU -icount shift=0: a busy loop of a known instruction count
 * (SUBS + BNE per iteration, 2 * n instructions), timed for n and 2n iterations. */
#include <stdint.h>

#include "console.h"
#include "platform.h"

static void spin(uint32_t n)
{
    __asm__ volatile("1:\n\t"
                     "subs %0, %0, #1\n\t"
                     "bne 1b\n\t"
                     : "+r"(n)
                     :
                     : "cc");
}

static uint64_t timed_spin(uint32_t n)
{
    const uint64_t t0 = platform_counter();
    spin(n);
    return platform_counter() - t0;
}

int main(void)
{
    const uint32_t n = CALIBRATE_ITERATIONS;
    const uint64_t t1 = timed_spin(n);
    const uint64_t t2 = timed_spin(2u * n);
    console_str("CALIBRATE iterations=");
    console_u64(n);
    console_str(" ticks1=");
    console_u64(t1);
    console_str(" ticks2=");
    console_u64(t2);
    console_str(" hz=");
    console_u64(PLATFORM_COUNTER_HZ);
    console_endline();
    return 0;
}
