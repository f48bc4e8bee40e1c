/* CONV_2D and DEPTHWISE_CONV_2D, int8 with per-channel requantization.
 *
 * TFLite Micro's reference computes acc = bias[oc] + sum over the taps inside the input of
 * (x + in_offset) * w (taps in the padding contribute nothing), then
 * out = clamp(out_offset + MBQM(acc)). Here the generator folds the offset into the bias:
 * `bias[oc]` holds bias + in_offset * (sum of the channel's weights), so a window inside the
 * input needs only sum(x * w); a window reaching into the padding subtracts
 * in_offset * w for each tap outside. Integer arithmetic: the same accumulator, bit for bit. */
#include "ek_kernels.h"
#include "ek_fixedpoint.h"

/* sum(a[i] * b[i]) over n int8 pairs. */
static int32_t dot(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        acc += (int32_t)a[i] * b[i] + (int32_t)a[i + 1] * b[i + 1] + (int32_t)a[i + 2] * b[i + 2] +
               (int32_t)a[i + 3] * b[i + 3];
    }
    for (; i < n; ++i) {
        acc += (int32_t)a[i] * b[i];
    }
    return acc;
}

static int32_t sum(const int8_t *a, int32_t n)
{
    int32_t acc = 0;
    int32_t i;
    for (i = 0; i < n; ++i) {
        acc += a[i];
    }
    return acc;
}

static int8_t requantize(const ek_conv_params *p, int32_t acc, int32_t oc)
{
    acc = ek_multiply_by_quantized_multiplier(acc, p->multiplier[oc], p->shift[oc]) + p->out_offset;
    return (int8_t)ek_clamp(acc, p->act_min, p->act_max);
}

/* 1x1 convolution with stride 1 and no padding: a matrix product of pixels (rows of in_c)
 * by the weights (rows of in_c), computed two pixels by two output channels at a time so
 * each loaded value serves two multiply-accumulates. */
static void pointwise(const ek_conv_params *p, const int8_t *input, int8_t *output, int32_t pixels)
{
    const int32_t depth = p->in_c;
    const int32_t channels = p->out_c;
    int32_t px = 0;
    int32_t oc, k;
    for (; px + 2 <= pixels; px += 2) {
        const int8_t *x0 = input + px * depth;
        const int8_t *x1 = x0 + depth;
        int8_t *o0 = output + px * channels;
        int8_t *o1 = o0 + channels;
        for (oc = 0; oc + 2 <= channels; oc += 2) {
            const int8_t *w0 = p->weights + oc * depth;
            const int8_t *w1 = w0 + depth;
            int32_t a00 = p->bias[oc];
            int32_t a01 = p->bias[oc + 1];
            int32_t a10 = a00;
            int32_t a11 = a01;
            for (k = 0; k < depth; ++k) {
                const int32_t xa = x0[k];
                const int32_t xb = x1[k];
                const int32_t wa = w0[k];
                const int32_t wb = w1[k];
                a00 += xa * wa;
                a01 += xa * wb;
                a10 += xb * wa;
                a11 += xb * wb;
            }
            o0[oc] = requantize(p, a00, oc);
            o0[oc + 1] = requantize(p, a01, oc + 1);
            o1[oc] = requantize(p, a10, oc);
            o1[oc + 1] = requantize(p, a11, oc + 1);
        }
        for (; oc < channels; ++oc) {
            const int8_t *w = p->weights + oc * depth;
            o0[oc] = requantize(p, p->bias[oc] + dot(x0, w, depth), oc);
            o1[oc] = requantize(p, p->bias[oc] + dot(x1, w, depth), oc);
        }
    }
    for (; px < pixels; ++px) {
        const int8_t *x = input + px * depth;
        for (oc = 0; oc < channels; ++oc) {
            output[px * channels + oc] = requantize(p, p->bias[oc] + dot(x, p->weights + oc * depth, depth), oc);
        }
    }
}

void ek_conv2d(const ek_conv_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_row = p->in_w * p->in_c;
    const int32_t in_image = p->in_h * in_row;
    const int32_t filter_size = p->k_h * p->k_w * p->in_c;
    const int32_t span_h = (p->k_h - 1) * p->dil_h;
    const int32_t span_w = (p->k_w - 1) * p->dil_w;
    /* With no horizontal dilation a filter row is one run of k_w * in_c bytes in both the
     * input (NHWC) and the weights (OHWI). */
    const int32_t run = p->dil_w == 1 ? p->k_w * p->in_c : p->in_c;
    const int32_t runs_per_row = p->dil_w == 1 ? 1 : p->k_w;
    int32_t b, oy, ox, oc, ky, kx;
    if (p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
        p->pad_left == 0 && p->out_h == p->in_h && p->out_w == p->in_w) {
        pointwise(p, input, output, p->batches * p->in_h * p->in_w);
        return;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * in_image;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                const int inside = y0 >= 0 && x0 >= 0 && y0 + span_h < p->in_h && x0 + span_w < p->in_w;
                for (oc = 0; oc < p->out_c; ++oc) {
                    const int8_t *filter = p->weights + oc * filter_size;
                    int32_t acc = p->bias[oc];
                    if (inside) {
                        for (ky = 0; ky < p->k_h; ++ky) {
                            const int8_t *px = image + (y0 + ky * p->dil_h) * in_row + x0 * p->in_c;
                            const int8_t *pw = filter + ky * p->k_w * p->in_c;
                            for (kx = 0; kx < runs_per_row; ++kx) {
                                acc += dot(px + kx * p->dil_w * p->in_c, pw + kx * run, run);
                            }
                        }
                    } else {
                        for (ky = 0; ky < p->k_h; ++ky) {
                            const int32_t y = y0 + ky * p->dil_h;
                            for (kx = 0; kx < p->k_w; ++kx) {
                                const int32_t x = x0 + kx * p->dil_w;
                                const int8_t *pw = filter + (ky * p->k_w + kx) * p->in_c;
                                if (y < 0 || y >= p->in_h || x < 0 || x >= p->in_w) {
                                    acc -= p->in_offset * sum(pw, p->in_c);
                                } else {
                                    acc += dot(image + y * in_row + x * p->in_c, pw, p->in_c);
                                }
                            }
                        }
                    }
                    *output++ = requantize(p, acc, oc);
                }
            }
        }
    }
}

