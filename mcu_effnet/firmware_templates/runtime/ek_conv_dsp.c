/* CONV_2D with a k x k window (not 1x1) and the DSP extension: SMLAD, two MACs an instruction.
 *
 * Per output pixel the window's input values are gathered once into a buffer of halfwords
 * (im2col), input offset added (x + in_offset fits: |x + in_offset| <= 255) and taps in the
 * padding left at zero, which is exactly TFLite Micro's reference accumulator (padding taps
 * contribute nothing) with the op's own bias. Four input bytes become two words with one load
 * and two SXTAB16 (the order ek_conv_dsp.h describes, matched by the weight layout), so the
 * gather costs about two instructions per window value when in_c is a multiple of 4; a first
 * layer's rows (in_c of 1 to 3) are read a word at a time too, each padded to a multiple of 4.
 *
 * Each group of four output channels then runs over the buffer in steps of four window values:
 * one LDRD of two window words, two LDMs of four weight words (widened and doubled at
 * generation time) and eight SMLADs: 11 instructions for 16 MACs. The accumulators hold
 * 2 * acc, the operand of the requantization's SMMULR (ek_requant_dsp.h). The same integers
 * as the reference in another order, modulo 2^32: bit for bit.
 *
 * The window buffer lives on the stack: the generator uses this kernel only when the window
 * (k_h rows of k_w * in_c values, each rounded up to a multiple of 4) fits
 * EK_CONV_DSP_MAX_WINDOW values.
 */
#include "ek_conv_dsp.h"

#if defined(__ARM_FEATURE_DSP) || defined(EK_ACLE_EMULATION)

#include <string.h>

#include "ek_dsp.h"
#include "ek_requant_dsp.h"

/* Window position of OHWI value k: bits 0 and 1 swapped within each step of four. */
static inline int32_t slot(int32_t k) { return (k & ~3) | ((k & 1) << 1) | ((k >> 1) & 1); }

/* `n` input bytes (a multiple of 4) from `px` to window words at `to` (a step boundary). */
static inline void widen4(const int8_t *px, uint32_t *to, int32_t n, int32_t off2)
{
#if !defined(EK_ACLE_EMULATION)
    /* Eight bytes a step in 10 instructions (the compiler's loop takes 17): two LDRs (the
     * input need not be word-aligned, so no LDRD), four SXTAB16, two STRDs (the window is). */
    if (n >= 8) {
        const int8_t *const end = px + (n & ~7);
        uint32_t a, b, c, d;
        __asm__ volatile("1:\n\t"
                         "ldr %[a], [%[px]], #4\n\t"
                         "ldr %[b], [%[px]], #4\n\t"
                         "sxtab16 %[c], %[off2], %[a]\n\t"
                         "sxtab16 %[d], %[off2], %[a], ror #8\n\t"
                         "strd %[c], %[d], [%[to]], #8\n\t"
                         "sxtab16 %[c], %[off2], %[b]\n\t"
                         "sxtab16 %[d], %[off2], %[b], ror #8\n\t"
                         "strd %[c], %[d], [%[to]], #8\n\t"
                         "cmp %[px], %[end]\n\t"
                         "bne 1b\n\t"
                         : [px] "+r"(px), [to] "+r"(to), [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d)
                         : [off2] "r"(off2), [end] "r"(end)
                         : "cc", "memory");
        n &= 7;
    }
#endif
    for (; n > 0; n -= 4, px += 4, to += 2) {
        const uint32_t v = ek_load4(px);
        to[0] = (uint32_t)__sxtab16(off2, (int32_t)v); /* (x0, x2) + off */
        to[1] = (uint32_t)ek_sxtab16_ror8(off2, v);    /* (x1, x3) + off */
    }
}

/* A window row of `n` input bytes (in_c of 1 to 3, a first layer: n any length) from
 * `px` to window words at `to`: whole words, then the last 1 to 3 bytes (zeros above: no read
 * past the row). The row's positions past n meet zero weights (the layout pads each window row
 * to a multiple of 4), so whatever they hold adds nothing. */
static inline void widen_row(const int8_t *px, uint32_t *to, int32_t n, int32_t off2)
{
    const int32_t whole = n & ~3;
    const int8_t *tail = px + whole;
    uint32_t v;
    widen4(px, to, whole, off2);
    if ((n & 3) == 0) {
        return;
    }
    to += whole >> 1;
    v = (uint8_t)tail[0];
    if ((n & 3) > 1) {
        v |= (uint32_t)(uint8_t)tail[1] << 8;
    }
    if ((n & 3) > 2) {
        v |= (uint32_t)(uint8_t)tail[2] << 16;
    }
    to[0] = (uint32_t)__sxtab16(off2, (int32_t)v);
    to[1] = (uint32_t)ek_sxtab16_ror8(off2, v);
}

