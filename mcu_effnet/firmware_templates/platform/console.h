/* Line-oriented printing on top of platform_write(): no printf, no heap, no float. */
#ifndef MCU_EFFNET_CONSOLE_H
#define MCU_EFFNET_CONSOLE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void console_str(const char *s);
void console_int(int32_t v);
void console_u64(uint64_t v);
void console_char(char c);
/* Ends the line and hands the buffered bytes to the platform. */
void console_endline(void);

#ifdef __cplusplus
}
#endif

#endif /* MCU_EFFNET_CONSOLE_H */
