/* DEPTHWISE_CONV_2D 3x3 with the DSP extension on small maps, one channel's whole plane at a time.
 *
 * The channel-major idea of ek_depthwise_rows_dsp.c (a channel's input as int16 rows with the
 * input offset added and zeros for padding, so horizontally adjacent taps are adjacent halfwords
 * that SMLAD pairs, two output pixels sharing every word read), but for maps small enough that
 * the channel's whole padded plane fits a stack buffer: one fill, then one MAC loop over all
 * output rows and one requantization loop over all outputs per channel. On narrow maps (VWW's
 * 12x12 ... 3x3, KWS's 25x5) the rows path's per-row set-up outweighed its paired MACs and the
 * four-channel kernel spends a MAC instruction per MAC plus two extends per tap.
 *
 * A map taller than wide runs transposed (rows of the plane are the image's columns, the
 * weights transposed to match): the pair loop then runs along the long side, so fewer rows pay
 * the loop's set-up and fewer pixels are computed only to be dropped (an odd row's last pair).
 *
 * Per pair of output pixels and window row (`e` = (w0, w1), `o` = (w1, w2) doubled):
 *   A = (x[s], x[s+1]), B = (x[s+2], x[s+3])
 *   pixel s:    SMLAD A.e + SMLABT B.o         pixel s+1:  SMLATB A.e + SMLAD B.o
 * Stride 1 only: stride 2 fills four input values per output, which costs more than it saves.
 *
 * The padding is zero in the plane, which adds what TFLite Micro's reference skips: the same
 * integers modulo 2^32, requantized like the other DSP kernels (ek_requant_dsp.h): bit for bit.
 * In place: a channel's plane is copied before its outputs are written, and its outputs land
 * on its own input bytes only (one image, the output no larger than the input).
 */
#include "ek_conv_dsp.h"

#if defined(__ARM_FEATURE_DSP) || defined(EK_ACLE_EMULATION)

#include <string.h>

#include "ek_dsp.h"
#include "ek_requant_dsp.h"

/* The op in the plane's coordinates (rows and columns swapped when transposed). */
typedef struct {
    int32_t in_h, in_w, out_h, out_w, pad_t, pad_l;
    int32_t in_row, in_col;   /* bytes between input rows / columns of one channel */
    int32_t out_row, out_col; /* bytes between output rows / columns of one channel */
    int32_t rows, width;      /* the plane: rows of width halfwords (width even) */
    int32_t pairs;            /* pixel pairs per output row (an odd row computes one more) */
    int32_t block;            /* output rows per block of accumulators */
    int32_t transposed;
} plane_geometry;

static int32_t geometry(const ek_depthwise_dsp_params *p, plane_geometry *g)
{
    const int32_t c = p->in_c;
    int32_t needed;
    if (p->k_h != 3 || p->k_w != 3 || p->dil_h != 1 || p->dil_w != 1 || p->stride_h != 1 || p->stride_w != 1 ||
        p->in_c != p->out_c || p->pad_left < 0) {
        return 0;
    }
    /* A channel's fill, weights and loop set-up cost some hundreds of instructions: measured on
     * qemu-m4 (instructions per MAC against the four-channel kernel, first C version) 25x5 4.5
     * vs 5.4 and 12x12 4.7 vs 4.9 gain, 6x6 6.1 vs 5.0 loses (and stride 2, filling four input
     * values per output, 12x12 6.5 vs 4.9). */
    if (p->out_h * p->out_w < EK_DEPTHWISE_PLANE_MIN_PIXELS) {
        return 0;
    }
    /* Transposed only with both paddings non-negative: a band view (ek_chunks_dsp.c) may start
     * below the image's top (pad_top < 0), which the plane handles as rows, not as columns. */
    g->transposed = p->out_h > p->out_w && p->pad_top >= 0;
    if (g->transposed) {
        g->in_h = p->in_w, g->in_w = p->in_h, g->out_h = p->out_w, g->out_w = p->out_h;
        g->pad_t = p->pad_left, g->pad_l = p->pad_top;
        g->in_row = c, g->in_col = p->in_w * c;
        g->out_row = c, g->out_col = p->out_w * c;
    } else {
        g->in_h = p->in_h, g->in_w = p->in_w, g->out_h = p->out_h, g->out_w = p->out_w;
        g->pad_t = p->pad_top, g->pad_l = p->pad_left;
        g->in_row = p->in_w * c, g->in_col = c;
        g->out_row = p->out_w * c, g->out_col = c;
    }
    g->pairs = (g->out_w + 1) / 2;
    /* The last pair's last word ends at halfword 2 * pairs + 2. */
    needed = 2 * g->pairs + 2;
    g->width = needed > g->pad_l + g->in_w ? needed : g->pad_l + g->in_w;
    g->width += g->width & 1;
    g->rows = g->out_h + 2;
    g->block = EK_DEPTHWISE_PLANE_ACC / (2 * g->pairs);
    return g->rows * g->width <= EK_DEPTHWISE_PLANE_MAX_HALFWORDS && g->block >= 1;
}

