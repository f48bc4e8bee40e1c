/* CONV_2D over a shallow input (in_c 1 to 3: a network's first layer) with the DSP extension.
 *
 * The k x k kernel (ek_conv_dsp.c) pads every window ROW to a multiple of four values, so a
 * 3x3 window over RGB (rows of 9) does 36 multiply-accumulates for 27, gathers a first layer's
 * short rows value by value at the borders and widens the window into a buffer of halfwords.
 * Here the window is one run of K = k_h * k_w * in_c values padded once to a multiple of four
 * (27 -> 28), copied as bytes: the window's rows back to back into a small staging buffer
 * (unaligned word copies: a row of 9 bytes is three LDR/STR pairs, the last overlapping).
 * Taps in the padding get the input zero point: with the input offset folded into the bias
 * (bias + in_offset * sum(w), as the plain kernels take it) a tap of value -in_offset adds
 * w * (x + in_offset) = 0, exactly as TFLite Micro's reference skips it. Only pixels whose
 * window reaches the padding (or a horizontal dilation) take the tap-by-tap path; the
 * interior of a row runs a loop with no bounds checks.
 *
 * The weights are the k x k kernel's layout of a 1 x 1 x K window (dsp_layout.conv_layout):
 * each group of four output channels runs over the staged bytes in steps of four values: one
 * LDR and two SXTB16 widen them into the pairs (x[k], x[k+2]), (x[k+1], x[k+3]) (no widened
 * copy of the window: a first layer has few groups to share it), two LDMs of four weight
 * words and eight SMLADs multiply-accumulate 2 * acc for the requantization
 * (ek_requant_dsp.h). The same integers as the reference in another order, modulo 2^32: bit
 * for bit.
 */
#include "ek_conv_first_dsp.h"

#if defined(__ARM_FEATURE_DSP) || defined(EK_ACLE_EMULATION)

#include <string.h>

#include "ek_dsp.h"
#include "ek_requant_dsp.h"

/* Four bytes to any address (STR allows unaligned addresses on Armv7-M / Armv8-M Mainline). */
static inline void store_bytes4(int8_t *to, uint32_t v) { memcpy(to, &v, 4); }

/* A word copied from `from` to `to` (any alignment). The empty assembly hides that the word is
 * the one loaded: else gcc turns copy_row's loop into a call to memcpy, several times the
 * cost of a 9-byte row. */
static inline void copy4(int8_t *to, const int8_t *from)
{
    uint32_t v = ek_load4(from);
    __asm__("" : "+r"(v));
    store_bytes4(to, v);
}

/* A window row of `n` >= 4 bytes from `from` to `to`: whole words, the last one ending at the
 * row's end (it may overlap the one before), so nothing past the row is read. */
static inline void copy_row(int8_t *to, const int8_t *from, int32_t n)
{
    int32_t i;
    for (i = 0; i < n - 4; i += 4) {
        copy4(to + i, from + i);
    }
    copy4(to + n - 4, from + n - 4);
}

/* The window at (y0, x0) tap by tap (borders, horizontal dilation): taps in the padding hold
 * the input zero point `zero` (widened with the input offset, 0). */
#if defined(__GNUC__)
__attribute__((noinline)) /* the border's slow path stays out of the pixel loop */
#endif
static void stage_taps(const ek_conv_dsp_params *p, const int8_t *image, int32_t y0, int32_t x0, int8_t zero,
                       int8_t *staged)
{
    const int32_t in_c = p->in_c;
    int32_t ky, kx, c;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t y = y0 + ky * p->dil_h;
        for (kx = 0; kx < p->k_w; ++kx, staged += in_c) {
            const int32_t x = x0 + kx * p->dil_w;
            if (y < 0 || y >= p->in_h || x < 0 || x >= p->in_w) {
                for (c = 0; c < in_c; ++c) {
                    staged[c] = zero;
                }
            } else {
                const int8_t *px = image + (y * p->in_w + x) * in_c;
                for (c = 0; c < in_c; ++c) {
                    staged[c] = px[c];
                }
            }
        }
    }
}

typedef struct {
    int32_t a0, a1, a2, a3;
} acc4;

/* Four accumulators over `steps` steps of the staged window bytes `v` (a word a step) and a
 * group's weights at *wp, which is left past them. */