/* `n` input bytes from `px` to window values k0.. (any alignment: value by value). */
static inline void widen1(const int8_t *px, int16_t *window, int32_t k0, int32_t n, int32_t off)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        window[slot(k0 + i)] = (int16_t)(px[i] + off);
    }
}

static inline void zero1(int16_t *window, int32_t k0, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        window[slot(k0 + i)] = 0;
    }
}

/* Gathers the window at (y0, x0) (may reach into the padding). Window row ky starts at value
 * ky * run4, run4 = k_w * in_c rounded up to a multiple of 4 (ek_conv_dsp.h). */
#if defined(__GNUC__)
/* Out of line: inlined, its registers crowd the multiply-accumulate loop's inline assembly
 * (which needs 13 of them) in the caller. */
__attribute__((noinline))
#endif
static void gather(const ek_conv_dsp_params *p, const int8_t *image, int32_t y0, int32_t x0, int16_t *window)
{
    const int32_t in_c = p->in_c;
    const int32_t in_row = p->in_w * in_c;
    const int32_t off = p->in_offset;
    const int32_t off2 = (int32_t)(((uint32_t)off & 0xFFFFu) * 0x10001u);
    const int32_t run = p->k_w * in_c; /* one window row */
    const int32_t run4 = (run + 3) & ~3;
    const int aligned = (in_c & 3) == 0;
    /* With no horizontal dilation and the window's columns inside, a window row is one run. */
    const int columns_inside = p->dil_w == 1 && x0 >= 0 && x0 + p->k_w <= p->in_w;
    int32_t ky, kx, k = 0;
    for (ky = 0; ky < p->k_h; ++ky, k += run4) {
        const int32_t y = y0 + ky * p->dil_h;
        if (y < 0 || y >= p->in_h) {
            memset(window + k, 0, (size_t)run4 * sizeof(int16_t));
        } else if (columns_inside) {
            const int8_t *px = image + y * in_row + x0 * in_c;
            if (aligned) {
                widen4(px, (uint32_t *)(void *)(window + k), run, off2);
            } else {
                widen_row(px, (uint32_t *)(void *)(window + k), run, off2);
            }
        } else {
            for (kx = 0; kx < p->k_w; ++kx) {
                const int32_t x = x0 + kx * p->dil_w;
                const int32_t at = k + kx * in_c;
                if (x < 0 || x >= p->in_w) {
                    if (aligned) {
                        memset(window + at, 0, (size_t)in_c * sizeof(int16_t));
                    } else {
                        zero1(window, at, in_c);
                    }
                } else if (aligned) {
                    widen4(image + y * in_row + x * in_c, (uint32_t *)(void *)(window + at), in_c, off2);
                } else {
                    widen1(image + y * in_row + x * in_c, window, at, in_c, off);
                }
            }
        }
    }
}

/* Four accumulators over `steps` steps of the window `v` and the group's weights `w`. */
typedef struct {
    int32_t a0, a1, a2, a3;
} acc4;

#if defined(EK_ACLE_EMULATION)
static inline acc4 dot4(const uint32_t *v, const uint32_t *w, int32_t steps, acc4 a)
{
    for (; steps > 0; --steps, v += 2, w += 8) {
        a.a0 = __smlad((int32_t)v[0], (int32_t)w[0], a.a0);
        a.a1 = __smlad((int32_t)v[0], (int32_t)w[1], a.a1);
        a.a2 = __smlad((int32_t)v[0], (int32_t)w[2], a.a2);
        a.a3 = __smlad((int32_t)v[0], (int32_t)w[3], a.a3);
        a.a0 = __smlad((int32_t)v[1], (int32_t)w[4], a.a0);
        a.a1 = __smlad((int32_t)v[1], (int32_t)w[5], a.a1);
        a.a2 = __smlad((int32_t)v[1], (int32_t)w[6], a.a2);
        a.a3 = __smlad((int32_t)v[1], (int32_t)w[7], a.a3);
    }
    return a;
}
#else
/* One step: LDRD of the window's two words, LDM of four weight words per word, 8 SMLADs
 * (the compiler does not merge the loads into LDRD / LDM itself). r7 stays free: it is the
 * frame pointer of unoptimized Thumb builds. */
#define EK_CONV_STEP                                     \
    "ldrd %[xa], %[xb], [%[v]], #8\n\t"                  \
    "ldmia %[w]!, {r4, r5, r6, r8}\n\t"                  \
    "smlad %[a0], %[xa], r4, %[a0]\n\t"                  \
    "smlad %[a1], %[xa], r5, %[a1]\n\t"                  \
    "smlad %[a2], %[xa], r6, %[a2]\n\t"                  \
    "smlad %[a3], %[xa], r8, %[a3]\n\t"                  \
    "ldmia %[w]!, {r4, r5, r6, r8}\n\t"                  \
    "smlad %[a0], %[xb], r4, %[a0]\n\t"                  \
    "smlad %[a1], %[xb], r5, %[a1]\n\t"                  \
    "smlad %[a2], %[xb], r6, %[a2]\n\t"                  \
    "smlad %[a3], %[xb], r8, %[a3]\n\t"