int32_t ek_depthwise_plane_fits(const ek_depthwise_dsp_params *p)
{
    plane_geometry g;
    return geometry(p, &g);
}

static inline int32_t pack2(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}

/* Channel c's weights, doubled (the requantization takes 2 * acc), as e, o per window row of the
 * plane: (w0, w1), (w1, w2). Byte loads at constant offsets from the channel's first weight: the
 * layout is a word per tap with one byte per channel of the group. */
static void channel_weights(const ek_depthwise_dsp_params *p, const plane_geometry *g, int32_t c, int32_t *w)
{
    const int8_t *b = (const int8_t *)p->weights + (c >> 2) * 36 + (c & 3);
    int32_t t[9];
    int32_t i;
    for (i = 0; i < 9; ++i) {
        t[i] = 2 * b[4 * i];
    }
    if (g->transposed) { /* (ky, kx) -> (kx, ky) */
        int32_t u;
        u = t[1], t[1] = t[3], t[3] = u;
        u = t[2], t[2] = t[6], t[6] = u;
        u = t[5], t[5] = t[7], t[7] = u;
    }
    for (i = 0; i < 3; ++i) {
        w[2 * i] = pack2(t[3 * i], t[3 * i + 1]);
        w[2 * i + 1] = pack2(t[3 * i + 1], t[3 * i + 2]);
    }
}

/* Channel c's input into the plane (its padding stays zero from the call's start). */
static void fill(const plane_geometry *g, const int8_t *image, int32_t off, int16_t *plane)
{
    const int32_t first = g->pad_t > 0 ? g->pad_t : 0;
    const int32_t last = g->pad_t + g->in_h < g->rows ? g->pad_t + g->in_h : g->rows;
    const int32_t step = g->in_col;
    int32_t r;
    for (r = first; r < last; ++r) {
        const int8_t *src = image + (r - g->pad_t) * g->in_row;
        int16_t *dst = plane + r * g->width + g->pad_l;
        int32_t n = g->in_w;
        for (; n >= 4; n -= 4, src += 4 * step, dst += 4) {
            dst[0] = (int16_t)(src[0] + off);
            dst[1] = (int16_t)(src[step] + off);
            dst[2] = (int16_t)(src[2 * step] + off);
            dst[3] = (int16_t)(src[3 * step] + off);
        }
        for (; n > 0; --n, src += step) {
            *dst++ = (int16_t)(*src + off);
        }
    }
}

/* One output row's pixel pairs: acc[0 .. 2 * pairs) from the window rows x0, x1, x2 (plane words),
 * w = e0, o0, e1, o1, e2, o2, each accumulator starting at bias2 (the op's bias, doubled). On the target one assembly block: gcc kept the six weights, three
 * row pointers and two accumulators in more registers than the core has and spilled inside the
 * loop (measured: 27 instructions a pair instead of 22). */
