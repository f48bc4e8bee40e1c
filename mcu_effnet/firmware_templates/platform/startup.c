/* Reset handler and vector table for Cortex-M4/M7/M33, in C (no assembly file).
 *
 * The linker script provides the symbols: _sidata (load address of .data in flash),
 * _sdata/_edata, _sbss/_ebss, __init_array_start/end, and _estack (top of the stack, which
 * sits at the bottom of RAM so an overflow faults instead of corrupting data). */
#include <stdint.h>

#include "cmsis_regs.h"
#include "platform.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack, __stack_bottom;

#define STACK_PAINT 0xA5A5A5A5u
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void SecureFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef union {
    void (*handler)(void);
    void *stack_top;
} vector_entry;

/* The 16 system exceptions; no device interrupt is used, so none is listed. */
__attribute__((section(".isr_vector"), used)) const vector_entry vector_table[16] = {
    {.stack_top = &_estack},
    {.handler = Reset_Handler},
    {.handler = NMI_Handler},
    {.handler = HardFault_Handler},
    {.handler = MemManage_Handler},
    {.handler = BusFault_Handler},
    {.handler = UsageFault_Handler},
    {.handler = SecureFault_Handler},
    {.handler = 0},
    {.handler = 0},
    {.handler = 0},
    {.handler = SVC_Handler},
    {.handler = DebugMon_Handler},
    {.handler = 0},
    {.handler = PendSV_Handler},
    {.handler = SysTick_Handler},
};

void Reset_Handler(void)
{
    /* Full access to CP10/CP11 before any floating-point instruction can run. */
    SCB_CPACR |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    SCB_VTOR = (uint32_t)(uintptr_t)vector_table;

    /* Paint the stack below the reset handler's frame, so platform_stack_used() can find the
     * deepest point it reached. */
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = &__stack_bottom; p < sp - 16; ++p) {
        *p = STACK_PAINT;
    }

    const uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
    /* Static constructors (C++ runtimes such as TFLite Micro have them). */
    for (void (**ctor)(void) = __init_array_start; ctor < __init_array_end; ++ctor) {
        (*ctor)();
    }

    platform_init();
    platform_exit(main());
}

size_t platform_stack_used(void)
{
    const uint32_t *p = &__stack_bottom;
    while (p < &_estack && *p == STACK_PAINT) {
        ++p;
    }
    return (size_t)((const uint8_t *)&_estack - (const uint8_t *)p);
}

static void fault_report(const char *what)
{
    static const char prefix[] = "MCU-EFFNET FAULT ";
    const char *end = what;
    while (*end != '\0') {
        ++end;
    }
    platform_write(prefix, sizeof prefix - 1u);
    platform_write(what, (size_t)(end - what));
    platform_write("\n", 1u);
    platform_exit(3);
}

void HardFault_Handler(void) { fault_report("hardfault"); }

void Default_Handler(void) { fault_report("unexpected-exception"); }
