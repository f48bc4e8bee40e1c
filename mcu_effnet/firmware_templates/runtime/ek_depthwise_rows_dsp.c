/* DEPTHWISE_CONV_2D with the DSP extension, one channel at a time over channel-major rows.
 *
 * In HWC the taps of one channel lie in_c bytes apart, so SMLAD (two MACs of adjacent
 * halfwords) cannot pair them (ek_depthwise_dsp.c pairs channels instead: one MAC per
 * instruction). Here each channel walks the whole image: its k input rows sit in a small ring
 * of int16 rows on the stack, the input offset already added and the padding columns zero, so
 * horizontally adjacent taps are adjacent halfwords. A channel's weights, doubled (the
 * requantization takes 2 * acc) and paired, stay in registers for the whole channel, and two
 * output pixels share each input word they read:
 *
 *   pixel at even column s:  SMLAD (x[s], x[s+1]) . (w0, w1)  + ... + SMLABT x[s+k-1] . w[k-1]
 *   pixel at odd column s:   SMLATB x[s] . w0  + SMLAD (x[s+1], x[s+2]) . (w1, w2) + ...
 *
 * (k = 3: four MAC instructions and two loads for the 18 MACs of two stride-1 pixels' row.)
 * Stride 2 starts every pixel at an even column: the even form for both. Each input row enters
 * the ring once per channel (stride 1: once in all), and no tap needs a bounds test: padded
 * columns and rows outside the input are zeros, which is what skipping them (TFLite Micro's
 * reference) adds.
 *
 * Same integers as the reference modulo 2^32, requantized like the other DSP kernels
 * (ek_requant_dsp.h): bit for bit. Weights: the int8 layout of ek_depthwise_conv2d_dsp (read
 * once per channel), so the two kernels share one weights array and the choice is made here,
 * at run time (ek_depthwise_rows_width).
 */
#include "ek_conv_dsp.h"

#if defined(__ARM_FEATURE_DSP) || defined(EK_ACLE_EMULATION)

#include <string.h>

#include "ek_dsp.h"
#include "ek_requant_dsp.h"

#define EK_DW_MAX_K 5

int32_t ek_depthwise_rows_width(const ek_depthwise_dsp_params *p)
{
    const int32_t k = p->k_w;
    int32_t pixels, width;
    if (p->k_h != k || (k != 3 && k != 5) || p->dil_h != 1 || p->dil_w != 1 || p->stride_h < 1 ||
        (p->stride_w != 1 && p->stride_w != 2) || p->pad_left < 0 || p->in_c != p->out_c) {
        return 0;
    }
    /* A channel's pass costs some hundred instructions of set-up, ring and calls per output row:
     * on narrow or short maps that outweighs the paired MACs (measured on qemu-m4: 12x12 3x3
     * 5.8 instructions per MAC against the four-channel kernel's 4.9; 24x24 3x3 4.5 against 4.9;
     * 14x14 5x5 3.2 against 3.6). */
    if (p->out_h < EK_DEPTHWISE_ROWS_MIN_H || p->out_w < (k == 5 ? EK_DEPTHWISE_ROWS_MIN_W5 : EK_DEPTHWISE_ROWS_MIN_W3)) {
        return 0;
    }
    /* Pixels go in pairs (an odd row computes one more and drops it); the last word a pair
     * reads ends at column (pixels - 1) * stride + k. */
    pixels = p->out_w + (p->out_w & 1);
    width = (pixels - 1) * p->stride_w + k + 1;
    if (width < p->pad_left + p->in_w) {
        width = p->pad_left + p->in_w;
    }
    width += width & 1; /* rows start on words */
    return k * width <= EK_DEPTHWISE_ROWS_MAX_HALFWORDS ? width : 0;
}

int32_t ek_depthwise_rows_in_place(const ek_depthwise_dsp_params *p)
{
    /* Output row oy spans bytes below (oy + 1) * out_w * in_c, inside input rows <= oy; by then
     * the channel has read rows up to oy * stride_h - pad_top + k_h - 1 >= oy. A channel's
     * output bytes land on its own input bytes only, and no row is read twice (a window's rows
     * are consecutive and the windows move down). */
    return p->batches == 1 && p->out_w <= p->in_w && p->pad_top >= 0 && p->pad_top < p->k_h && p->stride_h >= 1 &&
           p->stride_h <= p->k_h;
}

static inline int32_t pair(const int16_t *x)
{
    int32_t v;
    memcpy(&v, x, 4);
    return v;
}

static inline int32_t pack2(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}

