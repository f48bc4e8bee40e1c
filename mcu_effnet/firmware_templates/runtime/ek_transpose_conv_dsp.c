/* TRANSPOSE_CONV on int8 with the DSP extension: SMLAD, two MACs an instruction.
 *
 * The plain kernel scatters every input pixel into int32 accumulators of the whole output; this
 * one gathers instead. An output coordinate o along an axis of stride s is reached by the kernel
 * taps k with k = o + pad - s * i for an input coordinate i in range: k runs in steps of s, i
 * down by one each step. Per output pixel and group of four output channels, the sums over
 * those (input pixel, tap) pairs stay in four registers: input and OHWI weights are both
 * contiguous over the input channels, so four input bytes widen to two halfword pairs with the
 * input offset added (SXTAB16; |x + in_offset| <= 255 fits a halfword) and serve the four
 * channels' weights, each widened with SXTB16 into two SMLADs. Taps that fall outside the input
 * are never visited, which is what TFLite Micro's reference does with them (they add nothing),
 * so the offset is added per value rather than folded into the bias.
 *
 * The reference adds the same products into int32 in another order; int32 sums wrap alike in any
 * order (SMLAD wraps too), then the bias, requantization and clamp are the plain kernel's.
 */
#include "ek_transpose_conv_dsp.h"

#if defined(__ARM_FEATURE_DSP) || defined(EK_ACLE_EMULATION)

#include "ek_dsp.h"
#include "ek_fixedpoint.h"

/* The taps along one axis reaching output coordinate o: the first kernel index and the count
 * (successive taps: kernel index + stride, input index - 1). */
typedef struct {
    int32_t first, count, in_first;
} taps_t;

static inline taps_t taps(int32_t o, int32_t pad, int32_t stride, int32_t k_len, int32_t in_len)
{
    const int32_t t = o + pad; /* the kernel index of input index 0 */
    int32_t lo = t - stride * (in_len - 1), hi = t < k_len - 1 ? t : k_len - 1;
    taps_t r = {0, 0, 0};
    if (lo < 0) {
        lo = 0;
    }
    if (t < 0) {
        return r;
    }
    lo += (t - lo) % stride; /* t - lo >= 0 here */
    if (lo > hi) {
        return r;
    }
    r.first = lo;
    r.count = (hi - lo) / stride + 1;
    r.in_first = (t - lo) / stride;
    return r;
}

/* Keeps gcc from hoisting all four weight loads to the top of the loop, which spills. */
#if defined(__GNUC__) && !defined(EK_ACLE_EMULATION)
#define EK_ORDER() __asm__ volatile("" ::: "memory")
#else
#define EK_ORDER() ((void)0)
#endif

static inline int32_t wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

/* Four output channels' sums over `n` input channels of one (input pixel, tap) pair; the
 * channels' weight rows are `ws` bytes apart. Two weight pointers with `ws` as a register offset
 * keep the loop's state in registers (four pointers spill on Armv7-M). */
