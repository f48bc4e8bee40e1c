/* Exposes the engine's fixed-point helpers over arrays for ctypes (tests only). */
#include <stdint.h>

#include "ek_fixedpoint.h"

void shim_srdhm(const int32_t *a, const int32_t *b, int32_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = ek_saturating_rounding_doubling_high_mul(a[i], b[i]);
    }
}

void shim_rdbpot(const int32_t *x, const int32_t *e, int32_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = ek_rounding_divide_by_pot(x[i], e[i]);
    }
}

void shim_mbqm(const int32_t *x, const int32_t *m, const int32_t *s, int32_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = ek_multiply_by_quantized_multiplier(x[i], m[i], s[i]);
    }
}

void shim_exp(const int32_t *a, int32_t integer_bits, int32_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = ek_exp_on_negative_values(a[i], integer_bits);
    }
}

void shim_one_over_one_plus_x(const int32_t *a, int32_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = ek_one_over_one_plus_x(a[i]);
    }
}

void shim_logistic(const int32_t *a, int32_t integer_bits, int32_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = ek_logistic_fixed(a[i], integer_bits);
    }
}

void shim_divide_by_pot_fixed(const int32_t *x, const int32_t *e, int32_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = ek_divide_by_pot_fixed(x[i], e[i], (1 << e[i]) >> 1, e[i] > 0);
    }
}

void shim_srdhm_of_half(const int32_t *a, const int32_t *b, int32_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = ek_mul_high_rounded(2 * a[i], b[i]); /* |a| < 2^30 */
    }
}