#if defined(EK_ACLE_EMULATION)
static inline acc4 dot4(const uint32_t *v, const uint32_t **wp, int32_t steps, acc4 a)
{
    const uint32_t *w = *wp;
    for (; steps > 0; --steps, ++v, w += 8) {
        const int32_t xa = __sxtb16((int32_t)*v), xb = ek_sxtb16_ror8(*v);
        a.a0 = __smlad(xa, (int32_t)w[0], a.a0);
        a.a1 = __smlad(xa, (int32_t)w[1], a.a1);
        a.a2 = __smlad(xa, (int32_t)w[2], a.a2);
        a.a3 = __smlad(xa, (int32_t)w[3], a.a3);
        a.a0 = __smlad(xb, (int32_t)w[4], a.a0);
        a.a1 = __smlad(xb, (int32_t)w[5], a.a1);
        a.a2 = __smlad(xb, (int32_t)w[6], a.a2);
        a.a3 = __smlad(xb, (int32_t)w[7], a.a3);
    }
    *wp = w;
    return a;
}
#else
/* One step: a word of four window bytes widened by two SXTB16, LDM of four weight words per
 * halfword pair, 8 SMLADs (gcc merges no loads into LDM by itself). r7 stays free: the frame
 * pointer of unoptimized Thumb builds. */
#define EK_FIRST_STEP                                    \
    "ldr %[xb], [%[v]], #4\n\t"                          \
    "sxtb16 %[xa], %[xb]\n\t"                            \
    "sxtb16 %[xb], %[xb], ror #8\n\t"                    \
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

static inline acc4 dot4(const uint32_t *v, const uint32_t **wp, int32_t steps, acc4 a)
{
    const uint32_t *w = *wp;
    uint32_t xa, xb;
    const uint32_t *const end = v + steps;
    /* steps >= 1, two a turn after an odd one: one asm block (two would need more registers than
     * the caller leaves), xa free until the first step loads it. */
    __asm__ volatile("sub %[xa], %[end], %[v]\n\t"
                     "tst %[xa], #4\n\t"
                     "beq 2f\n\t" EK_FIRST_STEP "cmp %[v], %[end]\n\t"
                     "beq 3f\n\t"
                     "2:\n\t" EK_FIRST_STEP EK_FIRST_STEP "cmp %[v], %[end]\n\t"
                     "bne 2b\n\t"
                     "3:\n\t"
                     : [a0] "+r"(a.a0), [a1] "+r"(a.a1), [a2] "+r"(a.a2), [a3] "+r"(a.a3), [v] "+r"(v), [w] "+r"(w),
                       [xa] "=&r"(xa), [xb] "=&r"(xb)
                     : [end] "r"(end)
                     : "r4", "r5", "r6", "r8", "cc", "memory");
    *wp = w;
    return a;
}
#endif

/* What a pixel's channel pass needs, set once per call. */
typedef struct {
    const uint32_t *weights;
    const int32_t *records;
    int32_t steps;        /* of four window values */
    int32_t groups, tail; /* full groups of four output channels; channels past them */
    int32_t round_offset; /* 1 + 2 * (out_offset + 128), see requantize_u8 */
    uint32_t lo4, hi4;    /* act_min + 128 and act_max + 128 in four bytes */
} first_call;

/* Every output channel of one pixel from its staged window. Out of line: inlined into the pixel loop,
 * the loop's live values leave gcc too few registers for dot4's inline assembly (13). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void channels(const first_call *k, const uint32_t *window, int8_t *output)
{
    const uint32_t *w = k->weights;
    const int32_t *rec = k->records;
    const int32_t steps = k->steps;
    int32_t g, j;
    for (g = k->groups; g > 0; --g, rec += 12, output += 4) {
        acc4 a;
        a.a0 = rec[0];
        a.a1 = rec[1];
        a.a2 = rec[2];
        a.a3 = rec[3];
        a = dot4(window, &w, steps, a); /* w moves on to the next group's weights */
        store4(output,
               requantize_u8(a.a0, rec[4], rec[8], k->round_offset) |
                   requantize_u8(a.a1, rec[5], rec[9], k->round_offset) << 8 |
                   requantize_u8(a.a2, rec[6], rec[10], k->round_offset) << 16 |
                   requantize_u8(a.a3, rec[7], rec[11], k->round_offset) << 24,
               k->lo4, k->hi4);
    }
    if (EK_CONV_DSP_TAIL && k->tail) { /* the last 1 to 3 channels (their group's other weights are
                                         * zero); compiled out when no call has them (ek_dsp_paths.h) */
        acc4 a;
        a.a0 = rec[0];
        a.a1 = rec[1];
        a.a2 = rec[2];
        a.a3 = 0;
        a = dot4(window, &w, steps, a);
        {
            const int32_t acc[3] = {a.a0, a.a1, a.a2};
            for (j = 0; j < k->tail; ++j) {
                output[j] = requantize1(acc[j], rec[4 + j], rec[8 + j], k->round_offset, k->lo4, k->hi4);
            }
        }
    }
}