#if defined(EK_ACLE_EMULATION)
static void row_pairs(const int32_t *x0, const int32_t *x1, const int32_t *x2, const int32_t *w, int32_t bias2,
                      int32_t *acc, int32_t *end)
{
    for (; acc < end; acc += 2, ++x0, ++x1, ++x2) {
        int32_t a0, a1;
        a0 = __smlabt(x0[1], w[1], __smlad(x0[0], w[0], bias2));
        a1 = __smlad(x0[1], w[1], __smlatb(x0[0], w[0], bias2));
        a0 = __smlabt(x1[1], w[3], __smlad(x1[0], w[2], a0));
        a1 = __smlad(x1[1], w[3], __smlatb(x1[0], w[2], a1));
        a0 = __smlabt(x2[1], w[5], __smlad(x2[0], w[4], a0));
        a1 = __smlad(x2[1], w[5], __smlatb(x2[0], w[4], a1));
        acc[0] = a0;
        acc[1] = a1;
    }
}
#else
#define EK_PLANE_ROW(X, E, O)                   \
    "ldr %[t], [%[" X "]], #4\n\t"              \
    "smlad %[a0], %[t], %[" E "], %[a0]\n\t"   \
    "smlatb %[a1], %[t], %[" E "], %[a1]\n\t"  \
    "ldr %[t], [%[" X "]]\n\t"                  \
    "smlabt %[a0], %[t], %[" O "], %[a0]\n\t"  \
    "smlad %[a1], %[t], %[" O "], %[a1]\n\t"
/* Not inlined: the block takes 13 registers and addresses `end` and `bias2` on the stack, which
 * inside the kernel's large frame gcc could not always do (cortex-m33: impossible constraints). */
__attribute__((noinline)) static void row_pairs(const int32_t *x0, const int32_t *x1, const int32_t *x2,
                                                const int32_t *w, int32_t bias2, int32_t *acc, int32_t *end)
{
    int32_t a0, a1, t;
    __asm__ volatile("1:\n\t"
                     "ldr %[a1], %[bias]\n\t"
                     "ldr %[t], [%[x0]], #4\n\t"
                     "smlad %[a0], %[t], %[e0], %[a1]\n\t"
                     "smlatb %[a1], %[t], %[e0], %[a1]\n\t"
                     "ldr %[t], [%[x0]]\n\t"
                     "smlabt %[a0], %[t], %[o0], %[a0]\n\t"
                     "smlad %[a1], %[t], %[o0], %[a1]\n\t" EK_PLANE_ROW("x1", "e1", "o1") EK_PLANE_ROW("x2", "e2", "o2")
                     "strd %[a0], %[a1], [%[acc]], #8\n\t"
                     "ldr %[t], %[end]\n\t"
                     "cmp %[acc], %[t]\n\t"
                     "bne 1b\n\t"
                     : [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2), [acc] "+r"(acc), [a0] "=&r"(a0), [a1] "=&r"(a1),
                       [t] "=&r"(t)
                     : [e0] "r"(w[0]), [o0] "r"(w[1]), [e1] "r"(w[2]), [o1] "r"(w[3]), [e2] "r"(w[4]), [o2] "r"(w[5]),
                       [end] "m"(end), [bias] "m"(bias2)
                     : "cc", "memory");
}
#endif

/* `count` output rows from plane word `x` (their first window row): 2 * pairs accumulators a
 * row into acc. `ww` words per plane row (stride 1: the next output row starts one row down). */
static void macs(const int32_t *x, int32_t ww, const int32_t *w, int32_t bias2, int32_t pairs, int32_t count,
                 int32_t *acc)
{
    for (; count > 0; --count, x += ww, acc += 2 * pairs) {
        row_pairs(x, x + ww, x + 2 * ww, w, bias2, acc, acc + 2 * pairs);
    }
}

/* What the requantization of one channel shares (bias2 goes into the accumulators). */
typedef struct {
    int32_t bias2, mult, shift, round;
    int32_t lo, hi; /* act_min + 128, act_max + 128 */
} plane_channel;

/* One output row's `n` outputs `step` bytes apart from its accumulators (bias included), two
 * at a time: `F(acc)` is one output byte. */
#define EK_PLANE_OUTPUTS(F)                                           \
    do {                                                              \
        int32_t n_ = n;                                               \
        for (; n_ >= 2; n_ -= 2, acc += 2, o += 2 * step) {           \
            const int32_t v0_ = acc[0], v1_ = acc[1];                 \
            o[0] = (int8_t)(F(v0_));                                  \
            o[step] = (int8_t)(F(v1_));                               \
        }                                                             \
        if (n_ > 0) {                                                 \
            *o = (int8_t)(F(*acc));                                   \
            ++acc;                                                    \
        }                                                             \
    } while (0)

