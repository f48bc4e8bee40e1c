/* The ops whose inputs or outputs are not activations: DEQUANTIZE int8 -> float32 (as TFLite
 * Micro's dequantize.cc), QUANTIZE float32 -> int8 / int16 (quantize.cc) and ARG_MAX int8 ->
 * int32 or int64 indices (arg_min_max.cc).
 *
 * DEQUANTIZE:
 *
 * TFLite Micro computes (float)((double)scale * (x - zero_point)). The exact product of a float32
 * scale (24-bit mantissa) and an integer below 2^9 fits in a double, so its float32 rounding is
 * the correctly rounded product, which is what one float32 multiplication gives: the same bits,
 * without double arithmetic (soft-float on every Cortex-M without a double FPU). */
#include "ek_kernels.h"

void ek_dequantize(const ek_dequantize_params *p, const int8_t *input, float *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = p->scale * (float)((int32_t)input[i] - p->zero_point);
    }
}

/* QUANTIZE float32 -> int8 / int16:
 *
 * TFLite Micro computes clamp((int32_t)roundf(x / (float)scale) + zero_point). The division is
 * one float32 operation here too. The quotient is clamped to [out_min - zp, out_max - zp] before
 * rounding, which changes nothing where the cast is defined (the bounds are integers) and keeps
 * the conversion in range; NaN fails every comparison and goes to the zero point. roundf is done
 * without libm: truncation of a clamped quotient is exact, and so is the fraction q - trunc(q),
 * whereas q + 0.5f could round up a quotient just below a half. */
static int32_t quantize_one(const ek_quantize_f32_params *p, float x)
{
    const float lo = (float)(p->out_min - p->zero_point), hi = (float)(p->out_max - p->zero_point);
    float q = x / p->scale, fraction;
    int32_t r;
    if (q != q) {
        return p->zero_point;
    }
    q = q < lo ? lo : (q > hi ? hi : q);
    r = (int32_t)q;
    fraction = q - (float)r;
    r += fraction >= 0.5f ? 1 : (fraction <= -0.5f ? -1 : 0);
    return r + p->zero_point;
}

void ek_quantize_f32(const ek_quantize_f32_params *p, const float *input, int8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = (int8_t)quantize_one(p, input[i]);
    }
}

void ek_quantize_f32_s16(const ek_quantize_f32_params *p, const float *input, int16_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = (int16_t)quantize_one(p, input[i]);
    }
}

/* The index of the first largest of the axis_size values at block[i], block[inner + i], ... */
static int32_t argmax_at(const ek_argmax_params *p, const int8_t *block, int32_t i)
{
    int32_t best = 0, k;
    int8_t best_value = block[i];
    for (k = 1; k < p->axis_size; ++k) {
        if (block[k * p->inner + i] > best_value) { /* strict: ties keep the first index */
            best_value = block[k * p->inner + i];
            best = k;
        }
    }
    return best;
}

void ek_argmax(const ek_argmax_params *p, const int8_t *input, int32_t *output)
{
    int32_t o, i;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            output[o * p->inner + i] = argmax_at(p, input + o * p->axis_size * p->inner, i);
        }
    }
}

void ek_argmax64(const ek_argmax_params *p, const int8_t *input, int64_t *output)
{
    int32_t o, i;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            output[o * p->inner + i] = argmax_at(p, input + o * p->axis_size * p->inner, i);
        }
    }
}
