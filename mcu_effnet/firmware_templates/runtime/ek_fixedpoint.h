/* Fixed-point helpers of the int8 engine (internal to the kernels).
 *
 * The integer arithmetic of TFLite Micro's reference kernels: gemmlowp's saturating
 * rounding doubling high multiply and rounding divide by a power of two (halves away
 * from zero), TFLite's MultiplyByQuantizedMultiplier with double rounding, and the
 * fixed-point exp / reciprocal / logistic used by SOFTMAX and LOGISTIC.
 *
 * Left shifts of possibly negative values go through uint32_t (a left shift of a
 * negative int is undefined in C99); right shifts of negative values rely on the
 * arithmetic shift every supported compiler (gcc, arm-none-eabi-gcc) implements.
 */
#ifndef EK_FIXEDPOINT_H
#define EK_FIXEDPOINT_H

#include <stdint.h>

#define EK_INT32_MIN ((int32_t)(-2147483647 - 1))
#define EK_INT32_MAX ((int32_t)2147483647)

static inline int32_t ek_shl32(int32_t x, int32_t amount)
{
    return (int32_t)((uint32_t)x << amount);
}

/* Wrapping int32 addition and subtraction (as the reference's int32_t overflow does). */
static inline int32_t ek_add32(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t ek_sub32(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* gemmlowp's SaturatingRoundingDoublingHighMul: the high 32 bits of 2*a*b, rounded. gemmlowp
 * adds 2^30 to a non-negative product and 1 - 2^30 to a negative one, then divides by 2^31
 * truncating toward zero; for a negative t = ab + 1 - 2^30 that truncation is
 * floor((t + 2^31 - 1) / 2^31) = floor((ab + 2^30) / 2^31), the same expression as for a
 * non-negative product, so one add and one arithmetic shift do both. The single overflow
 * (INT32_MIN squared) saturates. */
static inline int32_t ek_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == EK_INT32_MIN && b == EK_INT32_MIN) {
        return EK_INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* x / 2^exponent, rounded to nearest with halves away from zero; exponent in [0, 31]. */
static inline int32_t ek_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite's MultiplyByQuantizedMultiplier (double rounding). */
static inline int32_t ek_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return ek_rounding_divide_by_pot(ek_saturating_rounding_doubling_high_mul(ek_shl32(x, left), multiplier), right);
}

/* TFLite's int64 MultiplyByQuantizedMultiplier (16x8 kernels): the multiplier rounded to
 * Q0.15, then one rounding right shift by 15 - shift (|x| < 2^47 keeps the product inside int64). */
static inline int32_t ek_multiply_by_quantized_multiplier64(int64_t x, int32_t multiplier, int32_t shift)
{
    const int64_t reduced = multiplier < 0x7FFF0000 ? (int64_t)((multiplier + (1 << 15)) >> 16) : 0x7FFF;
    const int32_t total = 15 - shift;
    return (int32_t)((x * reduced + ((int64_t)1 << (total - 1))) >> total);
}

/* The high word of a * b rounded (adds 2^31 before taking bits 32-63): one SMMULR on cores
 * with the DSP extension. SRDHM(x, m) is this of (2x, m) whenever 2x fits in int32. */
static inline int32_t ek_mul_high_rounded(int32_t a, int32_t b)
{
#if defined(__ARM_FEATURE_DSP) && !defined(EK_ACLE_EMULATION)
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32);
#endif
}

/* RoundingDivideByPOT for an exponent in [0, 30] fixed per call: `half` = (1 << exponent) >> 1 and
 * `negative_step` = 1 if exponent > 0, else 0. Halves away from zero: a negative x first
 * steps down by one, so floor((x - 1 + half) / 2^e) rounds -2.5 to -3 and -1.5 to -2. */
static inline int32_t ek_divide_by_pot_fixed(int32_t x, int32_t exponent, int32_t half, int32_t negative_step)
{
    return (x + half - ((x >> 31) & negative_step)) >> exponent;
}

static inline int32_t ek_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT on an int32 raw value. */
static inline int32_t ek_saturating_rounding_multiply_by_pot(int32_t x, int32_t exponent)
{
    if (exponent > 0) {
        const int32_t threshold = (int32_t)(((uint32_t)1 << (31 - exponent)) - 1u);
        if (x > threshold) {
            return EK_INT32_MAX;
        }
        if (x < -threshold) {
            return EK_INT32_MIN;
        }
        return ek_shl32(x, exponent);
    }
    if (exponent < 0) {
        return ek_rounding_divide_by_pot(x, -exponent);
    }
    return x;
}

/* Fixed-point transcendental functions (ek_fixedpoint.c). Raw values: a FixedPoint with
 * `integer_bits` integer bits stores r / 2^(31 - integer_bits). */
int32_t ek_exp_on_negative_values(int32_t a, int32_t integer_bits); /* -> Q0.31 */
int32_t ek_exp5_on_negative_values(int32_t a);                       /* the same, integer_bits 5 */
int32_t ek_one_over_one_plus_x(int32_t a);                           /* Q0.31 in [0, 1) -> Q0.31 */
int32_t ek_logistic_fixed(int32_t a, int32_t integer_bits);          /* -> Q0.31 */

#endif /* EK_FIXEDPOINT_H */
