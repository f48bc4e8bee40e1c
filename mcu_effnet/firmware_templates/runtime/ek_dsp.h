/* Shared helpers of the DSP-extension kernels (internal; Cortex-M4, M7, M33).
 *
 * The kernels use ACLE intrinsics (arm_acle.h: __sxtb16, __sxtab16, __smlad, ...). Two
 * instruction forms ACLE lacks in gcc 12 are written as one-instruction inline assembly: SXTB16 /
 * SXTAB16 with their built-in ROR #8 (gcc does not fold a separate rotate into them) and SMMULR.
 * Host tests build the same kernels with -DEK_ACLE_EMULATION and tests/acle_emulation.h, portable
 * versions of the intrinsics, so the sanitizers see exactly the code the firmware runs.
 */
#ifndef EK_DSP_H
#define EK_DSP_H

#include <stdint.h>
#include <string.h>

#if defined(EK_ACLE_EMULATION)
#include "acle_emulation.h" /* host tests */
#elif defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#else
#error "the DSP kernels need a core with the DSP extension (the generator emits them only for one)"
#endif

/* Inlined into each caller, so a kernel's constant arguments specialize it. */
#if defined(__GNUC__)
#define EK_DSP_INLINE static inline __attribute__((always_inline))
#else
#define EK_DSP_INLINE static inline
#endif

/* Four bytes from any address (LDR allows unaligned addresses on Armv7-M / Armv8-M Mainline). */
static inline uint32_t ek_load4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

#if defined(EK_ACLE_EMULATION)
static inline uint32_t ek_ror8(uint32_t x) { return (x >> 8) | (x << 24); }
/* SXTB16(ROR(x, 8)): bytes 1 and 3 sign-extended into the two halfwords. */
static inline int32_t ek_sxtb16_ror8(uint32_t x) { return __sxtb16((int32_t)ek_ror8(x)); }
static inline int32_t ek_sxtab16_ror8(int32_t a, uint32_t x) { return __sxtab16(a, (int32_t)ek_ror8(x)); }
/* SMMULR: the high word of a * b, rounded (adds 2^31 before taking bits 32-63). */
static inline int32_t ek_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 31)) >> 32);
}
/* SSAT #8: x clamped to [-128, 127]. */
static inline int32_t ek_ssat8(int32_t x) { return x < -128 ? -128 : (x > 127 ? 127 : x); }
/* SMUAD (the two halfword products summed) and SMULTB (a's top halfword times b's bottom one):
 * the products without an accumulator, which gcc 12's ACLE lacks. */
static inline int32_t ek_smuad(int32_t a, int32_t b) { return __smlad(a, b, 0); }
static inline int32_t ek_smultb(int32_t a, int32_t b) { return __smlatb(a, b, 0); }
/* PKHBT (a's bottom halfword, b's bottom one on top) and PKHTB ASR #16 (b's top halfword at the
 * bottom, a's top one on top), which gcc 12 does not form from the masks and shifts. */
static inline uint32_t ek_pkhbt16(uint32_t a, uint32_t b) { return (a & 0xFFFFu) | (b << 16); }
static inline uint32_t ek_pkhtb16(uint32_t a, uint32_t b) { return (a & 0xFFFF0000u) | (b >> 16); }
/* SMMLAR: c plus SMMULR's rounded high word of a * b (modulo 2^32). */
static inline int32_t ek_smmlar(int32_t a, int32_t b, int32_t c)
{
    return (int32_t)((uint32_t)ek_smmulr(a, b) + (uint32_t)c);
}
#else
static inline int32_t ek_ssat8(int32_t x) { return __ssat(x, 8); }
static inline int32_t ek_sxtb16_ror8(uint32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
static inline int32_t ek_sxtab16_ror8(int32_t a, uint32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}
static inline int32_t ek_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline uint32_t ek_pkhbt16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline uint32_t ek_pkhtb16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline int32_t ek_smmlar(int32_t a, int32_t b, int32_t c)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}
static inline int32_t ek_smuad(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smuad %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline int32_t ek_smultb(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smultb %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#endif

#endif /* EK_DSP_H */