static inline acc4 dot4(const uint32_t *v, const uint32_t *w, int32_t steps, acc4 a)
{
    uint32_t xa, xb;
    const uint32_t *end;
    if (steps & 1) {
        __asm__ volatile(EK_CONV_STEP
                         : [a0] "+r"(a.a0), [a1] "+r"(a.a1), [a2] "+r"(a.a2), [a3] "+r"(a.a3), [v] "+r"(v),
                           [w] "+r"(w), [xa] "=&r"(xa), [xb] "=&r"(xb)
                         :
                         : "r4", "r5", "r6", "r8", "memory");
    }
    if (steps >= 2) {
        end = v + 2 * (steps & ~1);
        __asm__ volatile("1:\n\t" EK_CONV_STEP EK_CONV_STEP "cmp %[v], %[end]\n\t"
                                                            "bne 1b\n\t"
                         : [a0] "+r"(a.a0), [a1] "+r"(a.a1), [a2] "+r"(a.a2), [a3] "+r"(a.a3), [v] "+r"(v),
                           [w] "+r"(w), [xa] "=&r"(xa), [xb] "=&r"(xb)
                         : [end] "r"(end)
                         : "r4", "r5", "r6", "r8", "cc", "memory");
    }
    return a;
}
#endif

/* Requantizes four accumulators with their group's record (biases skipped: rec[4..11]). */
EK_DSP_INLINE uint32_t requantize4(acc4 a, const int32_t *rec, int32_t round_offset)
{
    return requantize_u8(a.a0, rec[4], rec[8], round_offset) | requantize_u8(a.a1, rec[5], rec[9], round_offset) << 8 |
           requantize_u8(a.a2, rec[6], rec[10], round_offset) << 16 |
           requantize_u8(a.a3, rec[7], rec[11], round_offset) << 24;
}

void ek_conv2d_dsp(const ek_conv_dsp_params *p, const int8_t *input, int8_t *output)
{
    uint32_t words[EK_CONV_DSP_MAX_WINDOW / 2]; /* the window's halfwords, word-aligned */
    int16_t *const window = (int16_t *)(void *)words;
    const int32_t steps = p->k_h * ((p->k_w * p->in_c + 3) >> 2); /* window rows padded to 4 */
    const int32_t in_image = p->in_h * p->in_w * p->in_c;
    const int32_t channels = p->out_c;
    const int32_t groups = channels >> 2; /* full groups of four */
    const int32_t tail = channels & 3;
    const uint32_t *const weights = (const uint32_t *)p->weights;
    const int32_t *const records = p->records;
    /* Locals: stores through `output` (int8_t) could alias *p. */
    const int32_t round_offset = 1 + 2 * (p->out_offset + 128);
    const uint32_t lo4 = (uint32_t)(p->act_min + 128) * 0x01010101u;
    const uint32_t hi4 = (uint32_t)(p->act_max + 128) * 0x01010101u;
    int32_t b, oy, ox, g, j;
    memset(words, 0, (size_t)steps * 8u); /* positions past a window row are never written */
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * in_image;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                const uint32_t *w = weights;
                const int32_t *rec = records;
                gather(p, image, oy * p->stride_h - p->pad_top, ox * p->stride_w - p->pad_left, window);
                for (g = groups; g > 0; --g, rec += 12, output += 4) {
                    acc4 a;
                    a.a0 = rec[0];
                    a.a1 = rec[1];
                    a.a2 = rec[2];
                    a.a3 = rec[3];
                    a = dot4(words, w, steps, a);
                    w += 8 * steps;
                    store4(output, requantize4(a, rec, round_offset), lo4, hi4);
                }
                if (tail) { /* the last 1 to 3 channels (their group's other weights are zero) */
                    acc4 a;
                    a.a0 = rec[0];
                    a.a1 = rec[1];
                    a.a2 = rec[2];
                    a.a3 = 0;
                    a = dot4(words, w, steps, a);
                    {
                        const int32_t acc[3] = {a.a0, a.a1, a.a2};
                        for (j = 0; j < tail; ++j) {
                            output[j] = requantize1(acc[j], rec[4 + j], rec[8 + j], round_offset, lo4, hi4);
                        }
                    }
                    output += tail;
                }
            }
        }
    }
}

#else
typedef int ek_conv_dsp_unused; /* no DSP extension: the plain kernels run (ek_conv.c) */
#endif
