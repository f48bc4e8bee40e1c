/* CONV_2D with a k x k window (not 1x1) and the DSP extension: SMLAD, two MACs an instruction.
 *
 * Per output pixel the window's input values are gathered once into a buffer of halfwords,
 * input offset added (x + in_offset fits: |x + in_offset| <= 255) and taps in the padding left
 * at zero, which is exactly TFLite Micro's reference accumulator (padding taps contribute
 * nothing) with the op's own bias. Each group of four output channels then runs SMLAD over the
 * buffer: one 32-bit load of two window values serves four channels, whose weight pairs
 * (widened at generation time, ek_conv_dsp.h) come in one sequential stream.
 *
 * The window buffer lives on the stack: the generator uses this kernel only when the window
 * (k_h * k_w * in_c, rounded up to even) fits EK_CONV_DSP_MAX_WINDOW values, e.g. every stem.
 */
#include "ek_conv_dsp.h"

#if defined(__ARM_FEATURE_DSP) || defined(EK_ACLE_EMULATION)

#include <string.h>

#include "ek_dsp.h"
#include "ek_requant_dsp.h"

/* Gathers the window at (y0, x0) (may reach into the padding) as halfwords x + in_offset. */
static void gather(const ek_conv_params *p, const int8_t *image, int32_t y0, int32_t x0, int16_t *window)
{
    const int32_t in_c = p->in_c;
    const int32_t in_row = p->in_w * in_c;
    const int32_t off = p->in_offset;
    const int32_t run = p->k_w * in_c; /* one window row */
    /* With no horizontal dilation and the window's columns inside, a window row is one run. */
    const int columns_inside = p->dil_w == 1 && x0 >= 0 && x0 + p->k_w <= p->in_w;
    int32_t ky, kx, i;
    for (ky = 0; ky < p->k_h; ++ky, window += run) {
        const int32_t y = y0 + ky * p->dil_h;
        if (y < 0 || y >= p->in_h) {
            memset(window, 0, (size_t)run * sizeof(int16_t));
        } else if (columns_inside) {
            const int8_t *px = image + y * in_row + x0 * in_c;
            for (i = 0; i < run; ++i) {
                window[i] = (int16_t)(px[i] + off);
            }
        } else {
            for (kx = 0; kx < p->k_w; ++kx) {
                const int32_t x = x0 + kx * p->dil_w;
                int16_t *to = window + kx * in_c;
                if (x >= 0 && x < p->in_w) {
                    const int8_t *px = image + y * in_row + x * in_c;
                    for (i = 0; i < in_c; ++i) {
                        to[i] = (int16_t)(px[i] + off);
                    }
                } else {
                    memset(to, 0, (size_t)in_c * sizeof(int16_t));
                }
            }
        }
    }
}

void ek_conv2d_dsp(const ek_conv_params *p, const int8_t *input, int8_t *output)
{
    int16_t window[EK_CONV_DSP_MAX_WINDOW];
    const int32_t size = p->k_h * p->k_w * p->in_c;
    const int32_t pairs = (size + 1) / 2;
    const int32_t in_image = p->in_h * p->in_w * p->in_c;
    const int32_t channels = p->out_c;
    const uint32_t *weights = (const uint32_t *)(const void *)p->weights;
    const int32_t *bias = p->bias;
    const int32_t *mult = p->multiplier;
    const int32_t *shift = p->shift;
    /* Locals: stores through `output` (int8_t) could alias *p. */
    const int32_t round_offset = 1 + 2 * (p->out_offset + 128);
    const uint32_t lo4 = (uint32_t)(p->act_min + 128) * 0x01010101u;
    const uint32_t hi4 = (uint32_t)(p->act_max + 128) * 0x01010101u;
    int32_t b, oy, ox, oc, j;
    window[pairs * 2 - 1] = 0; /* the odd window's last pair */
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * in_image;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox, output += channels) {
                const uint32_t *w = weights;
                gather(p, image, oy * p->stride_h - p->pad_top, ox * p->stride_w - p->pad_left, window);
                for (oc = 0; oc < channels; oc += 4) {
                    const int32_t n = channels - oc < 4 ? channels - oc : 4;
                    int32_t a0 = bias[oc];
                    int32_t a1 = n > 1 ? bias[oc + 1] : 0;
                    int32_t a2 = n > 2 ? bias[oc + 2] : 0;
                    int32_t a3 = n > 3 ? bias[oc + 3] : 0;
                    const int16_t *v = window;
                    for (j = pairs; j >= 2; j -= 2, v += 4, w += 8) { /* two pairs a step */
                        uint32_t x, y;
                        memcpy(&x, v, 4);
                        memcpy(&y, v + 2, 4);
                        a0 = __smlad((int32_t)x, (int32_t)w[0], a0);
                        a1 = __smlad((int32_t)x, (int32_t)w[1], a1);
                        a2 = __smlad((int32_t)x, (int32_t)w[2], a2);
                        a3 = __smlad((int32_t)x, (int32_t)w[3], a3);
                        a0 = __smlad((int32_t)y, (int32_t)w[4], a0);
                        a1 = __smlad((int32_t)y, (int32_t)w[5], a1);
                        a2 = __smlad((int32_t)y, (int32_t)w[6], a2);
                        a3 = __smlad((int32_t)y, (int32_t)w[7], a3);
                    }
                    if (j > 0) {
                        uint32_t x;
                        memcpy(&x, v, 4);
                        a0 = __smlad((int32_t)x, (int32_t)w[0], a0);
                        a1 = __smlad((int32_t)x, (int32_t)w[1], a1);
                        a2 = __smlad((int32_t)x, (int32_t)w[2], a2);
                        a3 = __smlad((int32_t)x, (int32_t)w[3], a3);
                        w += 4;
                    }
                    if (n == 4) {
                        store4(output + oc,
                               requantize_u8(a0, mult[oc], shift[oc], round_offset) |
                                   requantize_u8(a1, mult[oc + 1], shift[oc + 1], round_offset) << 8 |
                                   requantize_u8(a2, mult[oc + 2], shift[oc + 2], round_offset) << 16 |
                                   requantize_u8(a3, mult[oc + 3], shift[oc + 3], round_offset) << 24,
                               lo4, hi4);
                    } else { /* the last 1 to 3 channels (their group's other weights are zero) */
                        const int32_t acc[3] = {a0, a1, a2};
                        for (j = 0; j < n; ++j) {
                            output[oc + j] = requantize1(acc[j], mult[oc + j], shift[oc + j], round_offset, lo4, hi4);
                        }
                    }
                }
            }
        }
    }
}

#else
typedef int ek_conv_dsp_unused; /* no DSP extension: the plain kernels run (ek_conv.c) */
#endif
