/* Portable C versions of the ACLE DSP intrinsics the SIMD kernels use (tests only).
 *
 * The DSP kernels include this instead of <arm_acle.h> when built with -DEK_ACLE_EMULATION,
 * so the host build (with the sanitizers) runs the very same kernel code. Each function
 * follows the Arm ARM's pseudo-code for the instruction: lanes are signed halfwords or
 * bytes, accumulations wrap modulo 2^32 (the Q flag is not modelled). */
#ifndef ACLE_EMULATION_H
#define ACLE_EMULATION_H

#include <stdint.h>

typedef int32_t int16x2_t;
typedef int32_t int8x4_t;

static inline int32_t acle_lo16(uint32_t x) { return (int32_t)(int16_t)(uint16_t)(x & 0xFFFFu); }
static inline int32_t acle_hi16(uint32_t x) { return (int32_t)(int16_t)(uint16_t)(x >> 16); }
static inline int32_t acle_b(uint32_t x, int n) { return (int32_t)(int8_t)(uint8_t)((x >> (8 * n)) & 0xFFu); }
static inline uint32_t acle_pack16(int32_t lo, int32_t hi)
{
    return ((uint32_t)lo & 0xFFFFu) | (((uint32_t)hi & 0xFFFFu) << 16);
}
static inline int32_t acle_wrap(int64_t v) { return (int32_t)(uint32_t)(uint64_t)v; }

/* SXTB16: bytes 0 and 2 sign-extended into the two halfwords. */
static inline int16x2_t __sxtb16(int8x4_t x) { return (int16x2_t)acle_pack16(acle_b((uint32_t)x, 0), acle_b((uint32_t)x, 2)); }

/* SXTAB16: a + SXTB16(x), halfword by halfword (each lane wraps in 16 bits). */
static inline int16x2_t __sxtab16(int16x2_t a, int8x4_t x)
{
    return (int16x2_t)acle_pack16(acle_lo16((uint32_t)a) + acle_b((uint32_t)x, 0),
                                  acle_hi16((uint32_t)a) + acle_b((uint32_t)x, 2));
}

static inline int32_t __smlabb(int32_t a, int32_t b, int32_t acc)
{
    return acle_wrap((int64_t)acc + (int64_t)acle_lo16((uint32_t)a) * acle_lo16((uint32_t)b));
}
static inline int32_t __smlatt(int32_t a, int32_t b, int32_t acc)
{
    return acle_wrap((int64_t)acc + (int64_t)acle_hi16((uint32_t)a) * acle_hi16((uint32_t)b));
}
static inline int32_t __smlabt(int32_t a, int32_t b, int32_t acc)
{
    return acle_wrap((int64_t)acc + (int64_t)acle_lo16((uint32_t)a) * acle_hi16((uint32_t)b));
}
static inline int32_t __smlatb(int32_t a, int32_t b, int32_t acc)
{
    return acle_wrap((int64_t)acc + (int64_t)acle_hi16((uint32_t)a) * acle_lo16((uint32_t)b));
}
/* SMLAD: acc + lo*lo + hi*hi. */
static inline int32_t __smlad(int16x2_t a, int16x2_t b, int32_t acc)
{
    return acle_wrap((int64_t)acc + (int64_t)acle_lo16((uint32_t)a) * acle_lo16((uint32_t)b) +
                     (int64_t)acle_hi16((uint32_t)a) * acle_hi16((uint32_t)b));
}

/* USAT: x saturated to [0, 2^bits - 1]. */
static inline uint32_t __usat(int32_t x, uint32_t bits)
{
    const int32_t top = (int32_t)((1u << bits) - 1u);
    return (uint32_t)(x < 0 ? 0 : (x > top ? top : x));
}

/* Byte-wise unsigned arithmetic (the GE flags UADD8 / USUB8 set are not modelled). */
static inline uint32_t acle_bytes(const int32_t v[4])
{
    return ((uint32_t)v[0] & 0xFFu) | ((uint32_t)v[1] & 0xFFu) << 8 | ((uint32_t)v[2] & 0xFFu) << 16 |
           ((uint32_t)v[3] & 0xFFu) << 24;
}
static inline uint32_t __uqsub8(uint32_t a, uint32_t b)
{
    int32_t v[4];
    int n;
    for (n = 0; n < 4; ++n) {
        const int32_t d = (int32_t)((a >> (8 * n)) & 0xFFu) - (int32_t)((b >> (8 * n)) & 0xFFu);
        v[n] = d < 0 ? 0 : d;
    }
    return acle_bytes(v);
}
static inline uint32_t __uadd8(uint32_t a, uint32_t b)
{
    int32_t v[4];
    int n;
    for (n = 0; n < 4; ++n) {
        v[n] = (int32_t)((a >> (8 * n)) & 0xFFu) + (int32_t)((b >> (8 * n)) & 0xFFu);
    }
    return acle_bytes(v);
}
static inline uint32_t __uqadd8(uint32_t a, uint32_t b)
{
    int32_t v[4];
    int n;
    for (n = 0; n < 4; ++n) {
        const int32_t t = (int32_t)((a >> (8 * n)) & 0xFFu) + (int32_t)((b >> (8 * n)) & 0xFFu);
        v[n] = t > 255 ? 255 : t;
    }
    return acle_bytes(v);
}
static inline uint32_t __usub8(uint32_t a, uint32_t b)
{
    int32_t v[4];
    int n;
    for (n = 0; n < 4; ++n) {
        v[n] = (int32_t)((a >> (8 * n)) & 0xFFu) - (int32_t)((b >> (8 * n)) & 0xFFu);
    }
    return acle_bytes(v);
}

#endif /* ACLE_EMULATION_H */