/* Depthwise with a multiplier of 1: per output pixel, channels innermost in blocks of
 * EK_DW_BLOCK accumulators, so each tap is one contiguous run over input and weights. */
#define EK_DW_BLOCK 32

static void depthwise_pixel(const ek_conv_params *p, const int8_t *image, int32_t y0, int32_t x0, int8_t *out)
{
    const int32_t in_row = p->in_w * p->in_c;
    const int32_t channels = p->out_c;
    int32_t acc[EK_DW_BLOCK];
    int32_t c0, c, n, ky, kx;
    for (c0 = 0; c0 < channels; c0 += EK_DW_BLOCK) {
        n = channels - c0 < EK_DW_BLOCK ? channels - c0 : EK_DW_BLOCK;
        for (c = 0; c < n; ++c) {
            acc[c] = p->bias[c0 + c];
        }
        for (ky = 0; ky < p->k_h; ++ky) {
            const int32_t y = y0 + ky * p->dil_h;
            const int row_inside = y >= 0 && y < p->in_h;
            for (kx = 0; kx < p->k_w; ++kx) {
                const int32_t x = x0 + kx * p->dil_w;
                const int8_t *w = p->weights + (ky * p->k_w + kx) * channels + c0;
                if (row_inside && x >= 0 && x < p->in_w) {
                    const int8_t *px = image + y * in_row + x * p->in_c + c0;
                    for (c = 0; c < n; ++c) {
                        acc[c] += (int32_t)px[c] * w[c];
                    }
                } else {
                    for (c = 0; c < n; ++c) {
                        acc[c] -= p->in_offset * w[c];
                    }
                }
            }
        }
        for (c = 0; c < n; ++c) {
            out[c0 + c] = requantize(p, acc[c], c0 + c);
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
                if (m == 1) {
                    depthwise_pixel(p, image, y0, x0, output);
                    output += p->out_c;
                    continue;
                }
                for (ic = 0; ic < p->in_c; ++ic) {
                    for (j = 0; j < m; ++j) {
                        const int32_t oc = ic * m + j;
                        int32_t acc = p->bias[oc];
                        for (ky = 0; ky < p->k_h; ++ky) {
                            const int32_t y = y0 + ky * p->dil_h;
                            for (kx = 0; kx < p->k_w; ++kx) {
                                const int32_t x = x0 + kx * p->dil_w;
                                const int32_t w = p->weights[(ky * p->k_w + kx) * p->out_c + oc];
                                if (y < 0 || y >= p->in_h || x < 0 || x >= p->in_w) {
                                    acc -= p->in_offset * w;
                                } else {
                                    acc += (int32_t)image[y * in_row + x * p->in_c + ic] * w;
                                }
                            }
                        }
                        output[oc] = requantize(p, acc, oc);
                    }
                }
                output += p->out_c;
            }
        }
    }
}

void ek_depthwise_conv2d_in_place(const ek_conv_params *p, int8_t *data, int8_t *scratch)
{
    /* Output row r reads input rows from r - pad_top on: once row r is computed, input row
     * r - pad_top is dead and output row r - pad_top (held in scratch) takes its place. The
     * scratch ring holds pad_top + 1 rows. Stride 1, multiplier 1, one image, in = out shape. */
    const int32_t keep = p->pad_top + 1;
    const int32_t row_bytes = p->out_w * p->out_c;
    int32_t oy, ox, r;
    for (oy = 0; oy < p->out_h; ++oy) {
        int8_t *slot = scratch + (oy % keep) * row_bytes;
        for (ox = 0; ox < p->out_w; ++ox) {
            depthwise_pixel(p, data, oy - p->pad_top, ox - p->pad_left, slot + ox * p->out_c);
        }
        r = oy - p->pad_top;
        if (r >= 0) {
            ek_copy(row_bytes, scratch + (r % keep) * row_bytes, data + r * row_bytes);
        }
    }
    for (r = p->out_h - p->pad_top; r < p->out_h; ++r) {
        if (r >= 0) {
            ek_copy(row_bytes, scratch + (r % keep) * row_bytes, data + r * row_bytes);
        }
    }
}