void ek_conv2d_first_dsp(const ek_conv_dsp_params *p, const int8_t *input, int8_t *output)
{
    uint32_t staged_words[EK_CONV_FIRST_MAX_WINDOW / 4]; /* the window's bytes, padded to a word */
    int8_t *const staged = (int8_t *)(void *)staged_words;
    const int32_t in_c = p->in_c;
    const int32_t values = p->k_h * p->k_w * in_c;
    const int32_t in_row = p->in_w * in_c;
    const int32_t in_image = p->in_h * in_row;
    const int32_t out_c = p->out_c;
    const int32_t run = p->k_w * in_c;            /* a window row's bytes */
    const int32_t x_step = p->stride_w * in_c;    /* input bytes from one output column to the next */
    const int32_t row_step = p->dil_h * in_row;   /* input bytes from one window row to the next */
    const int8_t zero = (int8_t)(-p->in_offset); /* the input zero point */
    /* Output columns [ox_lo, ox_hi) have every tap's column inside the input, and take the rows
     * path when dil_w is 1 and a row has at least a word (copy_row); the others go tap by tap. */
    const int32_t reach_w = (p->k_w - 1) * p->dil_w;
    const int32_t ox_lo = (p->pad_left + p->stride_w - 1) / p->stride_w;
    const int32_t last_x = p->in_w - 1 - reach_w + p->pad_left; /* ox * stride_w <= last_x */
    const int rows_path = p->dil_w == 1 && run >= 4 && last_x >= 0;
    const int32_t fit = rows_path ? last_x / p->stride_w + 1 : 0;
    const int32_t ox_hi = fit < p->out_w ? fit : p->out_w;
    first_call k;
    int32_t b, oy, ox, ky;
    k.weights = (const uint32_t *)p->weights;
    k.records = p->records;
    k.steps = (values + 3) >> 2; /* the window padded once to a multiple of 4 */
    k.groups = out_c >> 2;
    k.tail = out_c & 3;
    k.round_offset = 1 + 2 * (p->out_offset + 128);
    k.lo4 = (uint32_t)(p->act_min + 128) * 0x01010101u;
    k.hi4 = (uint32_t)(p->act_max + 128) * 0x01010101u;
    /* The bytes past K meet zero weights and are never written: zeroed once, they add 0. */
    memset(staged_words, 0, (size_t)k.steps * 4u);
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * in_image;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            const int rows_inside = y0 >= 0 && y0 + (p->k_h - 1) * p->dil_h < p->in_h;
            const int32_t lo = rows_inside && ox_lo < ox_hi ? ox_lo : p->out_w; /* [lo, hi): rows path */
            const int32_t hi = rows_inside && ox_lo < ox_hi ? ox_hi : p->out_w;
            for (ox = 0; ox < lo; ++ox, output += out_c) {
                stage_taps(p, image, y0, ox * p->stride_w - p->pad_left, zero, staged);
                channels(&k, staged_words, output);
            }
            if (ox < hi) {
                const int8_t *px = image + y0 * in_row + (ox * p->stride_w - p->pad_left) * in_c;
                for (; ox < hi; ++ox, px += x_step, output += out_c) {
                    const int8_t *from = px;
                    int8_t *to = staged;
                    for (ky = p->k_h; ky > 0; --ky, from += row_step, to += run) {
                        copy_row(to, from, run);
                    }
                    channels(&k, staged_words, output);
                }
            }
            for (; ox < p->out_w; ++ox, output += out_c) {
                stage_taps(p, image, y0, ox * p->stride_w - p->pad_left, zero, staged);
                channels(&k, staged_words, output);
            }
        }
    }
}

#else
typedef int ek_conv_first_dsp_unused; /* no DSP extension: the plain kernels run (ek_conv.c) */
#endif