/* `count` output rows of accumulators (2 * pairs a row) to int8 outputs. The activation's bounds
 * as byte SIMD on one byte (max: UQSUB8 then UADD8 of the bound; min: UQSUB8 from the bound,
 * then USUB8 from it), adding 128 on the way back to int8 by using the bound plus 128 (mod 256)
 * in the last step. */
static void requantize(const plane_geometry *g, const plane_channel *q, const int32_t *acc, int32_t count,
                       int8_t *out)
{
    const int32_t mult = q->mult, shift = q->shift, round = q->round, step = g->out_col;
    const int32_t n = g->out_w, skip = 2 * g->pairs - g->out_w;
    const uint32_t lo = (uint32_t)q->lo, hi = (uint32_t)q->hi;
    const uint32_t lo_x = (lo + 128u) & 0xFFu, hi_x = (hi + 128u) & 0xFFu;
#define EK_PLANE_U8(v) requantize_u8(v, mult, shift, round)
#define EK_PLANE_NONE(v) (EK_PLANE_U8(v) ^ 0x80u)
#define EK_PLANE_LO(v) __uadd8(__uqsub8(EK_PLANE_U8(v), lo), lo_x)
#define EK_PLANE_BOTH(v) __usub8(hi_x, __uqsub8(hi, __uadd8(__uqsub8(EK_PLANE_U8(v), lo), lo)))
    for (; count > 0; --count, out += g->out_row, acc += skip) {
        int8_t *o = out;
        if (lo == 0 && hi == 255) { /* USAT's [0, 255] is the activation's range */
            EK_PLANE_OUTPUTS(EK_PLANE_NONE);
        } else if (hi == 255) { /* RELU and the like: the lower bound only */
            EK_PLANE_OUTPUTS(EK_PLANE_LO);
        } else {
            EK_PLANE_OUTPUTS(EK_PLANE_BOTH);
        }
    }
#undef EK_PLANE_U8
#undef EK_PLANE_NONE
#undef EK_PLANE_LO
#undef EK_PLANE_BOTH
}

void ek_depthwise_plane_dsp(const ek_depthwise_dsp_params *p, const int8_t *input, int8_t *output)
{
    int32_t plane_words[EK_DEPTHWISE_PLANE_MAX_HALFWORDS / 2];
    int32_t acc[EK_DEPTHWISE_PLANE_ACC];
    int32_t w[6];
    int16_t *const plane = (int16_t *)plane_words;
    const int32_t in_image = p->in_h * p->in_w * p->in_c, out_image = p->out_h * p->out_w * p->out_c;
    plane_geometry g;
    plane_channel q;
    int32_t b, c, oy, ww;
    if (!geometry(p, &g)) {
        return; /* callers check ek_depthwise_plane_fits first */
    }
    ww = g.width / 2;
    q.round = 1 + 2 * (p->out_offset + 128);
    q.lo = p->act_min + 128;
    q.hi = p->act_max + 128;
    /* The padding is never written: zero once for every channel. */
    memset(plane, 0, (size_t)(g.rows * g.width) * sizeof plane[0]);
    for (b = 0; b < p->batches; ++b, input += in_image, output += out_image) {
        for (c = 0; c < p->in_c; ++c) {
            channel_weights(p, &g, c, w);
            q.bias2 = 2 * p->bias[c];
            q.mult = p->multiplier[c];
            q.shift = p->right_shift[c];
            fill(&g, input + c, p->in_offset, plane);
            for (oy = 0; oy < g.out_h; oy += g.block) {
                const int32_t count = g.out_h - oy < g.block ? g.out_h - oy : g.block;
                const int32_t *x = plane_words + oy * ww;
                macs(x, ww, w, q.bias2, g.pairs, count, acc);
                requantize(&g, &q, acc, count, output + c + oy * g.out_row);
            }
        }
    }
}

#else
typedef int ek_depthwise_plane_unused; /* no DSP extension: the plain kernels run (ek_conv.c) */
#endif
