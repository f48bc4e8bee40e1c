/* Element-wise int8 ops: QUANTIZE / RELU (requantize and clamp), RELU6, LOGISTIC,
 * HARD_SWISH, SOFTMAX along the last axis, and a 256-entry table lookup (fused SiLU) (TFLite Micro's reference arithmetic).
 * Each output element is written after its input element is read, so the output may be
 * the input buffer itself. */
#include "ek_kernels.h"
#include "ek_fixedpoint.h"
#include "ek_unary_table.h"

#define EK_INT16_MIN (-32768)
#define EK_INT16_MAX 32767

void ek_requantize(const ek_requantize_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = ek_multiply_by_quantized_multiplier((int32_t)input[i] - p->in_zero_point, p->multiplier, p->shift) + p->out_zero_point;
        output[i] = (int8_t)ek_clamp(v, p->act_min, p->act_max);
    }
}

void ek_relu6(const ek_clamp_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = input[i];
        /* The upper bound wins should the two cross, as in the reference. */
        output[i] = (int8_t)(v > p->upper ? p->upper : (v < p->lower ? p->lower : v));
    }
}

static int8_t logistic_one(const ek_logistic_params *p, int32_t value)
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
        const int32_t out_q0 = ek_logistic_fixed(in_q4, 4);
        return (int8_t)ek_clamp(ek_rounding_divide_by_pot(out_q0, 31 - 8) - 128, -128, 127);
    }
}


void ek_logistic(const ek_logistic_params *p, const int8_t *input, int8_t *output)
{
    EK_UNARY_MAP(logistic_one, p, input, output);
}

/* int16 fixed-point helpers of HARD_SWISH (values carried in int32_t). */
static int32_t wrap16(int32_t x) { return (int32_t)(int16_t)(uint16_t)(uint32_t)x; }

static int32_t srdhm16(int32_t a, int32_t b)
{
    const int32_t ab = a * b;
    const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    if (a == EK_INT16_MIN && b == EK_INT16_MIN) {
        return EK_INT16_MAX;
    }
    return wrap16((ab + nudge) / (1 << 15));
}

static int32_t sdhm16(int32_t a, int32_t b)
{
    if (a == EK_INT16_MIN && b == EK_INT16_MIN) {
        return EK_INT16_MAX;
    }
    return wrap16((a * b) / (1 << 15));
}

static int32_t sat_shl16(int32_t x, int32_t amount)
{
    return ek_clamp(x * (1 << amount), EK_INT16_MIN, EK_INT16_MAX);
}

/* gemmlowp's int16 RoundingDivideByPOT: the mask is an int16, so exponents of 16 and more
 * turn it into -1 (the reference's own behaviour, kept). */
static int32_t rdbpot16(int32_t x, int32_t exponent)
{
    const int32_t mask = wrap16((int32_t)(((uint32_t)1 << exponent) - 1u));
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return wrap16((x >> exponent) + (remainder > threshold ? 1 : 0));
}

static int8_t hard_swish_one(const ek_hard_swish_params *p, int32_t input)
{
    const int32_t value = input - p->in_zero_point;
    const int32_t hires = value * (1 << 7);
    const int32_t preshift_output = srdhm16(hires, p->out_multiplier);
    int32_t reluish = hires;
    int32_t out;
    if (p->reluish_exponent > 0) {
        reluish = sat_shl16(reluish, p->reluish_exponent - 1);
    }
    reluish = srdhm16(reluish, p->reluish_multiplier);
    if (p->reluish_exponent > 0) {
        reluish = sat_shl16(reluish, 1);
    }
    if (p->reluish_exponent < 0) {
        reluish = rdbpot16(reluish, -p->reluish_exponent);
    }
    reluish = wrap16((reluish + (1 << 15)) >> 1);
    out = rdbpot16(sdhm16(reluish, preshift_output), -p->out_exponent);
    out = wrap16(out + p->out_zero_point);
    return (int8_t)ek_clamp(out, -128, 127);
}

void ek_hard_swish(const ek_hard_swish_params *p, const int8_t *input, int8_t *output)
{
    EK_UNARY_MAP(hard_swish_one, p, input, output);
}

static int32_t leading_zeros(uint32_t x)
{
#if defined(__GNUC__)
    return x == 0u ? 32 : __builtin_clz(x); /* CLZ */
#else
    int32_t n = 0;
    if (x == 0u) {
        return 32;
    }
    while ((x & 0x80000000u) == 0u) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

/* exp(diff * beta * input_scale) in Q0.31 for a difference to the row maximum (<= 0). */
static int32_t softmax_exp(const ek_softmax_params *p, int32_t diff)
{
    const int32_t scaled = ek_saturating_rounding_doubling_high_mul(ek_shl32(diff, p->in_left_shift), p->in_multiplier); /* Q5.26 */
    return ek_exp5_on_negative_values(scaled);
}

void ek_softmax(const ek_softmax_params *p, const int8_t *input, int8_t *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *row = input + r * p->depth;
        int8_t *out = output + r * p->depth;
        int32_t max_in_row = -128;
        int32_t sum_of_exps = 0; /* Q12.19 */
        int32_t headroom_plus_one, num_bits_over_unit, shifted_scale, exponent;
        for (c = 0; c < p->depth; ++c) {
            if (row[c] > max_in_row) {
                max_in_row = row[c];
            }
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)row[c] - max_in_row;
            if (diff >= p->diff_min) {
                sum_of_exps = ek_add32(sum_of_exps, ek_rounding_divide_by_pot(softmax_exp(p, diff), 12));
            }
        }
        headroom_plus_one = leading_zeros((uint32_t)sum_of_exps);
        num_bits_over_unit = 12 - headroom_plus_one;
        shifted_scale = ek_one_over_one_plus_x(ek_sub32(ek_shl32(sum_of_exps, headroom_plus_one), EK_INT32_MIN));
        exponent = num_bits_over_unit + 31 - 8;
        /* TFLite Micro aborts when a row's exps sum to 512 or more (exponent > 31). */
        if (exponent > 31) {
            exponent = 31;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)row[c] - max_in_row;
            int32_t value = -128;
            if (diff >= p->diff_min) {
                const int32_t unsat = ek_rounding_divide_by_pot(ek_saturating_rounding_doubling_high_mul(shifted_scale, softmax_exp(p, diff)), exponent);
                value = ek_clamp(unsat - 128, -128, 127);
            }
            out[c] = (int8_t)value;
        }
    }
}

void ek_lookup(const ek_lookup_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = p->table[(int32_t)input[i] + 128];
    }
}
