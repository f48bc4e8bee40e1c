/* Line-oriented printing on top of platform_write(): buffers up to one chunk, no heap. */
#include "console.h"

#include "platform.h"

#define CONSOLE_CHUNK 128

static char console_buf[CONSOLE_CHUNK];
static size_t console_len;

static void console_flush(void)
{
    if (console_len > 0) {
        platform_write(console_buf, console_len);
        console_len = 0;
    }
}

void console_char(char c)
{
    if (console_len == CONSOLE_CHUNK) {
        console_flush();
    }
    console_buf[console_len++] = c;
}

void console_str(const char *s)
{
    while (*s != '\0') {
        console_char(*s++);
    }
}

void console_u64(uint64_t v)
{
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (n > 0) {
        console_char(digits[--n]);
    }
}

void console_int(int32_t v)
{
    if (v < 0) {
        console_char('-');
        console_u64((uint64_t)(-(int64_t)v));
    } else {
        console_u64((uint64_t)v);
    }
}

void console_endline(void)
{
    console_char('\n');
    console_flush();
}
