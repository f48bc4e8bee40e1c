/* The 16x8 kernels (ek_int16.h), as TFLite Micro's reference int16 kernels compute them. */
#include "ek_int16.h"

#include "ek_binary_ops.h"
#include "ek_fixedpoint.h"

/* The tail of the weighted ops: the accumulator (bias added) requantized and clamped. With a
 * narrow accumulator the sum was kept in int32 (wrapping as the reference's int32_t). */
static inline int16_t finish(int64_t acc, int32_t wide, int32_t multiplier, int32_t shift, int32_t lo, int32_t hi)
{
    const int32_t scaled = wide ? ek_multiply_by_quantized_multiplier64(acc, multiplier, shift)
                                : ek_multiply_by_quantized_multiplier((int32_t)(uint32_t)(uint64_t)acc, multiplier, shift);
    return (int16_t)ek_clamp(scaled, lo, hi);
}

void ek_conv2d_s16(const ek_conv16_params *p, const int16_t *input, int16_t *output)
{
    int32_t n, oy, ox, oc, ky, kx, ic;
    for (n = 0; n < p->batches; ++n) {
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                for (oc = 0; oc < p->out_c; ++oc) {
                    int64_t acc = 0;
                    uint32_t acc32 = 0u; /* the int32 accumulator, wrapping */
                    for (ky = 0; ky < p->k_h; ++ky) {
                        const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
                        if (iy < 0 || iy >= p->in_h) {
                            continue;
                        }
                        for (kx = 0; kx < p->k_w; ++kx) {
                            const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;
                            const int16_t *x;
                            const int8_t *w;
                            if (ix < 0 || ix >= p->in_w) {
                                continue;
                            }
                            x = input + ((n * p->in_h + iy) * p->in_w + ix) * p->in_c;
                            w = p->weights + ((oc * p->k_h + ky) * p->k_w + kx) * p->in_c;
                            for (ic = 0; ic < p->in_c; ++ic) {
                                const int32_t product = (int32_t)x[ic] * w[ic]; /* |.| < 2^22 */
                                acc += product;
                                acc32 += (uint32_t)product;
                            }
                        }
                    }
                    *output++ = finish(p->wide_accumulator ? acc + p->bias[oc] : (int64_t)(int32_t)(acc32 + (uint32_t)p->bias[oc]),
                                       p->wide_accumulator, p->multiplier[oc], p->shift[oc], p->act_min, p->act_max);
                }
            }
        }
    }
}

