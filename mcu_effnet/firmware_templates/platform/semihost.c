/* Console, files and exit through Arm semihosting (BKPT 0xAB on M-profile), used under QEMU
 * with `-semihosting`. Operation numbers and parameter blocks follow Arm's "Semihosting for
 * AArch32 and AArch64" specification. */
#include "platform.h"

#if PLATFORM_SEMIHOSTING

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_FLEN = 0x0C,
    SYS_EXIT = 0x18,
    SYS_EXIT_EXTENDED = 0x20,
};

#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define ADP_STOPPED_RUN_TIME_ERROR 0x20023u

static int semihost_call(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static size_t cstr_len(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        ++n;
    }
    return n;
}

static int console_handle = -1;

void platform_init(void) { counter_init(); }

void platform_write(const char *data, size_t len)
{
    if (console_handle < 0) {
        console_handle = platform_file_open(":tt", 4 /* "w" */);
    }
    if (console_handle >= 0) {
        (void)platform_file_write(console_handle, data, len);
    }
}

int platform_file_open(const char *path, int mode)
{
    const uintptr_t block[3] = {(uintptr_t)path, (uintptr_t)mode, (uintptr_t)cstr_len(path)};
    return semihost_call(SYS_OPEN, block);
}

long platform_file_length(int handle)
{
    const uintptr_t block[1] = {(uintptr_t)handle};
    return (long)semihost_call(SYS_FLEN, block);
}

size_t platform_file_read(int handle, void *buf, size_t len)
{
    const uintptr_t block[3] = {(uintptr_t)handle, (uintptr_t)buf, (uintptr_t)len};
    const int not_read = semihost_call(SYS_READ, block);
    return (not_read < 0 || (size_t)not_read > len) ? 0u : len - (size_t)not_read;
}

size_t platform_file_write(int handle, const void *buf, size_t len)
{
    const uintptr_t block[3] = {(uintptr_t)handle, (uintptr_t)buf, (uintptr_t)len};
    const int not_written = semihost_call(SYS_WRITE, block);
    return (not_written < 0 || (size_t)not_written > len) ? 0u : len - (size_t)not_written;
}

void platform_file_close(int handle)
{
    const uintptr_t block[1] = {(uintptr_t)handle};
    (void)semihost_call(SYS_CLOSE, block);
}

void platform_exit(int status)
{
    /* SYS_EXIT_EXTENDED carries the status; QEMU exits with it. Should a host not support it,
     * plain SYS_EXIT still tells success (application exit) from failure (run-time error). */
    const uintptr_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)status};
    (void)semihost_call(SYS_EXIT_EXTENDED, block);
    (void)semihost_call(SYS_EXIT, (const void *)(uintptr_t)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT
                                                                          : ADP_STOPPED_RUN_TIME_ERROR));
    for (;;) {
    }
}

/* SYS_WRITE0 is kept for debugging from a fault handler without the console buffer. */
void semihost_write0(const char *s);
void semihost_write0(const char *s) { (void)semihost_call(SYS_WRITE0, s); }

#endif /* PLATFORM_SEMIHOSTING */