/* One channel's row of input y into `dst` (width halfwords whose padding columns are zero). */
static void fill_row(const ek_depthwise_dsp_params *p, const int8_t *image, int32_t c, int32_t y, int16_t *dst)
{
    const int32_t channels = p->in_c, off = p->in_offset;
    const int8_t *src = image + (y * p->in_w) * channels + c;
    int32_t n = p->in_w;
    dst += p->pad_left;
    for (; n >= 4; n -= 4, src += 4 * channels, dst += 4) {
        dst[0] = (int16_t)(src[0] + off);
        dst[1] = (int16_t)(src[channels] + off);
        dst[2] = (int16_t)(src[2 * channels] + off);
        dst[3] = (int16_t)(src[3 * channels] + off);
    }
    for (; n > 0; --n, src += channels) {
        *dst++ = (int16_t)(*src + off);
    }
}

/* Pixels per chunk of an output row: the MAC loop writes the chunk's accumulators, then the
 * requantization loop reads them. Two loops rather than one because together they need more
 * registers than the core has (measured: one loop spilled weights and constants to the stack
 * around every pixel pair). */
#define EK_DW_CHUNK 64
#if defined(__GNUC__)
#define EK_DW_APART static __attribute__((noinline)) /* its own registers, see EK_DW_CHUNK */
#else
#define EK_DW_APART static
#endif

/* The MACs of one window row for the pixel pair whose row words start at `x`. */
#define EK_ROW3_S1(x, e, o)                       \
    do {                                          \
        const int32_t A_ = pair(x), B_ = pair((x) + 2); \
        a0 = __smlad(A_, e, a0);                  \
        a0 = __smlabt(B_, o, a0);                 \
        a1 = __smlatb(A_, e, a1);                 \
        a1 = __smlad(B_, o, a1);                  \
    } while (0)
/* The first window row starts the accumulators (SMUAD, SMULTB): no bias register in the loop. */
#define EK_FIRST3_S1(x, e, o)                     \
    do {                                          \
        const int32_t A_ = pair(x), B_ = pair((x) + 2); \
        a0 = __smlabt(B_, o, ek_smuad(A_, e));     \
        a1 = __smlad(B_, o, ek_smultb(A_, e));     \
    } while (0)
#define EK_FIRST3_S2(x, e, o)                                           \
    do {                                                                \
        const int32_t A_ = pair(x), B_ = pair((x) + 2), C_ = pair((x) + 4); \
        a0 = __smlabt(B_, o, ek_smuad(A_, e));                           \
        a1 = __smlabt(C_, o, ek_smuad(B_, e));                           \
    } while (0)
#define EK_ROW3_S2(x, e, o)                                             \
    do {                                                                \
        const int32_t A_ = pair(x), B_ = pair((x) + 2), C_ = pair((x) + 4); \
        a0 = __smlad(A_, e, a0);                                        \
        a0 = __smlabt(B_, o, a0);                                       \
        a1 = __smlad(B_, e, a1);                                        \
        a1 = __smlabt(C_, o, a1);                                       \
    } while (0)
/* k = 5: `w` holds the row's (w0, w1), (w2, w3), (w1, w2), (w3, w4) */
#define EK_ROW5_S1(x, w)                                                \
    do {                                                                \
        const int32_t A_ = pair(x), B_ = pair((x) + 2), C_ = pair((x) + 4); \
        a0 = __smlad(A_, (w)[0], a0);                                   \
        a0 = __smlad(B_, (w)[1], a0);                                   \
        a0 = __smlabt(C_, (w)[3], a0);                                  \
        a1 = __smlatb(A_, (w)[0], a1);                                  \
        a1 = __smlad(B_, (w)[2], a1);                                   \
        a1 = __smlad(C_, (w)[3], a1);                                   \
    } while (0)
#define EK_ROW5_S2(x, w)                                                                    \
    do {                                                                                    \
        const int32_t A_ = pair(x), B_ = pair((x) + 2), C_ = pair((x) + 4), D_ = pair((x) + 6); \
        a0 = __smlad(A_, (w)[0], a0);                                                       \
        a0 = __smlad(B_, (w)[1], a0);                                                       \
        a0 = __smlabt(C_, (w)[3], a0);                                                      \
        a1 = __smlad(B_, (w)[0], a1);                                                       \
        a1 = __smlad(C_, (w)[1], a1);                                                       \
        a1 = __smlabt(D_, (w)[3], a1);                                                      \
    } while (0)

/* `pairs` pixel pairs of one output row into acc (2 * pairs values), the window's rows from
 * column `s` on (the first pixel's first tap). */