EK_DSP_INLINE void dot4(const int8_t *x, const int8_t *w, int32_t ws, int32_t n, int32_t off2, int32_t in_offset,
                        int32_t acc[4])
{
    const int8_t *wa = w, *wb = w + 2 * ws; /* channels 0, 1 and 2, 3 */
    const int8_t *const end = x + (n & ~3);
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t i;
    while (x != end) {
        const uint32_t v = ek_load4(x);
        const int32_t xe = __sxtab16(off2, (int32_t)v); /* (x0, x2) + off */
        const int32_t xo = ek_sxtab16_ror8(off2, v);    /* (x1, x3) + off */
        uint32_t k = ek_load4(wa);
        a0 = __smlad(__sxtb16((int32_t)k), xe, a0);
        a0 = __smlad(ek_sxtb16_ror8(k), xo, a0);
        EK_ORDER();
        k = ek_load4(wa + ws);
        a1 = __smlad(__sxtb16((int32_t)k), xe, a1);
        a1 = __smlad(ek_sxtb16_ror8(k), xo, a1);
        EK_ORDER();
        k = ek_load4(wb);
        a2 = __smlad(__sxtb16((int32_t)k), xe, a2);
        a2 = __smlad(ek_sxtb16_ror8(k), xo, a2);
        EK_ORDER();
        k = ek_load4(wb + ws);
        a3 = __smlad(__sxtb16((int32_t)k), xe, a3);
        a3 = __smlad(ek_sxtb16_ror8(k), xo, a3);
        x += 4;
        wa += 4;
        wb += 4;
    }
    for (i = 0; i < (n & 3); ++i) {
        const int32_t xv = x[i] + in_offset;
        a0 = wrap_add(a0, xv * wa[i]);
        a1 = wrap_add(a1, xv * wa[ws + i]);
        a2 = wrap_add(a2, xv * wb[i]);
        a3 = wrap_add(a3, xv * wb[ws + i]);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* One output channel's sum, as dot4. */
EK_DSP_INLINE int32_t dot1(const int8_t *x, const int8_t *w, int32_t n, int32_t off2, int32_t in_offset, int32_t a)
{
    int32_t i;
    for (i = 0; i + 4 <= n; i += 4) {
        const uint32_t v = ek_load4(x + i), k = ek_load4(w + i);
        a = __smlad(__sxtb16((int32_t)k), __sxtab16(off2, (int32_t)v), a);
        a = __smlad(ek_sxtb16_ror8(k), ek_sxtab16_ror8(off2, v), a);
    }
    for (; i < n; ++i) {
        a = wrap_add(a, (x[i] + in_offset) * w[i]);
    }
    return a;
}

/* TFLite's MultiplyByQuantizedMultiplier: for a right shift (the usual case) and |x| < 2^30
 * (every accumulator of fewer than 2^15 products), its doubling high multiply is one SMMULR of 2x
 * and its rounding divide a fixed-exponent shift; otherwise the portable form. */
static inline int8_t requantize(const ek_transpose_conv_params *p, int32_t acc, int32_t c)
{
    const int32_t x = wrap_add(acc, p->bias[c]), shift = p->shift[c];
    const int32_t x2 = (int32_t)((uint32_t)x << 1);
    int32_t v;
    if (shift <= 0 && shift >= -30 && (x2 >> 1) == x) {
        const int32_t e = -shift;
        v = ek_divide_by_pot_fixed(ek_mul_high_rounded(x2, p->multiplier[c]), e, (1 << e) >> 1, e > 0);
    } else {
        v = ek_multiply_by_quantized_multiplier(x, p->multiplier[c], shift);
    }
    return (int8_t)ek_clamp(v + p->out_offset, p->act_min, p->act_max);
}

void ek_transpose_conv_dsp(const ek_transpose_conv_params *p, const int8_t *input, int8_t *scratch, int8_t *output)
{
    const int32_t in_c = p->in_c, out_c = p->out_c;
    const int32_t ws = p->k_h * p->k_w * in_c; /* one output channel's weights */
    const int32_t off2 = (int32_t)(((uint32_t)p->in_offset & 0xFFFFu) | ((uint32_t)p->in_offset << 16));
    int32_t b, oy, ox, oc, ty, tx;
    (void)scratch;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * p->in_w * in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const taps_t ry = taps(oy, p->pad_top, p->stride_h, p->k_h, p->in_h);
            for (ox = 0; ox < p->out_w; ++ox) {
                const taps_t rx = taps(ox, p->pad_left, p->stride_w, p->k_w, p->in_w);
                for (oc = 0; oc + 4 <= out_c; oc += 4) {
                    int32_t acc[4] = {0, 0, 0, 0};
                    for (ty = 0; ty < ry.count; ++ty) {
                        const int32_t ky = ry.first + ty * p->stride_h, iy = ry.in_first - ty;
                        for (tx = 0; tx < rx.count; ++tx) {
                            const int32_t kx = rx.first + tx * p->stride_w, ix = rx.in_first - tx;
                            const int8_t *x = image + (iy * p->in_w + ix) * in_c;
                            const int8_t *w = p->weights + oc * ws + (ky * p->k_w + kx) * in_c;
                            dot4(x, w, ws, in_c, off2, p->in_offset, acc);
                        }
                    }
                    output[0] = requantize(p, acc[0], oc);
                    output[1] = requantize(p, acc[1], oc + 1);
                    output[2] = requantize(p, acc[2], oc + 2);
                    output[3] = requantize(p, acc[3], oc + 3);
                    output += 4;
                }
                for (; oc < out_c; ++oc) { /* the last 1 to 3 channels */
                    int32_t acc = 0;
                    for (ty = 0; ty < ry.count; ++ty) {
                        const int32_t ky = ry.first + ty * p->stride_h, iy = ry.in_first - ty;
                        for (tx = 0; tx < rx.count; ++tx) {
                            const int32_t kx = rx.first + tx * p->stride_w, ix = rx.in_first - tx;
                            const int8_t *x = image + (iy * p->in_w + ix) * in_c;
                            acc = dot1(x, p->weights + oc * ws + (ky * p->k_w + kx) * in_c, in_c, off2, p->in_offset,
                                       acc);
                        }
                    }
                    *output++ = requantize(p, acc, oc);
                }
            }
        }
    }
}

#endif