void ek_depthwise_conv2d_s16(const ek_conv16_params *p, const int16_t *input, int16_t *output)
{
    int32_t n, oy, ox, ic, m, ky, kx;
    for (n = 0; n < p->batches; ++n) {
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                for (ic = 0; ic < p->in_c; ++ic) {
                    for (m = 0; m < p->depth_multiplier; ++m) {
                        const int32_t oc = ic * p->depth_multiplier + m;
                        int64_t acc = 0;
                        for (ky = 0; ky < p->k_h; ++ky) {
                            const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
                            if (iy < 0 || iy >= p->in_h) {
                                continue;
                            }
                            for (kx = 0; kx < p->k_w; ++kx) {
                                const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;
                                if (ix < 0 || ix >= p->in_w) {
                                    continue;
                                }
                                acc += (int64_t)input[((n * p->in_h + iy) * p->in_w + ix) * p->in_c + ic] *
                                       p->weights[(ky * p->k_w + kx) * p->out_c + oc];
                            }
                        }
                        *output++ = finish(acc + p->bias[oc], 1, p->multiplier[oc], p->shift[oc], p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

void ek_fully_connected_s16(const ek_fc16_params *p, const int16_t *input, int16_t *output)
{
    int32_t r, u, d;
    for (r = 0; r < p->rows; ++r) {
        const int16_t *row = input + r * p->depth;
        for (u = 0; u < p->units; ++u) {
            const int8_t *w = p->weights + u * p->depth;
            const int32_t k = p->per_channel ? u : 0;
            int64_t acc = 0;
            uint32_t acc32 = 0u;
            for (d = 0; d < p->depth; ++d) {
                const int32_t product = (int32_t)row[d] * w[d];
                acc += product;
                acc32 += (uint32_t)product;
            }
            *output++ = finish(p->wide_accumulator ? acc + p->bias[u] : (int64_t)(int32_t)(acc32 + (uint32_t)p->bias[u]),
                               p->wide_accumulator, p->multiplier[k], p->shift[k], p->act_min, p->act_max);
        }
    }
}

/* ADD, SUB, MUL on int16: the int8 arithmetic with the 2^15 lift Prepare chose (left_shift) and
 * the int16 clamp in act_min / act_max; |x| * 2^15 < 2^31, so no int32 step overflows. */
void ek_add_s16(const ek_binary_params *p, const int16_t *in1, const int16_t *in2, int16_t *output)
{
    EK_BROADCAST_LOOP(int16_t, p->out_dims, p->in1_strides, p->in2_strides, in1, in2, output, ek_add_one(p, va, vb));
}

void ek_sub_s16(const ek_binary_params *p, const int16_t *in1, const int16_t *in2, int16_t *output)
{
    EK_BROADCAST_LOOP(int16_t, p->out_dims, p->in1_strides, p->in2_strides, in1, in2, output, ek_sub_one(p, va, vb));
}

void ek_mul_s16(const ek_binary_params *p, const int16_t *in1, const int16_t *in2, int16_t *output)
{
    EK_BROADCAST_LOOP(int16_t, p->out_dims, p->in1_strides, p->in2_strides, in1, in2, output, ek_mul_one(p, va, vb));
}

static inline int32_t requantize_one(const ek_requantize_params *p, int32_t x)
{
    const int32_t y = ek_multiply_by_quantized_multiplier(x - p->in_zero_point, p->multiplier, p->shift) + p->out_zero_point;
    return ek_clamp(y, p->act_min, p->act_max);
}

void ek_requantize_s8_s16(const ek_requantize_params *p, const int8_t *input, int16_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = (int16_t)requantize_one(p, input[i]);
    }
}

void ek_requantize_s16_s8(const ek_requantize_params *p, const int16_t *input, int8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = (int8_t)requantize_one(p, input[i]);
    }
}

void ek_requantize_s16_s16(const ek_requantize_params *p, const int16_t *input, int16_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = (int16_t)requantize_one(p, input[i]);
    }
}

void ek_mean_s16(const ek_mean_params *p, const int16_t *input, int16_t *output)
{
    const int32_t zp_total = p->in_zero_point * p->reduce;
    int32_t o, i, r;
    for (o = 0; o < p->outer; ++o) {
        const int16_t *block = input + o * p->reduce * p->inner;
        for (i = 0; i < p->inner; ++i) {
            uint32_t sum = 0u; /* the reference's int32 sum, wrapping */
            int32_t value;
            for (r = 0; r < p->reduce; ++r) {
                sum += (uint32_t)(int32_t)block[r * p->inner + i];
            }
            value = ek_multiply_by_quantized_multiplier(ek_sub32((int32_t)sum, zp_total), p->multiplier, p->shift) +
                    p->out_zero_point;
            output[o * p->inner + i] = (int16_t)ek_clamp(value, -32768, 32767);
        }
    }
}

/* LUTLookup: the table at the high 9 bits, interpolated on the low 7 (rounded). */
static inline int16_t lut_lookup(int32_t value, const int16_t *lut)
{
    const int32_t index = 256 + (value >> 7);
    const int16_t base = lut[index];
    const int16_t slope = (int16_t)(lut[index + 1] - base);
    return (int16_t)(base + ((slope * (value & 0x7f) + 64) >> 7));
}

static inline int32_t leading_zeros(uint32_t x)
{
    int32_t n = 0;
    while (n < 32 && (x & 0x80000000u) == 0u) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* Writes each exp (Q0.15) to the output first and rescales it in place by the row's
 * reciprocal, as the reference does; the output may be the input buffer (each element is
 * read before it is written, and the row maximum is taken first). */
void ek_softmax_s16(const ek_softmax16_params *p, const int16_t *input, int16_t *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const int16_t *x = input + r * p->depth;
        int16_t *y = output + r * p->depth;
        int16_t max_in_row = -32768;
        uint32_t sum = 0u;
        int32_t headroom_plus_one, shifted, centred, right_shift;
        int16_t reciprocal;
        for (c = 0; c < p->depth; ++c) {
            max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t scaled = ek_multiply_by_quantized_multiplier(x[c] - max_in_row, p->in_multiplier, p->in_left_shift);
            y[c] = lut_lookup(ek_clamp(ek_add32(scaled, 32767), -32768, 32767), p->exp_lut);
            sum += (uint32_t)(int32_t)y[c];
        }
        headroom_plus_one = leading_zeros(sum);
        shifted = (int32_t)((((int64_t)(int32_t)sum << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        centred = ek_clamp(shifted - ((1 << 15) + (1 << 16)), -32768, 32767);
        reciprocal = lut_lookup(centred, p->one_over_one_plus_x_lut);
        right_shift = 31 - headroom_plus_one;
        for (c = 0; c < p->depth; ++c) {
            const int64_t product = (int64_t)y[c] * reciprocal + ((int64_t)1 << (right_shift - 1));
            y[c] = (int16_t)ek_clamp((int32_t)(product >> right_shift), 0, 32767);
        }
    }
}

/* The input at the table's scale, 3 * 4096 per unit: Prepare's multiplier and rounding right
 * shift, or (in_multiplier 0, a power-of-two input scale) 3 << in_left_shift alone. */
typedef struct {
    int32_t multiplier, left_shift, half;
} table_scaling;

static table_scaling table_scaling_of(const ek_logistic16_params *p)
{
    table_scaling s;
    s.multiplier = p->in_multiplier;
    s.left_shift = p->in_left_shift;
    if (s.multiplier == 0) {
        s.multiplier = 3 << s.left_shift;
        s.left_shift = 0;
    }
    s.half = s.left_shift > 0 ? 1 << (s.left_shift - 1) : 0;
    return s;
}

/* The sigmoid table (0.16) at magnitude >> step_bits, scaled by 2^step_bits and linearly
 * interpolated on the low step_bits bits; `saturated` past its last step. */
static inline uint32_t sigmoid_interpolate(const uint16_t *table, uint32_t magnitude, int32_t step_bits,
                                           uint32_t saturated)
{
    const uint32_t index = magnitude >> step_bits;
    uint32_t lower, upper;
    if (index >= 255u) {
        return saturated;
    }
    lower = table[index];
    upper = table[index + 1u];
    return (lower << step_bits) + (magnitude & ((1u << step_bits) - 1u)) * (upper - lower);
}

/* Interpolates the sigmoid table on |x| at 1 / (3 * 4096) per step and mirrors negative
 * inputs (sigmoid(-x) = 1 - sigmoid(x)); in place allowed. */
void ek_logistic_s16(const ek_logistic16_params *p, const int16_t *input, int16_t *output)
{
    const table_scaling s = table_scaling_of(p);
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t value = (input[i] * s.multiplier + s.half) >> s.left_shift;
        const uint32_t magnitude = (uint32_t)(value < 0 ? -value : value);
        uint32_t result = sigmoid_interpolate(p->table, magnitude, 9, 0x7FFFu << 10);
        result = value >= 0 ? result + (1u << 9) : (1u << (16 + 9)) - result + (1u << 9) - 1u;
        output[i] = (int16_t)(result >> 10);
    }
}

/* tanh(x) = 2 sigmoid(2x) - 1: the same table read at twice the input (steps of 256), the
 * result recentred on zero; in place allowed. */
void ek_tanh_s16(const ek_logistic16_params *p, const int16_t *input, int16_t *output)
{
    const table_scaling s = table_scaling_of(p);
    const int32_t centre = 1 << (14 + 9), half = 1 << (9 - 2);
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t value = (input[i] * s.multiplier + s.half) >> s.left_shift;
        const uint32_t magnitude = (uint32_t)(value < 0 ? -value : value);
        const int32_t result = (int32_t)sigmoid_interpolate(p->table, magnitude, 8, 0xFFFFu << 8); /* < 2^24 */
        output[i] = (int16_t)((value >= 0 ? result - centre + half : centre - result + half - 1) >> (9 - 1));
    }
}