EK_DSP_INLINE void macs3(const int16_t *const *rows, int32_t s, int32_t stride, const int32_t *w, int32_t pairs,
                          int32_t *acc)
{
    const int16_t *x0 = rows[0] + s, *x1 = rows[1] + s, *x2 = rows[2] + s;
    const int32_t e0 = w[0], o0 = w[1], e1 = w[2], o1 = w[3], e2 = w[4], o2 = w[5];
    int32_t *const end = acc + 2 * pairs;
    if (stride == 1) {
        for (; acc < end; acc += 2, x0 += 2, x1 += 2, x2 += 2) {
            int32_t a0, a1;
            EK_FIRST3_S1(x0, e0, o0);
            EK_ROW3_S1(x1, e1, o1);
            EK_ROW3_S1(x2, e2, o2);
            acc[0] = a0;
            acc[1] = a1;
        }
    } else {
        for (; acc < end; acc += 2, x0 += 4, x1 += 4, x2 += 4) {
            int32_t a0, a1;
            EK_FIRST3_S2(x0, e0, o0);
            EK_ROW3_S2(x1, e1, o1);
            EK_ROW3_S2(x2, e2, o2);
            acc[0] = a0;
            acc[1] = a1;
        }
    }
}

EK_DSP_INLINE void macs5(const int16_t *const *rows, int32_t s, int32_t stride, const int32_t *w, int32_t pairs,
                          int32_t *acc)
{
    const int16_t *x0 = rows[0] + s, *x1 = rows[1] + s, *x2 = rows[2] + s, *x3 = rows[3] + s, *x4 = rows[4] + s;
    int32_t *const end = acc + 2 * pairs;
    const int32_t step = 2 * stride;
    for (; acc < end; acc += 2, x0 += step, x1 += step, x2 += step, x3 += step, x4 += step) {
        int32_t a0 = 0, a1 = 0;
        if (stride == 1) {
            EK_ROW5_S1(x0, w);
            EK_ROW5_S1(x1, w + 4);
            EK_ROW5_S1(x2, w + 8);
            EK_ROW5_S1(x3, w + 12);
            EK_ROW5_S1(x4, w + 16);
        } else {
            EK_ROW5_S2(x0, w);
            EK_ROW5_S2(x1, w + 4);
            EK_ROW5_S2(x2, w + 8);
            EK_ROW5_S2(x3, w + 12);
            EK_ROW5_S2(x4, w + 16);
        }
        acc[0] = a0;
        acc[1] = a1;
    }
}

/* What the requantization of one channel shares. */
typedef struct {
    int32_t mult, shift, round;
    uint32_t lo4, hi4; /* act_min + 128, act_max + 128 in four bytes */
    int32_t clamp;     /* whether the activation's bounds are narrower than int8's */
} dw_channel;

/* n accumulators to int8 outputs `step` bytes apart. */
EK_DSP_INLINE void requant_row(const int32_t *acc, int32_t n, int32_t bias2, const dw_channel *q, int32_t step,
                             int8_t *out)
{
    const int32_t mult = q->mult, shift = q->shift, round = q->round;
    const uint32_t lo4 = q->lo4, hi4 = q->hi4;
    const int32_t *end;
    int32_t i;
    if (!q->clamp) { /* USAT's [0, 255] is the activation's range */
        for (i = 0; i < n; ++i, out += step) {
            *out = (int8_t)(requantize_u8(acc[i] + bias2, mult, shift, round) ^ 0x80u);
        }
        return;
    }
    /* Two pixels' bytes in one word: clamped together with byte SIMD (ek_requant_dsp.h; four
     * to a word measured slower: the third and fourth byte's store offsets spill). */
    for (end = acc + (n & ~1); acc < end; acc += 2, out += 2 * step) {
        uint32_t v = requantize_u8(acc[0] + bias2, mult, shift, round) |
                     requantize_u8(acc[1] + bias2, mult, shift, round) << 8;
        v = __uadd8(__uqsub8(v, lo4), lo4);
        v = __usub8(hi4, __uqsub8(hi4, v)) ^ 0x80808080u; /* bytes 0, 1 stored */
        out[0] = (int8_t)v;
        out[step] = (int8_t)(v >> 8);
    }
    if (n & 1) {
        *out = requantize1(acc[0] + bias2, mult, shift, round, lo4, hi4);
    }
}

/* Channel c's weights as doubled halfword pairs, per window row: k = 3: (w0, w1), (w1, w2);
 * k = 5: (w0, w1), (w2, w3), (w1, w2), (w3, w4). */
static void channel_weights(const ek_depthwise_dsp_params *p, int32_t c, int32_t *w)
{
    const int32_t k = p->k_w, taps = k * k;
    const uint32_t *words = (const uint32_t *)p->weights + (c >> 2) * taps;
    const int32_t lane = 8 * (c & 3);
    int32_t t[EK_DW_MAX_K];
    int32_t ky, kx;
    for (ky = 0; ky < k; ++ky) {
        for (kx = 0; kx < k; ++kx) {
            t[kx] = 2 * (int32_t)(int8_t)(uint8_t)((words[ky * k + kx] >> lane) & 0xFFu);
        }
        if (k == 3) {
            *w++ = pack2(t[0], t[1]);
            *w++ = pack2(t[1], t[2]);
        } else {
            *w++ = pack2(t[0], t[1]);
            *w++ = pack2(t[2], t[3]);
            *w++ = pack2(t[1], t[2]);
            *w++ = pack2(t[3], t[4]);
        }
    }
}

