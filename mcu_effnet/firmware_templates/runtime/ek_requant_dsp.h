/* Requantization of the DSP convolution kernels (internal: ek_depthwise_dsp.c, ek_conv_dsp.c).
 * Include after ek_dsp.h. */
#ifndef EK_REQUANT_DSP_H
#define EK_REQUANT_DSP_H

#include <stdint.h>
#include <string.h>

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
