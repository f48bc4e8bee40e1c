/* DEPTHWISE_CONV_2D (depth multiplier 1) with the DSP extension: four channels at a time.
 *
 * Per output pixel and group of four channels, each tap loads the four input bytes in one
 * 32-bit read and widens them to two pairs of halfwords with SXTAB16, adding the input offset
 * on the way: (x0 + off, x2 + off) and (x1 + off, x3 + off). The weights were widened at
 * generation time into the same lanes (ek_conv_dsp.h), so four SMLABB / SMLATT finish the tap:
 * one load of inputs, one double-word load of weights, two extends, four MACs. The pairs hold
 * different channels, so SMLAD (which adds its two products) does not apply here.
 *
 * The accumulator is TFLite Micro's: bias + sum over the taps inside the input of
 * (x + in_offset) * w (x + in_offset fits a halfword: |x + in_offset| <= 255), so the kernel
 * walks only the taps inside the input and the bias is the op's own (not folded). The same
 * integers in another order, modulo 2^32: bit for bit the reference.
 *
 * Memory: like the plain kernel it reads one output pixel's window and writes that pixel's
 * channels; the in-place variant keeps the plain kernel's row ring (ek_conv.c).
 */
#include "ek_conv_dsp.h"

#if defined(__ARM_FEATURE_DSP) || defined(EK_ACLE_EMULATION)

#include <string.h>

#include "ek_fixedpoint.h"

#if defined(EK_ACLE_EMULATION)
#include "acle_emulation.h" /* host tests: portable versions of the intrinsics */
#else
#include <arm_acle.h>
#endif

/* Four bytes from any address (LDR allows unaligned addresses on Armv7-M / Armv8-M Mainline). */
static inline uint32_t load4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint32_t ror8(uint32_t x) { return (x >> 8) | (x << 24); }

static inline int8_t requantize(const ek_conv_params *p, int32_t acc, int32_t c)
{
    acc = ek_mbqm(acc, p->multiplier[c], p->shift[c]) + p->out_offset;
    return (int8_t)ek_clamp(acc, p->act_min, p->act_max);
}

/* The halfword of a widened weight pair for channel r (0..3) of a group (see the layout). */
static inline int32_t weight_lane(const uint32_t *pair, int32_t r)
{
    const uint32_t word = pair[r & 1];
    return (r >> 1) ? (int32_t)(int16_t)(uint16_t)(word >> 16) : (int32_t)(int16_t)(uint16_t)(word & 0xFFFFu);
}

/* One output pixel: window origin (y0, x0) in input coordinates (may lie in the padding). */
static void pixel(const ek_conv_params *p, const int8_t *image, int32_t y0, int32_t x0, int8_t *out)
{
    const int32_t channels = p->in_c;
    const int32_t in_row = p->in_w * channels;
    const int32_t taps = p->k_h * p->k_w;
    const int32_t off = p->in_offset;
    const int32_t off2 = (int32_t)(((uint32_t)off & 0xFFFFu) * 0x10001u);
    const uint32_t *group_w = (const uint32_t *)(const void *)p->weights;
    /* The taps inside the input: rows [ky0, ky1), columns [kx0, kx1). */
    int32_t ky0 = 0, ky1 = p->k_h, kx0 = 0, kx1 = p->k_w;
    int32_t c, ky, kx, ny, nx, row_step, col_step, skip_w;
    const int8_t *first;
    while (ky0 < ky1 && y0 + ky0 * p->dil_h < 0) {
        ++ky0;
    }
    while (ky1 > ky0 && y0 + (ky1 - 1) * p->dil_h >= p->in_h) {
        --ky1;
    }
    while (kx0 < kx1 && x0 + kx0 * p->dil_w < 0) {
        ++kx0;
    }
    while (kx1 > kx0 && x0 + (kx1 - 1) * p->dil_w >= p->in_w) {
        --kx1;
    }
    ny = ky1 - ky0;
    nx = kx1 - kx0;
    row_step = p->dil_h * in_row;
    col_step = p->dil_w * channels;
    skip_w = 2 * (p->k_w - nx); /* weight words to the next row's first tap */
    first = ny > 0 && nx > 0 ? image + (y0 + ky0 * p->dil_h) * in_row + (x0 + kx0 * p->dil_w) * channels : image;
    for (c = 0; c + 4 <= channels; c += 4, group_w += 2 * taps) {
        int32_t a0 = p->bias[c], a1 = p->bias[c + 1], a2 = p->bias[c + 2], a3 = p->bias[c + 3];
        const int8_t *row = first + c;
        const uint32_t *w = group_w + 2 * (ky0 * p->k_w + kx0);
        for (ky = 0; ky < ny; ++ky, row += row_step, w += skip_w) {
            const int8_t *x = row;
            for (kx = 0; kx < nx; ++kx, x += col_step, w += 2) {
                const uint32_t v = load4(x);
                const int32_t even = __sxtab16(off2, (int32_t)v);       /* (x0, x2) + off */
                const int32_t odd = __sxtab16(off2, (int32_t)ror8(v)); /* (x1, x3) + off */
                a0 = __smlabb(even, (int32_t)w[0], a0);
                a2 = __smlatt(even, (int32_t)w[0], a2);
                a1 = __smlabb(odd, (int32_t)w[1], a1);
                a3 = __smlatt(odd, (int32_t)w[1], a3);
            }
        }
        out[c] = requantize(p, a0, c);
        out[c + 1] = requantize(p, a1, c + 1);
        out[c + 2] = requantize(p, a2, c + 2);
        out[c + 3] = requantize(p, a3, c + 3);
    }
    /* The last 1 to 3 channels one by one (a 32-bit read could leave the tensor). */
    for (; c < channels; ++c) {
        const int32_t r = c & 3;
        int32_t acc = p->bias[c];
        const int8_t *row = first + c;
        const uint32_t *w = group_w + 2 * (ky0 * p->k_w + kx0);
        for (ky = 0; ky < ny; ++ky, row += row_step, w += skip_w) {
            const int8_t *x = row;
            for (kx = 0; kx < nx; ++kx, x += col_step, w += 2) {
                acc += ((int32_t)*x + off) * weight_lane(w, r);
            }
        }
        out[c] = requantize(p, acc, c);
    }
}

void ek_depthwise_conv2d_dsp(const ek_conv_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_image = p->in_h * p->in_w * p->in_c;
    int32_t b, oy, ox;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * in_image;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (ox = 0; ox < p->out_w; ++ox) {
                pixel(p, image, y0, ox * p->stride_w - p->pad_left, output);
                output += p->out_c;
            }
        }
    }
}

void ek_depthwise_conv2d_in_place_dsp(const ek_conv_params *p, int8_t *data, int8_t *scratch)
{
    /* The plain kernel's scheme (ek_depthwise_conv2d_in_place): output row r reads input rows
     * from r - pad_top on, so once it is computed into the ring, input row r - pad_top is dead
     * and output row r - pad_top moves from the ring into its place. */
    const int32_t keep = p->pad_top + 1;
    const int32_t row_bytes = p->out_w * p->out_c;
    int32_t oy, ox, r;
    for (oy = 0; oy < p->out_h; ++oy) {
        int8_t *slot = scratch + (oy % keep) * row_bytes;
        for (ox = 0; ox < p->out_w; ++ox) {
            pixel(p, data, oy - p->pad_top, ox - p->pad_left, slot + ox * p->out_c);
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

#else
typedef int ek_depthwise_dsp_unused; /* no DSP extension: the plain kernels run (ek_conv.c) */
#endif
