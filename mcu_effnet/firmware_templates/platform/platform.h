/* The platform layer every firmware project uses: console, cycle/instruction counter, exit,
 * and (under QEMU, through semihosting) host files. Board-specific code lives in one driver
 * file per output channel; main.c and the model never mention a board. */
#ifndef MCU_EFFNET_PLATFORM_H
#define MCU_EFFNET_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include "board_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called by the reset handler before main(): clocks (left at reset defaults), console, counter. */
void platform_init(void);

/* Console: bytes to the host (semihosting under QEMU, a UART on the board). */
void platform_write(const char *data, size_t len);

/* Free-running 64-bit counter: SysTick ticks under QEMU, DWT->CYCCNT core cycles on hardware. */
uint64_t platform_counter(void);
void counter_init(void); /* called by platform_init() */

/* Deepest stack use so far in bytes (the stack is painted at reset). */
size_t platform_stack_used(void);

/* Stops: under QEMU the emulator exits with `status`; on a board the core waits in a loop. */
void platform_exit(int status) __attribute__((noreturn));

#if PLATFORM_SEMIHOSTING
/* Host files (semihosting SYS_OPEN/READ/WRITE/FLEN/CLOSE); paths are relative to the
 * directory QEMU runs in. A negative handle means the file could not be opened. */
#define PLATFORM_FILE_READ 1  /* "rb" */
#define PLATFORM_FILE_WRITE 5 /* "wb" */
int platform_file_open(const char *path, int mode);
long platform_file_length(int handle);
/* Both return the number of bytes transferred. */
size_t platform_file_read(int handle, void *buf, size_t len);
size_t platform_file_write(int handle, const void *buf, size_t len);
void platform_file_close(int handle);
#endif

#ifdef __cplusplus
}
#endif

#endif /* MCU_EFFNET_PLATFORM_H */
