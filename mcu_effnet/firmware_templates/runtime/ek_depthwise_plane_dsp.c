/* DEPTHWISE_CONV_2D 3x3 with the DSP extension on small maps, one channel's whole plane at a time.
 *
 * The channel-major idea of ek_depthwise_rows_dsp.c (a channel's input as int16 rows with the
 * input offset added and zeros for padding, so horizontally adjacent taps are adjacent halfwords
 * that SMLAD pairs, two output pixels sharing every word read), but for maps small enough that
 * the channel's whole padded plane fits a stack buffer: one fill, then one MAC loop over all
 * output rows and one requantization loop over all outputs per channel. On narrow maps (VWW's
 * 12x12 ... 4x4, KWS's 25x5) the rows path's per-row set-up outweighed its paired MACs and the
 * four-channel kernel spends a MAC instruction per MAC plus two extends per tap.
 *
 * On small maps the per-channel work around the MACs decides (6x6: the MACs were a quarter of
 * the instructions), so: four channels' planes are filled at once where they fit the buffer
 * (one word read and two SXTAB16 per pixel for the four, instead of a byte read, add and store
 * per value), the weights are packed without a round trip through the stack, the accumulators
 * of consecutive rows lie out_w apart so an untransposed block requantizes as one run, and the
 * requantization goes four outputs at a time in requantize_k's SMMLAR form (one assembly loop, one
 * clamp of four bytes). Where the planes still fit, their rows lie 16 or 32 halfwords apart (the
 * pitch) and the pair loop reads the three window rows with LDRD at fixed offsets from one
 * pointer (qemu-m4, VWW's 6x6x128: about 35 instructions an output before these steps, 29 now:
 * the pair loop 11.5, the requantization 9, the fill 3.5, a channel's set-up the rest).
 *
 * A map taller than wide runs transposed (rows of the plane are the image's columns, the
 * weights transposed to match): the pair loop then runs along the long side, so fewer rows pay
 * the loop's set-up and fewer pixels are computed only to be dropped (an odd row's last pair).
 *
 * Per pair of output pixels and window row (`e` = (w0, w1), `o` = (w1, w2) doubled):
 *   A = (x[s], x[s+1]), B = (x[s+2], x[s+3])
 *   pixel s:    SMLAD A.e + SMLABT B.o         pixel s+1:  SMLATB A.e + SMLAD B.o
 * Stride 2 (pitched planes only, four channels filled at once): pixel pair t reads words
 * W0 = (x[4t], x[4t+1]), W1, W2 of each window row: pixel 2t SMLAD W0.e + SMLABT W1.o, pixel
 * 2t + 1 SMLAD W1.e + SMLABT W2.o. It fills four input values per output, so a channel's plane
 * alone stays on the four-channel kernel (measured slower, see geometry).
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
    int32_t stride; /* 1, or 2 in both directions (then pitched only) */
    int32_t size;  /* halfwords per plane (rows * width) */
    int32_t group; /* planes filled at once: 4 where four fit the buffer, else 1 */
} plane_geometry;

