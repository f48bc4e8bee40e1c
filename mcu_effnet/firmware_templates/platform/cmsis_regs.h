/* The few Cortex-M core registers the platform layer touches (Armv7-M / Armv8-M System
 * Control Space, identical on M4, M7 and M33). Written out rather than pulling in CMSIS. */
#ifndef MCU_EFFNET_CMSIS_REGS_H
#define MCU_EFFNET_CMSIS_REGS_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

#define SCB_ICSR REG32(0xE000ED04u)
#define SCB_VTOR REG32(0xE000ED08u)
#define SCB_CPACR REG32(0xE000ED88u)
#define SCB_ICSR_PENDSTSET (1u << 26)

#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2) /* 1: the processor clock */

#define DEMCR REG32(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL REG32(0xE0001000u)
#define DWT_CYCCNT REG32(0xE0001004u)
#define DWT_LAR REG32(0xE0001FB0u) /* Cortex-M7: the DWT is locked until this is written */
#define DWT_CTRL_CYCCNTENA (1u << 0)

static inline void irq_disable(void) { __asm__ volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm__ volatile("cpsie i" ::: "memory"); }

#endif /* MCU_EFFNET_CMSIS_REGS_H */