/* One output row of one channel, a chunk of pixels at a time: the MAC loop, then the
 * requantization loop, in one call (EK_DW_APART). */
EK_DW_APART void ek_dw_output_row(const int16_t *const *rows, const ek_depthwise_dsp_params *p, const int32_t *w,
                             int32_t bias2, const dw_channel *q, int8_t *out)
{
    int32_t acc[EK_DW_CHUNK];
    const int32_t step = p->in_c;
    int32_t ox, n;
    for (ox = 0; ox < p->out_w; ox += n, out += n * step) {
        n = p->out_w - ox < EK_DW_CHUNK ? p->out_w - ox : EK_DW_CHUNK;
        if (p->k_w == 3) {
            macs3(rows, ox * p->stride_w, p->stride_w, w, (n + 1) / 2, acc);
        } else {
            macs5(rows, ox * p->stride_w, p->stride_w, w, (n + 1) / 2, acc);
        }
        requant_row(acc, n, bias2, q, step, out);
    }
}

/* Input row y of channel c into ring slot `dst`: its values, or zeros outside the input. */
static void load_row(const ek_depthwise_dsp_params *p, const int8_t *image, int32_t c, int32_t y, int32_t width,
                     int16_t *dst)
{
    if (y >= 0 && y < p->in_h) {
        fill_row(p, image, c, y, dst);
    } else {
        memset(dst, 0, (size_t)width * sizeof dst[0]);
    }
}

void ek_depthwise_rows_dsp(const ek_depthwise_dsp_params *p, int32_t width, const int8_t *input, int8_t *output)
{
    int16_t ring[EK_DEPTHWISE_ROWS_MAX_HALFWORDS];
    int32_t w[4 * EK_DW_MAX_K];
    const int16_t *rows[EK_DW_MAX_K];
    const int32_t k = p->k_w, channels = p->in_c, stride_h = p->stride_h;
    const int32_t in_image = p->in_h * p->in_w * channels, out_row = p->out_w * channels;
    int32_t b, c, oy, ky, bias2;
    dw_channel q;
    q.round = 1 + 2 * (p->out_offset + 128);
    q.lo4 = (uint32_t)(p->act_min + 128) * 0x01010101u;
    q.hi4 = (uint32_t)(p->act_max + 128) * 0x01010101u;
    q.clamp = p->act_min > -128 || p->act_max < 127;
    /* The padding columns are never written: zero once for every channel. */
    memset(ring, 0, (size_t)(k * width) * sizeof ring[0]);
    for (b = 0; b < p->batches; ++b, input += in_image, output += p->out_h * out_row) {
        for (c = 0; c < channels; ++c) {
            /* Window row ky sits in slot (first + ky) mod k; moving down by stride_h <= k rows
             * drops rows 0..stride_h-1, whose slots then take the window's new last rows. */
            int32_t first = 0, y0 = -p->pad_top;
            int8_t *out = output + c;
            channel_weights(p, c, w);
            q.mult = p->multiplier[c];
            q.shift = p->right_shift[c];
            bias2 = 2 * p->bias[c];
            for (ky = 0; ky < k; ++ky) {
                load_row(p, input, c, y0 + ky, width, ring + ky * width);
            }
            for (oy = 0; oy < p->out_h; ++oy, y0 += stride_h, out += out_row) {
                int32_t slot;
                if (oy > 0) {
                    if (stride_h >= k) {
                        first = 0;
                        for (ky = 0; ky < k; ++ky) {
                            load_row(p, input, c, y0 + ky, width, ring + ky * width);
                        }
                    } else {
                        slot = first;
                        first += stride_h;
                        first -= first >= k ? k : 0;
                        for (ky = k - stride_h; ky < k; ++ky) {
                            load_row(p, input, c, y0 + ky, width, ring + slot * width);
                            slot += slot + 1 == k ? 1 - k : 1;
                        }
                    }
                }
                for (ky = 0, slot = first; ky < k; ++ky) {
                    rows[ky] = ring + slot * width;
                    slot += slot + 1 == k ? 1 - k : 1;
                }
                ek_dw_output_row(rows, p, w, bias2, &q, out);
            }
        }
    }
}

#else
typedef int ek_depthwise_rows_unused; /* no DSP extension: the plain kernels run (ek_conv.c) */
#endif