static int32_t geometry(const ek_depthwise_dsp_params *p, plane_geometry *g)
{
    const int32_t c = p->in_c;
    int32_t needed, pitch;
    if (p->k_h != 3 || p->k_w != 3 || p->dil_h != 1 || p->dil_w != 1 || p->stride_h != p->stride_w ||
        (p->stride_h != 1 && (p->stride_h != 2 || !EK_DEPTHWISE_PLANE_STRIDE2)) || p->in_c != p->out_c ||
        p->pad_left < 0) {
        return 0;
    }
    g->stride = p->stride_h;
    /* A channel's weights, loop set-ups and requantization tails cost some hundred instructions:
     * measured on qemu-m4 (instructions per MAC, four planes filled at once) 6x6 3.90 and 7x7
     * 3.88 against the four-channel kernel's 5.04 and 4.94, 4x4 4.86, but 3x3 6.68 against 5.13.
     * Stride 2 fills four input values per output (a first C version measured 12x12 6.5 against
     * the four-channel kernel's 4.9); with the assembly loops below it takes the plane too. */
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
    /* The last pair's last word ends at halfword 2 * pairs + 2 (stride 2: 4 * pairs + 2). */
    needed = 2 * g->stride * g->pairs + 2;
    g->width = needed > g->pad_l + g->in_w ? needed : g->pad_l + g->in_w;
    g->width += g->width & 1;
    g->rows = (g->out_h - 1) * g->stride + 3;
    g->size = g->rows * g->width;
    g->group = p->in_c >= 4 && 4 * g->size <= EK_DEPTHWISE_PLANE_MAX_HALFWORDS ? 4 : 1;
    if (g->size > EK_DEPTHWISE_PLANE_MAX_HALFWORDS) {
        return 0;
    }
    /* Rows 16 or 32 halfwords apart where the planes still fit (the same group): the pair loop
     * then reads the three window rows at fixed offsets from one pointer with LDRD (pitched). */
    pitch = g->width <= 16 ? 16 : (g->width <= 32 ? 32 : 0);
    if (pitch > 0 && g->group * g->rows * pitch <= EK_DEPTHWISE_PLANE_MAX_HALFWORDS) {
        g->width = pitch;
        g->size = g->rows * pitch;
    } else if (g->stride == 2) {
        return 0; /* stride 2 has only the pitched loops */
    }
    /* Stride 2 fills four input values per output: a channel's plane alone costs more than the
     * four-channel kernel (qemu-m4, instructions per MAC: EfficientNet's 7x7x240 5.76 against
     * 4.76), four planes at once less (VWW's 6x6x64 4.45 against 4.89). */
    if (g->stride == 2 && g->group != 4) {
        return 0;
    }
    /* Output rows lie out_w accumulators apart (an odd row's extra pixel lands on the next row's
     * first accumulator, which that row then writes): the block's last row ends out_w & 1 past. */
    g->block = (EK_DEPTHWISE_PLANE_ACC - (g->out_w & 1)) / g->out_w;
    return g->block >= 1;
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

/* One channel's weights, doubled (the requantization takes 2 * acc), as e, o per window row of
 * the plane: (w0, w1), (w1, w2). `b` is the channel's first weight; the layout is a word per tap
 * with one byte per channel of the group, so tap (i, j) of the plane is byte 4 * (i * rs + j * cs)
 * ((rs, cs) = (1, 3) transposed). Inlined with constant rs, cs: nine byte loads at fixed offsets. */
EK_DSP_INLINE void weights_at(const int8_t *b, int32_t rs, int32_t cs, int32_t *w)
{
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t t0 = 2 * b[4 * i * rs], t1 = 2 * b[4 * (i * rs + cs)], t2 = 2 * b[4 * (i * rs + 2 * cs)];
        w[2 * i] = pack2(t0, t1);
        w[2 * i + 1] = pack2(t1, t2);
    }
}

