/* TRANSPOSE_CONV on int8 and int16 (16x8) with per-channel requantization (TFLite Micro's
 * reference_integer_ops::TransposeConv): scatter into int32 (int16: int64) accumulators, then
 * requantize. */
#include <stdint.h>

#include "ek_kernels.h"
#include "ek_fixedpoint.h"
#include "ek_int16.h"

/* The scatter walk both element types share: every (input pixel, kernel tap) whose output
 * position lies inside the output, with `pixel` the input pixel's first channel and `out` the
 * accumulators of that output position; the block given adds the tap's products for every output channel. */
#define EK_TRANSPOSE_CONV_TAPS(p, ...)                                                       \
    do {                                                                                     \
        int32_t iy_, ix_, ky, kx;                                                            \
        for (iy_ = 0; iy_ < (p)->in_h; ++iy_) {                                              \
            for (ix_ = 0; ix_ < (p)->in_w; ++ix_) {                                          \
                const int32_t pixel_at = (iy_ * (p)->in_w + ix_) * (p)->in_c;                \
                for (ky = 0; ky < (p)->k_h; ++ky) {                                          \
                    const int32_t oy_ = iy_ * (p)->stride_h - (p)->pad_top + ky;             \
                    if (oy_ < 0 || oy_ >= (p)->out_h) {                                      \
                        continue;                                                            \
                    }                                                                        \
                    for (kx = 0; kx < (p)->k_w; ++kx) {                                      \
                        const int32_t ox_ = ix_ * (p)->stride_w - (p)->pad_left + kx;        \
                        if (ox_ < 0 || ox_ >= (p)->out_w) {                                  \
                            continue;                                                        \
                        }                                                                    \
                        {                                                                    \
                            const int32_t out_at = (oy_ * (p)->out_w + ox_) * (p)->out_c;    \
                            __VA_ARGS__                                                      \
                        }                                                                    \
                    }                                                                        \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
    } while (0)

void ek_transpose_conv(const ek_transpose_conv_params *p, const int8_t *input, int8_t *scratch, int8_t *output)
{
    int32_t *acc = (int32_t *)(void *)scratch; /* the planner aligns it to 4 bytes */
    const int32_t per_image = p->out_h * p->out_w * p->out_c;
    int32_t b, ic, oc, i;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * p->in_w * p->in_c;
        for (i = 0; i < per_image; ++i) {
            acc[i] = 0;
        }
        EK_TRANSPOSE_CONV_TAPS(p, {
            const int8_t *pixel = image + pixel_at;
            int32_t *out = acc + out_at;
            for (oc = 0; oc < p->out_c; ++oc) {
                const int8_t *w = p->weights + ((oc * p->k_h + ky) * p->k_w + kx) * p->in_c;
                int32_t sum = 0;
                for (ic = 0; ic < p->in_c; ++ic) {
                    sum += (pixel[ic] + p->in_offset) * w[ic];
                }
                /* the reference adds one product at a time; int32 sums wrap alike in any order */
                out[oc] = ek_add32(out[oc], sum);
            }
        });
        for (i = 0; i < per_image; ++i) {
            const int32_t c = i % p->out_c;
            const int32_t value = ek_multiply_by_quantized_multiplier(ek_add32(acc[i], p->bias[c]), p->multiplier[c], p->shift[c]) + p->out_offset;
            output[b * per_image + i] = (int8_t)ek_clamp(value, p->act_min, p->act_max);
        }
    }
}

void ek_transpose_conv_s16(const ek_transpose_conv16_params *p, const int16_t *input, int8_t *scratch,
                           int16_t *output)
{
    /* the planner's buffer is 4-byte aligned and 4 bytes longer than the accumulators */
    int64_t *acc = (int64_t *)(void *)(scratch + ((8u - ((uintptr_t)scratch & 7u)) & 7u));
    const int32_t per_image = p->out_h * p->out_w * p->out_c;
    int32_t b, ic, oc, i;
    for (b = 0; b < p->batches; ++b) {
        const int16_t *image = input + b * p->in_h * p->in_w * p->in_c;
        for (i = 0; i < per_image; ++i) {
            acc[i] = 0;
        }
        EK_TRANSPOSE_CONV_TAPS(p, {
            const int16_t *pixel = image + pixel_at;
            int64_t *out = acc + out_at;
            for (oc = 0; oc < p->out_c; ++oc) {
                const int8_t *w = p->weights + ((oc * p->k_h + ky) * p->k_w + kx) * p->in_c;
                int64_t sum = 0;
                for (ic = 0; ic < p->in_c; ++ic) {
                    sum += (int32_t)pixel[ic] * w[ic]; /* |.| < 2^22 */
                }
                out[oc] += sum;
            }
        });
        for (i = 0; i < per_image; ++i) {
            const int32_t c = i % p->out_c;
            const int32_t value = ek_multiply_by_quantized_multiplier64(acc[i] + p->bias[c], p->multiplier[c], p->shift[c]);
            output[b * per_image + i] = (int16_t)ek_clamp(value, p->act_min, p->act_max);
        }
    }
}
