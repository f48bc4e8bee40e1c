/* LEAKY_RELU and TANH on int8, LEAKY_RELU on int16 (TFLite Micro's QuantizeLeakyRelu and
 * reference_integer_ops::Tanh).
 *
 * Both outputs depend on the input value alone: above 256 elements the kernels first
 * evaluate the 256 int8 values into a table on the stack, as LOGISTIC does. */
#include "ek_kernels.h"
#include "ek_fixedpoint.h"
#include "ek_int16.h"
#include "ek_unary_table.h"

/* QuantizeLeakyRelu before the clamp to the output type (shared by the int8 and int16 kernels). */
static inline int32_t leaky_relu_value(const ek_leaky_relu_params *p, int32_t value)
{
    const int32_t centred = value - p->in_zero_point;
    int32_t out = p->out_zero_point;
    if (centred >= 0) {
        out += ek_multiply_by_quantized_multiplier(centred, p->identity_multiplier, p->identity_shift);
    } else if (p->alpha_multiplier < 0) {
        /* a negative alpha: multiply by its magnitude, then negate (as the reference does) */
        out -= ek_multiply_by_quantized_multiplier(centred, -p->alpha_multiplier, p->alpha_shift);
    } else {
        out += ek_multiply_by_quantized_multiplier(centred, p->alpha_multiplier, p->alpha_shift);
    }
    return out;
}

static int8_t leaky_relu_one(const ek_leaky_relu_params *p, int32_t value)
{
    return (int8_t)ek_clamp(leaky_relu_value(p, value), -128, 127);
}

/* gemmlowp's (1 - a) / (1 + a) for a in Q0.31 in [0, 1): Newton-Raphson division in Q2.29. */
static int32_t one_minus_x_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + (int64_t)EK_INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t one_q2 = (int32_t)1 << 29;
    int32_t x = ek_add32(1515870810, ek_saturating_rounding_doubling_high_mul(half_denominator, -1010580540));
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t one_minus = ek_sub32(one_q2, ek_saturating_rounding_doubling_high_mul(half_denominator, x));
        x = ek_add32(x, ek_saturating_rounding_multiply_by_pot(ek_saturating_rounding_doubling_high_mul(x, one_minus), 2));
    }
    return ek_saturating_rounding_multiply_by_pot(ek_sub32(x, one_q2), 2); /* Q2.29 -> Q0.31 */
}

/* gemmlowp tanh of a FixedPoint with `integer_bits` integer bits, in Q0.31. -|a| doubled is the
 * same raw value read with one more integer bit. */
static int32_t tanh_fixed(int32_t a, int32_t integer_bits)
{
    const int32_t n = a < 0 ? a : ek_sub32(0, a);
    const int32_t t = one_minus_x_over_one_plus_x(ek_exp_on_negative_values(n, integer_bits + 1));
    if (a == 0) {
        return 0;
    }
    return a < 0 ? ek_sub32(0, t) : t;
}

static int8_t tanh_one(const ek_logistic_params *p, int32_t value)
{
    const int32_t centred = value - p->in_zero_point;
    if (centred <= -p->in_range_radius) {
        return -128;
    }
    if (centred >= p->in_range_radius) {
        return 127;
    }
    {
        const int32_t in_q4 = ek_multiply_by_quantized_multiplier(centred, p->in_multiplier, p->in_left_shift);
        return (int8_t)ek_clamp(ek_rounding_divide_by_pot(tanh_fixed(in_q4, 4), 31 - 7), -128, 127);
    }
}

void ek_leaky_relu(const ek_leaky_relu_params *p, const int8_t *input, int8_t *output)
{
    EK_UNARY_MAP(leaky_relu_one, p, input, output);
}

void ek_tanh(const ek_logistic_params *p, const int8_t *input, int8_t *output)
{
    EK_UNARY_MAP(tanh_one, p, input, output);
}

/* 16x8 LEAKY_RELU (zero points 0): computed per element, 65,536 inputs being too many for a table. */
void ek_leaky_relu_s16(const ek_leaky_relu_params *p, const int16_t *input, int16_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = (int16_t)ek_clamp(leaky_relu_value(p, input[i]), -32768, 32767);
    }
}
