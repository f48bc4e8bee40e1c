/* CONV_2D and DEPTHWISE_CONV_2D, int8 with per-channel requantization.
 *
 * acc = bias[oc] + sum over the taps inside the input of (x + in_offset) * w; taps that
 * fall into the padding contribute nothing. Then out = clamp(out_offset + MBQM(acc)). */
#include "ek_kernels.h"
#include "ek_fixedpoint.h"

#include <stddef.h>

void ek_conv2d(const ek_conv_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_row = p->in_w * p->in_c;
    const int32_t in_image = p->in_h * in_row;
    const int32_t filter_size = p->k_h * p->k_w * p->in_c;
    int32_t b, oy, ox, oc, ky, kx, ic;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * in_image;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                for (oc = 0; oc < p->out_c; ++oc) {
                    const int8_t *filter = p->weights + oc * filter_size;
                    int32_t acc = 0;
                    for (ky = 0; ky < p->k_h; ++ky) {
                        const int32_t y = y0 + ky * p->dil_h;
                        if (y < 0 || y >= p->in_h) {
                            continue;
                        }
                        for (kx = 0; kx < p->k_w; ++kx) {
                            const int32_t x = x0 + kx * p->dil_w;
                            const int8_t *px;
                            const int8_t *pw;
                            if (x < 0 || x >= p->in_w) {
                                continue;
                            }
                            px = image + y * in_row + x * p->in_c;
                            pw = filter + (ky * p->k_w + kx) * p->in_c;
                            for (ic = 0; ic < p->in_c; ++ic) {
                                acc += ((int32_t)px[ic] + p->in_offset) * (int32_t)pw[ic];
                            }
                        }
                    }
                    if (p->bias != NULL) {
                        acc += p->bias[oc];
                    }
                    acc = ek_mbqm(acc, p->multiplier[oc], p->shift[oc]) + p->out_offset;
                    *output++ = (int8_t)ek_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

void ek_depthwise_conv2d(const ek_conv_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_row = p->in_w * p->in_c;
    const int32_t in_image = p->in_h * in_row;
    const int32_t m = p->depth_multiplier;
    int32_t b, oy, ox, ic, j, ky, kx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * in_image;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                for (ic = 0; ic < p->in_c; ++ic) {
                    for (j = 0; j < m; ++j) {
                        const int32_t oc = ic * m + j;
                        int32_t acc = 0;
                        for (ky = 0; ky < p->k_h; ++ky) {
                            const int32_t y = y0 + ky * p->dil_h;
                            if (y < 0 || y >= p->in_h) {
                                continue;
                            }
                            for (kx = 0; kx < p->k_w; ++kx) {
                                const int32_t x = x0 + kx * p->dil_w;
                                if (x < 0 || x >= p->in_w) {
                                    continue;
                                }
                                acc += ((int32_t)image[y * in_row + x * p->in_c + ic] + p->in_offset) *
                                       (int32_t)p->weights[(ky * p->k_w + kx) * p->out_c + oc];
                            }
                        }
                        if (p->bias != NULL) {
                            acc += p->bias[oc];
                        }
                        acc = ek_mbqm(acc, p->multiplier[oc], p->shift[oc]) + p->out_offset;
                        output[oc] = (int8_t)ek_clamp(acc, p->act_min, p->act_max);
                    }
                }
                output += p->out_c;
            }
        }
    }
}