static void channel_weights(const ek_depthwise_dsp_params *p, const plane_geometry *g, int32_t c, int32_t *w)
{
    const int8_t *b = (const int8_t *)p->weights + (c >> 2) * 36 + (c & 3);
    if (g->transposed) {
        weights_at(b, 1, 3, w);
    } else {
        weights_at(b, 3, 1, w);
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

/* Four bytes to any address (STR allows unaligned addresses on Armv7-M / Armv8-M Mainline). */
static inline void ek_store4(int16_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* Channels c .. c + 3's input (`image` at channel c) into four planes g->size halfwords apart:
 * one word read and two extends (the offset added on the way) per pixel for the four. */
static void fill4(const plane_geometry *g, const int8_t *image, int32_t off2, int16_t *plane)
{
    const int32_t first = g->pad_t > 0 ? g->pad_t : 0;
    const int32_t last = g->pad_t + g->in_h < g->rows ? g->pad_t + g->in_h : g->rows;
    const int32_t step = g->in_col, size = g->size;
    int32_t r;
    for (r = first; r < last; ++r) {
        const int8_t *src = image + (r - g->pad_t) * g->in_row;
        int16_t *dst = plane + r * g->width + g->pad_l;
        int16_t *const end = dst + g->in_w;
        /* Two pixels at a time: each plane's two halfwords packed into one word (PKHBT / PKHTB),
         * 9 instructions a pixel against 13 (a word store may be unaligned: Armv7-M allows it). */
        for (; dst + 2 <= end; dst += 2, src += 2 * step) {
            const uint32_t v0 = ek_load4(src), v1 = ek_load4(src + step);
            const uint32_t e0 = (uint32_t)__sxtab16(off2, (int32_t)v0), e1 = (uint32_t)__sxtab16(off2, (int32_t)v1);
            const uint32_t o0 = (uint32_t)ek_sxtab16_ror8(off2, v0), o1 = (uint32_t)ek_sxtab16_ror8(off2, v1);
            ek_store4(dst, ek_pkhbt16(e0, e1));
            ek_store4(dst + size, ek_pkhbt16(o0, o1));
            ek_store4(dst + 2 * size, ek_pkhtb16(e1, e0));
            ek_store4(dst + 3 * size, ek_pkhtb16(o1, o0));
        }
        for (; dst < end; ++dst, src += step) {
            const uint32_t v = ek_load4(src);
            const int32_t e = __sxtab16(off2, (int32_t)v); /* (x0, x2) + off */
            const int32_t o = ek_sxtab16_ror8(off2, v);     /* (x1, x3) + off */
            dst[0] = (int16_t)e;
            dst[size] = (int16_t)o;
            dst[2 * size] = (int16_t)(e >> 16);
            dst[3 * size] = (int16_t)(o >> 16);
        }
    }
}

/* The rows of one block of outputs, for the MAC loop (a struct on the stack, so the assembly
 * addresses it as memory operands: the loop itself needs 13 registers). */
typedef struct {
    int32_t bias2;     /* the op's bias, doubled: every accumulator starts there */
    int32_t *row_end;  /* the current row's last accumulator + 1 (advanced row by row) */
    int32_t row_bytes; /* out_w accumulators: from one row's first accumulator to the next's */
    int32_t x_skip;    /* bytes from a row's last pair's window to the next row's first */
    int32_t acc_skip;  /* 0, or -4: back over an odd row's extra pixel */
    int32_t *end;      /* the block's last row's end */
    int32_t ww;        /* words per plane row (the loops that keep three row pointers) */
} plane_rows;

/* A block's pair loop: one of the functions below, chosen once per call (pair_loop). */
typedef void (*pair_loop_fn)(const int32_t *x, const int32_t *w, plane_rows *r, int32_t *acc);

/* A block of output rows' pixel pairs: each row's 2 * pairs accumulators from the window rows
 * x0, x1, x2 (plane words), w = e0, o0, e1, o1, e2, o2. On the target one assembly block with the
 * rows' loop inside (one call per block, not per row: a row's call and set-up cost about 25
 * instructions, the step to the next row inside the loop 13): gcc kept the six weights, three
 * row pointers and two accumulators in more registers than the core has and spilled inside the
 * loop (measured: 27 instructions a pair instead of 22). */
#if defined(EK_ACLE_EMULATION)
/* Stride 2 (the pitched assembly's C twin on the host): pixel pair t reads words 2t .. 2t + 2
 * of each window row, W0 = (x[4t], x[4t+1]), W1, W2: pixel 4t: SMLAD W0.e + SMLABT W1.o, pixel
 * 4t + 2: SMLAD W1.e + SMLABT W2.o. */
static void block_pairs_s2_rows(const int32_t *x0, const int32_t *x1, const int32_t *x2, const int32_t *w,
                                plane_rows *r, int32_t *acc)
{
    for (;;) {
        for (; acc < r->row_end; acc += 2, x0 += 2, x1 += 2, x2 += 2) {
            int32_t a0, a1;
            a0 = __smlabt(x0[1], w[1], __smlad(x0[0], w[0], r->bias2));
            a1 = __smlabt(x0[2], w[1], __smlad(x0[1], w[0], r->bias2));
            a0 = __smlabt(x1[1], w[3], __smlad(x1[0], w[2], a0));
            a1 = __smlabt(x1[2], w[3], __smlad(x1[1], w[2], a1));
            a0 = __smlabt(x2[1], w[5], __smlad(x2[0], w[4], a0));
            a1 = __smlabt(x2[2], w[5], __smlad(x2[1], w[4], a1));
            acc[0] = a0;
            acc[1] = a1;
        }
        if (acc == r->end) {
            return;
        }
        x0 += r->x_skip / 4, x1 += r->x_skip / 4, x2 += r->x_skip / 4;
        acc += r->acc_skip / 4;
        r->row_end += r->row_bytes / 4;
    }
}

static void block_pairs_rows(const int32_t *x0, const int32_t *x1, const int32_t *x2, const int32_t *w,
                             plane_rows *r, int32_t *acc)
{
    for (;;) {
        for (; acc < r->row_end; acc += 2, ++x0, ++x1, ++x2) {
            int32_t a0, a1;
            a0 = __smlabt(x0[1], w[1], __smlad(x0[0], w[0], r->bias2));
            a1 = __smlad(x0[1], w[1], __smlatb(x0[0], w[0], r->bias2));
            a0 = __smlabt(x1[1], w[3], __smlad(x1[0], w[2], a0));
            a1 = __smlad(x1[1], w[3], __smlatb(x1[0], w[2], a1));
            a0 = __smlabt(x2[1], w[5], __smlad(x2[0], w[4], a0));
            a1 = __smlad(x2[1], w[5], __smlatb(x2[0], w[4], a1));
            acc[0] = a0;
            acc[1] = a1;
        }
        if (acc == r->end) {
            return;
        }
        x0 += r->x_skip / 4, x1 += r->x_skip / 4, x2 += r->x_skip / 4;
        acc += r->acc_skip / 4;
        r->row_end += r->row_bytes / 4;
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
/* Not inlined: the block takes 13 registers and addresses the rows' fields on the stack, which
 * inside the kernel's large frame gcc could not always do (cortex-m33: impossible constraints). */
__attribute__((noinline)) static void block_pairs_rows(const int32_t *x0, const int32_t *x1, const int32_t *x2,
                                                       const int32_t *w, plane_rows *r, int32_t *acc)
{
    plane_rows k = *r; /* on this small frame: plain [sp, #n] operands */
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
                     "ldr %[t], %[row_end]\n\t"
                     "cmp %[acc], %[t]\n\t"
                     "bne 1b\n\t"
                     "ldr %[t], %[end]\n\t"
                     "cmp %[acc], %[t]\n\t"
                     "beq 2f\n\t"
                     "ldr %[t], %[x_skip]\n\t"
                     "add %[x0], %[x0], %[t]\n\t"
                     "add %[x1], %[x1], %[t]\n\t"
                     "add %[x2], %[x2], %[t]\n\t"
                     "ldr %[t], %[acc_skip]\n\t"
                     "add %[acc], %[acc], %[t]\n\t"
                     "ldr %[t], %[row_end]\n\t"
                     "ldr %[a0], %[row_bytes]\n\t"
                     "add %[t], %[t], %[a0]\n\t"
                     "str %[t], %[row_end]\n\t"
                     "b 1b\n\t"
                     "2:\n\t"
                     : [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2), [acc] "+r"(acc), [a0] "=&r"(a0), [a1] "=&r"(a1),
                       [t] "=&r"(t), [row_end] "+m"(k.row_end)
                     : [e0] "r"(w[0]), [o0] "r"(w[1]), [e1] "r"(w[2]), [o1] "r"(w[3]), [e2] "r"(w[4]), [o2] "r"(w[5]),
                       [end] "m"(k.end), [bias] "m"(k.bias2), [x_skip] "m"(k.x_skip), [acc_skip] "m"(k.acc_skip),
                       [row_bytes] "m"(k.row_bytes)
                     : "cc", "memory");
}

/* block_pairs on planes whose rows lie PITCH halfwords apart (16 or 32, geometry's pitch): the
 * window rows at fixed offsets from one pointer, each as one LDRD, so the loop needs 13
 * registers with the row's end in one: 19 instructions a pair against block_pairs's 23, and 10
 * to step to the next row against 14. */
#define EK_PLANE_PITCHED_ROW(ADDRESS, E, O)        \
    "ldrd %[t0], %[t1], " ADDRESS "\n\t"          \
    "smlad %[a0], %[t0], %[" E "], %[a0]\n\t"     \
    "smlatb %[a1], %[t0], %[" E "], %[a1]\n\t"    \
    "smlabt %[a0], %[t1], %[" O "], %[a0]\n\t"    \
    "smlad %[a1], %[t1], %[" O "], %[a1]\n\t"
#define EK_PLANE_PITCHED(NAME, PITCH)                                                                          \
    __attribute__((noinline)) static void NAME(const int32_t *x, const int32_t *w, plane_rows *r, int32_t *acc) \
    {                                                                                                          \
        plane_rows k = *r;                                                                                     \
        int32_t *row_end = k.row_end;                                                                          \
        int32_t a0, a1, t0, t1;                                                                                \
        __asm__ volatile("1:\n\t"                                                                              \
                         "ldr %[a1], %[bias]\n\t"                                                              \
                         "ldrd %[t0], %[t1], [%[x], #" #PITCH " * 2]\n\t"                                       \
                         "smlad %[a0], %[t0], %[e1], %[a1]\n\t"                                                \
                         "smlatb %[a1], %[t0], %[e1], %[a1]\n\t"                                               \
                         "smlabt %[a0], %[t1], %[o1], %[a0]\n\t"                                               \
                         "smlad %[a1], %[t1], %[o1], %[a1]\n\t" EK_PLANE_PITCHED_ROW(                          \
                             "[%[x], #" #PITCH " * 4]", "e2", "o2") EK_PLANE_PITCHED_ROW("[%[x]], #4", "e0", "o0") \
                         "strd %[a0], %[a1], [%[acc]], #8\n\t"                                                 \
                         "cmp %[acc], %[row_end]\n\t"                                                          \
                         "bne 1b\n\t"                                                                          \
                         "ldr %[t0], %[end]\n\t"                                                               \
                         "cmp %[acc], %[t0]\n\t"                                                               \
                         "beq 2f\n\t"                                                                          \
                         "ldr %[t0], %[x_skip]\n\t"                                                            \
                         "add %[x], %[x], %[t0]\n\t"                                                           \
                         "ldr %[t0], %[acc_skip]\n\t"                                                          \
                         "add %[acc], %[acc], %[t0]\n\t"                                                       \
                         "ldr %[t0], %[row_bytes]\n\t"                                                         \
                         "add %[row_end], %[row_end], %[t0]\n\t"                                               \
                         "b 1b\n\t"                                                                            \
                         "2:\n\t"                                                                              \
                         : [x] "+r"(x), [acc] "+r"(acc), [row_end] "+r"(row_end), [a0] "=&r"(a0), [a1] "=&r"(a1), \
                           [t0] "=&r"(t0), [t1] "=&r"(t1)                                                       \
                         : [e0] "r"(w[0]), [o0] "r"(w[1]), [e1] "r"(w[2]), [o1] "r"(w[3]), [e2] "r"(w[4]),        \
                           [o2] "r"(w[5]), [end] "m"(k.end), [bias] "m"(k.bias2), [x_skip] "m"(k.x_skip),        \
                           [acc_skip] "m"(k.acc_skip), [row_bytes] "m"(k.row_bytes)                             \
                         : "cc", "memory");                                                                     \
    }
EK_PLANE_PITCHED(block_pairs16, 16)
EK_PLANE_PITCHED(block_pairs32, 32)

/* Stride 2 (see block_pairs_s2): a window row's W0, W1 as one LDRD, W2 as one LDR, 22
 * instructions a pair of pixels. */
#define EK_PLANE_S2_ROW(AT01, AT2, E, O)            \
    "ldrd %[t0], %[t1], " AT01 "\n\t"              \
    "smlad %[a0], %[t0], %[" E "], %[a0]\n\t"      \
    "smlabt %[a0], %[t1], %[" O "], %[a0]\n\t"     \
    "smlad %[a1], %[t1], %[" E "], %[a1]\n\t"      \
    "ldr %[t0], " AT2 "\n\t"                        \
    "smlabt %[a1], %[t0], %[" O "], %[a1]\n\t"
#define EK_PLANE_PITCHED_S2(NAME, PITCH)                                                                       \
    __attribute__((noinline)) static void NAME(const int32_t *x, const int32_t *w, plane_rows *r, int32_t *acc) \
    {                                                                                                          \
        plane_rows k = *r;                                                                                     \
        int32_t *row_end = k.row_end;                                                                          \
        int32_t a0, a1, t0, t1;                                                                                \
        __asm__ volatile("1:\n\t"                                                                              \
                         "ldr %[a0], %[bias]\n\t"                                                              \
                         "mov %[a1], %[a0]\n\t" EK_PLANE_S2_ROW("[%[x], #" #PITCH " * 2]",                     \
                                                               "[%[x], #" #PITCH " * 2 + 8]", "e1", "o1")       \
                             EK_PLANE_S2_ROW("[%[x], #" #PITCH " * 4]", "[%[x], #" #PITCH " * 4 + 8]", "e2", "o2") \
                                 EK_PLANE_S2_ROW("[%[x]], #8", "[%[x]]", "e0", "o0")                             \
                         "strd %[a0], %[a1], [%[acc]], #8\n\t"                                                 \
                         "cmp %[acc], %[row_end]\n\t"                                                          \
                         "bne 1b\n\t"                                                                          \
                         "ldr %[t0], %[end]\n\t"                                                               \
                         "cmp %[acc], %[t0]\n\t"                                                               \
                         "beq 2f\n\t"                                                                          \
                         "ldr %[t0], %[x_skip]\n\t"                                                            \
                         "add %[x], %[x], %[t0]\n\t"                                                           \
                         "ldr %[t0], %[acc_skip]\n\t"                                                          \
                         "add %[acc], %[acc], %[t0]\n\t"                                                       \
                         "ldr %[t0], %[row_bytes]\n\t"                                                         \
                         "add %[row_end], %[row_end], %[t0]\n\t"                                               \
                         "b 1b\n\t"                                                                            \
                         "2:\n\t"                                                                              \
                         : [x] "+r"(x), [acc] "+r"(acc), [row_end] "+r"(row_end), [a0] "=&r"(a0), [a1] "=&r"(a1), \
                           [t0] "=&r"(t0), [t1] "=&r"(t1)                                                       \
                         : [e0] "r"(w[0]), [o0] "r"(w[1]), [e1] "r"(w[2]), [o1] "r"(w[3]), [e2] "r"(w[4]),        \
                           [o2] "r"(w[5]), [end] "m"(k.end), [bias] "m"(k.bias2), [x_skip] "m"(k.x_skip),        \
                           [acc_skip] "m"(k.acc_skip), [row_bytes] "m"(k.row_bytes)                             \
                         : "cc", "memory");                                                                     \
    }
#if EK_DEPTHWISE_PLANE_STRIDE2
EK_PLANE_PITCHED_S2(block_pairs16_s2, 16)
EK_PLANE_PITCHED_S2(block_pairs32_s2, 32)
#endif
#endif

/* The pair loops that keep three row pointers, from the first one. */
static void block_pairs(const int32_t *x, const int32_t *w, plane_rows *r, int32_t *acc)
{
    block_pairs_rows(x, x + r->ww, x + 2 * r->ww, w, r, acc);
}
#if defined(EK_ACLE_EMULATION) && EK_DEPTHWISE_PLANE_STRIDE2
static void block_pairs_s2(const int32_t *x, const int32_t *w, plane_rows *r, int32_t *acc)
{
    block_pairs_s2_rows(x, x + r->ww, x + 2 * r->ww, w, r, acc);
}
#endif

/* The call's pair loop: the pitched ones on the target where the rows lie 16 or 32 halfwords
 * apart (stride 2 has only those, see geometry); the host runs their C twins. */
static pair_loop_fn pair_loop(const plane_geometry *g)
{
#if EK_DEPTHWISE_PLANE_STRIDE2
    if (g->stride == 2) {
#if defined(EK_ACLE_EMULATION)
        return block_pairs_s2;
#else
        return g->width == 16 ? block_pairs16_s2 : block_pairs32_s2;
#endif
    }
#endif
#if !defined(EK_ACLE_EMULATION)
    if (g->width == 16) {
        return block_pairs16;
    }
    if (g->width == 32) {
        return block_pairs32;
    }
#endif
    return block_pairs;
}

/* A block of `count` output rows: a row's 2 * pairs accumulators from acc + row * out_w on (see
 * geometry); a pair steps `stride` plane words, a row `stride` plane rows. */
static void block_rows(const plane_geometry *g, int32_t count, int32_t *acc, plane_rows *r)
{
    r->ww = g->width / 2;
    r->row_end = acc + 2 * g->pairs;
    r->row_bytes = 4 * g->out_w;
    r->x_skip = 4 * g->stride * (r->ww - g->pairs);
    r->acc_skip = 4 * (g->out_w - 2 * g->pairs);
    r->end = acc + (count - 1) * g->out_w + 2 * g->pairs;
}

/* What the requantization of one channel shares (bias2 goes into the accumulators). */
typedef struct {
    int32_t bias2, mult, shift, round;
    uint32_t lo4, hi4; /* act_min + 128, act_max + 128 in four bytes */
    int32_t k;         /* requantize_k's constant, where the channel's shift allows it */
    int32_t out_k;     /* 1 + 2 * (out_offset - act_min): k before the shift */
    uint32_t sat4, shift4; /* clamp_k4's constants */
} plane_channel;

/* `n` consecutive accumulators to int8 outputs `step` bytes apart, four at a time: each in
 * requantize_k's 4 instructions, the four bytes clamped together (clamp_k4), then stored byte by
 * byte; the last n % 4 one by one. Only for s <= EK_REQUANTIZE_K_MAX_SHIFT (requantize_run takes
 * the rest). On the target the groups of four are one assembly loop of 33 instructions (13
 * registers; gcc's loop of the same C took 40, reloading the clamp's constants). */
#if defined(EK_ACLE_EMULATION)
static void requantize_quads(const plane_channel *q, const int32_t *acc, const int32_t *end, int32_t step, int8_t *o)
{
    for (; acc != end; acc += 4, o += 4 * step) {
        uint32_t u = requantize_k(acc[0], q->mult, q->k, q->shift) | requantize_k(acc[1], q->mult, q->k, q->shift) << 8 |
                     requantize_k(acc[2], q->mult, q->k, q->shift) << 16 |
                     requantize_k(acc[3], q->mult, q->k, q->shift) << 24;
        u = clamp_k4(u, q->sat4, q->shift4);
        o[0] = (int8_t)u;
        o[step] = (int8_t)(u >> 8);
        o[2 * step] = (int8_t)(u >> 16);
        o[3 * step] = (int8_t)(u >> 24);
    }
}
#else
/* One accumulator V to its requantize_k byte (T a scratch register). */
#define EK_PLANE_REQUANT(V)                         \
    "smmlar %[t], %[" V "], %[m], %[k]\n\t"        \
    "sub %[" V "], %[t], %[" V "], lsr #31\n\t"    \
    "asr %[" V "], %[" V "], %[s]\n\t"             \
    "usat %[" V "], #8, %[" V "], asr #1\n\t"
__attribute__((noinline)) static void requantize_quads(const plane_channel *q, const int32_t *acc,
                                                       const int32_t *end, int32_t step, int8_t *o)
{
    int32_t a, b, c, t;
    __asm__ volatile("1:\n\t"
                     "ldrd %[a], %[b], [%[acc]], #8\n\t" EK_PLANE_REQUANT("a") EK_PLANE_REQUANT("b")
                     "orr %[a], %[a], %[b], lsl #8\n\t"
                     "ldrd %[b], %[c], [%[acc]], #8\n\t" EK_PLANE_REQUANT("b")
                     "orr %[a], %[a], %[b], lsl #16\n\t" EK_PLANE_REQUANT("c")
                     "orr %[a], %[a], %[c], lsl #24\n\t"
                     "uqadd8 %[a], %[a], %[sat4]\n\t"
                     "uadd8 %[a], %[a], %[shift4]\n\t"
                     "strb %[a], [%[o]]\n\t"
                     "lsr %[t], %[a], #8\n\t"
                     "strb %[t], [%[o], %[step]]\n\t"
                     "lsr %[t], %[a], #16\n\t"
                     "add %[o], %[o], %[step], lsl #1\n\t"
                     "strb %[t], [%[o]]\n\t"
                     "lsr %[t], %[a], #24\n\t"
                     "strb %[t], [%[o], %[step]]\n\t"
                     "add %[o], %[o], %[step], lsl #1\n\t"
                     "cmp %[acc], %[end]\n\t"
                     "bne 1b\n\t"
                     : [acc] "+r"(acc), [o] "+r"(o), [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [t] "=&r"(t)
                     : [end] "r"(end), [step] "r"(step), [m] "r"(q->mult), [k] "r"(q->k), [s] "r"(q->shift),
                       [sat4] "r"(q->sat4), [shift4] "r"(q->shift4)
                     : "cc", "memory");
}
#endif

static void requantize_run_k(const plane_channel *q, const int32_t *acc, int32_t n, int32_t step, int8_t *o)
{
    const int32_t quads = n >> 2;
    if (quads > 0) {
        requantize_quads(q, acc, acc + 4 * quads, step, o);
        acc += 4 * quads;
        o += 4 * quads * step;
    }
    for (n &= 3; n > 0; --n, ++acc, o += step) {
        *o = (int8_t)clamp_k4(requantize_k(*acc, q->mult, q->k, q->shift), q->sat4, q->shift4);
    }
}

/* requantize_run_k's work for any shift (requantize_u8's form, store4's clamp). */
static void requantize_run(const plane_channel *q, const int32_t *acc, int32_t n, int32_t step, int8_t *o)
{
    const int32_t mult = q->mult, shift = q->shift, round = q->round;
    const uint32_t lo4 = q->lo4, hi4 = q->hi4;
    if (shift <= EK_REQUANTIZE_K_MAX_SHIFT) {
        requantize_run_k(q, acc, n, step, o);
        return;
    }
    for (; n >= 4; n -= 4, acc += 4, o += 4 * step) {
        uint32_t u = requantize_u8(acc[0], mult, shift, round) | requantize_u8(acc[1], mult, shift, round) << 8 |
                     requantize_u8(acc[2], mult, shift, round) << 16 |
                     requantize_u8(acc[3], mult, shift, round) << 24;
        u = __usub8(hi4, __uqsub8(hi4, __uadd8(__uqsub8(u, lo4), lo4))) ^ 0x80808080u;
        o[0] = (int8_t)u;
        o[step] = (int8_t)(u >> 8);
        o[2 * step] = (int8_t)(u >> 16);
        o[3 * step] = (int8_t)(u >> 24);
    }
    for (; n > 0; --n, ++acc, o += step) {
        *o = requantize1(*acc, mult, shift, round, lo4, hi4);
    }
}

/* `count` output rows of accumulators (out_w a row) to int8 outputs. Untransposed, the rows'
 * outputs are consecutive pixels of the image (out_row = out_w * out_col): one run. */
static void requantize(const plane_geometry *g, const plane_channel *q, const int32_t *acc, int32_t count,
                       int8_t *out)
{
    if (!g->transposed) {
        requantize_run(q, acc, count * g->out_w, g->out_col, out);
        return;
    }
    for (; count > 0; --count, out += g->out_row, acc += g->out_w) {
        requantize_run(q, acc, g->out_w, g->out_col, out);
    }
}

/* Channel c's outputs from its filled plane: `first` is the first block's rows (block_rows,
 * laid out once per call), `loop` the call's pair loop. */
static void channel(const ek_depthwise_dsp_params *p, const plane_geometry *g, const plane_rows *first,
                    pair_loop_fn loop, const int32_t *plane_words, plane_channel *q, int32_t c, int32_t *acc,
                    int8_t *output)
{
    plane_rows r = *first;
    int32_t w[6];
    int32_t oy, count = g->out_h < g->block ? g->out_h : g->block;
    channel_weights(p, g, c, w);
    q->bias2 = 2 * p->bias[c];
    q->mult = p->multiplier[c];
    q->shift = p->right_shift[c];
    q->k = (int32_t)((uint32_t)q->out_k << (q->shift & 31)); /* used only where shift <= 20 */
    r.bias2 = q->bias2;
    loop(plane_words, w, &r, acc);
    requantize(g, q, acc, count, output + c);
    for (oy = g->block; oy < g->out_h; oy += g->block) { /* maps of more rows than one block */
        count = g->out_h - oy < g->block ? g->out_h - oy : g->block;
        block_rows(g, count, acc, &r);
        r.bias2 = q->bias2;
        loop(plane_words + oy * g->stride * (g->width / 2), w, &r, acc);
        requantize(g, q, acc, count, output + c + oy * g->out_row);
    }
}

void ek_depthwise_plane_dsp(const ek_depthwise_dsp_params *p, const int8_t *input, int8_t *output)
{
    int32_t plane_words[EK_DEPTHWISE_PLANE_MAX_HALFWORDS / 2];
    int32_t acc[EK_DEPTHWISE_PLANE_ACC];
    int16_t *const plane = (int16_t *)plane_words;
    const int32_t in_image = p->in_h * p->in_w * p->in_c, out_image = p->out_h * p->out_w * p->out_c;
    const int32_t off2 = (int32_t)(((uint32_t)p->in_offset & 0xFFFFu) * 0x10001u);
    plane_geometry g;
    plane_channel q;
    plane_rows first;
    pair_loop_fn loop;
    int32_t b, c, i;
    if (!geometry(p, &g)) {
        return; /* callers check ek_depthwise_plane_fits first */
    }
    loop = pair_loop(&g);
    block_rows(&g, g.out_h < g.block ? g.out_h : g.block, acc, &first);
    q.round = 1 + 2 * (p->out_offset + 128);
    q.lo4 = (uint32_t)(p->act_min + 128) * 0x01010101u;
    q.hi4 = (uint32_t)(p->act_max + 128) * 0x01010101u;
    q.out_k = 1 + 2 * (p->out_offset - p->act_min);
    q.sat4 = (255u - (uint32_t)(p->act_max - p->act_min)) * 0x01010101u;
    q.shift4 = (((uint32_t)p->act_min - (q.sat4 & 0xFFu)) & 0xFFu) * 0x01010101u;
    /* The padding is never written: zero once for every channel. */
    memset(plane, 0, (size_t)(g.group * g.size) * sizeof plane[0]);
    for (b = 0; b < p->batches; ++b, input += in_image, output += out_image) {
        c = 0;
        /* Four channels' planes filled at once (a word read per pixel), then each channel's
         * outputs: they land on the four channels' own bytes only, so in place is safe. */
        for (; g.group == 4 && c + 4 <= p->in_c; c += 4) {
            fill4(&g, input + c, off2, plane);
            for (i = 0; i < 4; ++i) {
                channel(p, &g, &first, loop, plane_words + i * (g.size / 2), &q, c + i, acc, output);
            }
        }
        for (; c < p->in_c; ++c) {
            fill(&g, input + c, p->in_offset, plane);
            channel(p, &g, &first, loop, plane_words, &q, c, acc, output);
        }
    }
}

#else
typedef int ek_depthwise_plane_unused; /* no DSP extension: the plain kernels run (ek_conv.c) */
#endif
