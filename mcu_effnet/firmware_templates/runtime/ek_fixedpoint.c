/* Fixed-point exp, reciprocal and logistic of the int8 engine (gemmlowp's arithmetic,
 * as TFLite Micro's SOFTMAX and LOGISTIC reference kernels use it). */
#include "ek_fixedpoint.h"

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: a Taylor expansion around -1/8. */
static int32_t exp_quarter_interval(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = ek_add32(a, (int32_t)1 << 28);
    const int32_t x2 = ek_saturating_rounding_doubling_high_mul(x, x);
    const int32_t x3 = ek_saturating_rounding_doubling_high_mul(x2, x);
    const int32_t x4 = ek_saturating_rounding_doubling_high_mul(x2, x2);
    const int32_t x4_over_4 = ek_rounding_divide_by_pot(x4, 2);
    const int32_t poly = ek_rounding_divide_by_pot(ek_add32(ek_saturating_rounding_doubling_high_mul(ek_add32(x4_over_4, x3), one_third), x2), 1);
    return ek_add32(exp_minus_one_eighth, ek_saturating_rounding_doubling_high_mul(exp_minus_one_eighth, ek_add32(x, poly)));
}

static inline int32_t exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    /* exp(-2^k) in Q0.31 for k = -2 .. 4: multiplied in for each set bit of the remainder. */
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t a_mod_quarter_minus_quarter = ek_sub32(a & (one_quarter - 1), one_quarter);
    int32_t result = exp_quarter_interval(ek_saturating_rounding_multiply_by_pot(a_mod_quarter_minus_quarter, integer_bits));
    const int32_t remainder = ek_sub32(a_mod_quarter_minus_quarter, a);
    int32_t k;
    for (k = -2; k <= 4; ++k) {
        if (integer_bits > k) {
            const uint32_t bit = (uint32_t)1 << (fractional_bits + k);
            if (((uint32_t)remainder & bit) != 0u) {
                result = ek_saturating_rounding_doubling_high_mul(result, barrel[k + 2]);
            }
        }
    }
    if (integer_bits > 5) {
        const int32_t clamp = -((int32_t)1 << (36 - integer_bits)); /* -32.0 */
        if (a < clamp) {
            result = 0;
        }
    }
    if (a == 0) {
        result = EK_INT32_MAX;
    }
    return result;
}

#if defined(__GNUC__)
__attribute__((noinline)) /* one copy of the general body, called by LOGISTIC and TANH */
#endif
int32_t ek_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    return exp_on_negative_values(a, integer_bits);
}

/* SOFTMAX's exp (5 integer bits): the bit tests and the clamp fold away, 252 bytes of code
 * against 532 for any integer_bits, and fewer instructions. */
int32_t ek_exp5_on_negative_values(int32_t a) { return exp_on_negative_values(a, 5); }

int32_t ek_one_over_one_plus_x(int32_t a)
{
    /* Newton-Raphson division in Q2.29 on half the denominator. */
    const int64_t sum = (int64_t)a + (int64_t)EK_INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c48_over_17 = 1515870810;
    const int32_t c_neg32_over_17 = -1010580540;
    const int32_t one_q2 = (int32_t)1 << 29;
    int32_t x = ek_add32(c48_over_17, ek_saturating_rounding_doubling_high_mul(half_denominator, c_neg32_over_17));
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = ek_saturating_rounding_doubling_high_mul(half_denominator, x);
        const int32_t one_minus = ek_sub32(one_q2, half_denominator_times_x);
        x = ek_add32(x, ek_saturating_rounding_multiply_by_pot(ek_saturating_rounding_doubling_high_mul(x, one_minus), 2));
    }
    /* x / 2 in Q1.30 has the same raw value; rescale Q1.30 -> Q0.31. */
    return ek_saturating_rounding_multiply_by_pot(x, 1);
}

int32_t ek_logistic_fixed(int32_t a, int32_t integer_bits)
{
    int32_t abs_input;
    int32_t positive_result;
    if (a == 0) {
        return (int32_t)1 << 30;
    }
    abs_input = a > 0 ? a : ek_sub32(0, a);
    positive_result = ek_one_over_one_plus_x(ek_exp_on_negative_values(ek_sub32(0, abs_input), integer_bits));
    return a > 0 ? positive_result : ek_sub32(EK_INT32_MAX, positive_result);
}
