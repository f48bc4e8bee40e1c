/* Requantization of the DSP convolution kernels (internal: ek_depthwise_dsp.c, ek_conv_dsp.c,
 * ek_conv_first_dsp.c, ek_depthwise_plane_dsp.c).
 * Include after ek_dsp.h. */
#ifndef EK_REQUANT_DSP_H
#define EK_REQUANT_DSP_H

#include <stdint.h>
#include <string.h>

/* In assembly, two channels' requantization (requantize_k) from accumulators A0, A1 into A0, A1,
 * with the record words read from REC (which walks past them) into r2-r4 (m, k, s of the first)
 * and r5-r7 (the second's): the k x k, first-layer and FULLY_CONNECTED routines' form. */
#define EK_ASM_REQUANT2(REC, A0, A1)               \
    "ldmia " REC "!, {r2, r3, r4, r5, r6, r7}\n\t" \
    "smmlar r2, " A0 ", r2, r3\n\t"                \
    "sub r2, r2, " A0 ", lsr #31\n\t"              \
    "asr r2, r2, r4\n\t"                           \
    "usat " A0 ", #8, r2, asr #1\n\t"              \
    "smmlar r5, " A1 ", r5, r6\n\t"                \
    "sub r5, r5, " A1 ", lsr #31\n\t"              \
    "asr r5, r5, r7\n\t"                           \
    "usat " A1 ", #8, r5, asr #1\n\t"

/* Requantization, exact for a shift <= -1 and |acc| < 2^30 (the generator picks this kernel
 * only then, dsp_layout.py), with the generator's `shift` array holding s = -shift - 1:
 * - MultiplyByQuantizedMultiplier's doubling high multiply (acc * m + 2^30) >> 31 is SMMULR
 *   of 2 * acc (2 * acc fits in int32): the callers pass 2 * acc (the k x k kernel accumulates
 *   it directly: the generator doubles its halfword weights and its bias);
 * - its rounding divide by 2^(s+1), halves away from zero, is
 *   (((v - (v < 0)) >> s) + 1) >> 1, and the output offset z joins the last step exactly as
 *   (t + 1 + 2 * (z + 128)) >> 1, which lands the result in [0, 255] terms (USAT) so four
 *   channels clamp to [act_min, act_max] at once as unsigned bytes. */
static inline uint32_t requantize_u8(int32_t acc2, int32_t multiplier, int32_t s, int32_t round_offset)
{
    int32_t v = ek_smmulr(acc2, multiplier); /* acc2 = 2 * acc */
    v = (v + (v >> 31)) >> s;
    return (uint32_t)__usat((v + round_offset) >> 1, 8);
}

/* The shorter form with a per-channel constant (ek_conv_dsp.c's groups, ek_pointwise_dsp.c's
 * pixel blocks, ek_depthwise_plane_dsp.c): the requantization from the doubled accumulator acc2
 * with multiplier m, constant k = (1 + 2 * (out_offset - act_min)) << s and s = -shift - 1.
 * TFLite's doubling high multiply is SMMULR of acc2; its rounding divide by 2^(s+1), halves away
 * from zero, is ((v - (v < 0)) >> s + 1) >> 1 (requantize_u8), and the output offset joins
 * before the last halving. Here SMMLAR adds k (both constants, shifted to where they join, a
 * multiple of 2^s: exact) and the correction takes acc's sign instead of v's: they differ only
 * where v = 0, which is never a half (s + 1 >= 1). Exact where v + k fits int32: |v| <= 2^30
 * (|acc| < 2^30, m < 2^31), so s <= 20 is enough (|k| < 2^29); the callers check. USAT's ASR #1
 * ends it: 4 instructions against requantize_u8's 5 (and a shared constant's load). The result is
 * min(max(q - act_min, 0), 255) for the output q, which clamp_k4 finishes. */
static inline uint32_t requantize_k(int32_t acc2, int32_t m, int32_t k, int32_t s)
{
    int32_t v = ek_smmlar(acc2, m, k);
    v -= (int32_t)((uint32_t)acc2 >> 31);
    return (uint32_t)__usat((v >> s) >> 1, 8);
}

/* The largest s = -shift - 1 requantize_k takes whatever the constant (see above). */
#define EK_REQUANTIZE_K_MAX_SHIFT 20

/* The activation clamp of up to four requantize_k bytes at once, u = min(max(q - lo, 0), 255)
 * with lo = act_min: UQADD8 of d = 255 - (act_max - act_min) saturates exactly where u passes
 * act_max - act_min; a wrapping UADD8 of act_min - d then gives min(u, act_max - act_min) +
 * act_min, the int8 output. `sat4` holds d, `shift4` act_min - d, in every byte. */
static inline uint32_t clamp_k4(uint32_t u, uint32_t sat4, uint32_t shift4)
{
    return __uadd8(__uqadd8(u, sat4), shift4);
}

/* Four requantized channels (bytes biased by 128) clamped and stored as int8. */
static inline void store4(int8_t *out, uint32_t word, uint32_t lo4, uint32_t hi4)
{
    word = __uadd8(__uqsub8(word, lo4), lo4);  /* max(word, act_min + 128) */
    word = __usub8(hi4, __uqsub8(hi4, word));  /* min(word, act_max + 128) */
    word ^= 0x80808080u;                       /* back to int8 */
    memcpy(out, &word, 4);
}

/* One requantized channel (see requantize_u8) clamped and stored as int8. */
static inline int8_t requantize1(int32_t acc2, int32_t multiplier, int32_t s, int32_t round_offset, uint32_t lo4,
                                 uint32_t hi4)
{
    const int32_t u = (int32_t)requantize_u8(acc2, multiplier, s, round_offset);
    const int32_t lo = (int32_t)(lo4 & 0xFFu), hi = (int32_t)(hi4 & 0xFFu);
    return (int8_t)((u < lo ? lo : (u > hi ? hi : u)) - 128);
}

#endif /* EK_REQUANT_DSP_H */
