/* 1x1 CONV_2D and FULLY_CONNECTED with SMLAD: a matrix product of pixels (rows of `depth`
 * int8 values) by output channels, three or two pixels by two channels at a time.
 *
 * Three pixels (short requantization, 8 or more channels: MobileNets' and EfficientNets' deep
 * 1x1 layers, whose weights stay int8 because widening them would cost more flash than TFLite
 * Micro's firmware takes): their rows are widened once to halfword pairs on the stack (256
 * depth values at a time), then each channel pair's weight word is widened once (two SXTB16)
 * for the three pixels: per 4 depth values two weight loads, four SXTB16, four input loads and
 * twelve SMLADs for 24 MACs (an assembly loop on the target, about 0.96 instructions per MAC;
 * VWW's 3x3 128 -> 256 and 256 -> 256 layers 1.63 and 1.54 -> 1.14 and 1.05 with
 * requantization; EfficientNet-B0's 7x7 480 -> 80 and 480 -> 112, in two depth chunks,
 * 1.42 -> 1.08 and 1.06).
 *
 * Two pixels (fewer channels, deeper rows, the last one or two pixels of a row):
 * Per 4 depth values of a block: one 32-bit load per pixel and two per channel pair (the
 * layout in ek_pointwise_dsp.h), SXTB16 / SXTB16-ROR8 to halfword pairs (two per word), and
 * eight SMLADs (two multiply-accumulates each): 4 loads, 8 extends, 8 SMLADs for 16 MACs.
 * The input offset is in the bias (the plain kernels' convention), so raw int8 inputs go
 * straight into SXTB16. A depth that is not a multiple of 4 ends with a word assembled from
 * the last 1-3 input bytes (the weights there are zero-padded); an odd channel count computes
 * the zero channel of the last pair and does not store it; an odd pixel count ends with one
 * pixel. The accumulator is the plain kernel's sum in another order (modulo 2^32): bit for bit.
 */
#include "ek_pointwise_dsp.h"

#include "ek_dsp.h"
#include "ek_fixedpoint.h"
#include "ek_requant_dsp.h"

/* One matrix product: the weights and records of `channels` output channels. */
typedef struct {
    const int32_t *weights; /* channel pairs, see ek_pointwise_dsp.h */
    const int32_t *records; /* per channel pair: bias0, bias1, multiplier0, multiplier1, shift0, shift1 */
    int32_t depth, channels;
    int32_t out_offset, act_min, act_max;
} ek_mm;

/* How outputs are requantized: TFLite's MultiplyByQuantizedMultiplier (ek_multiply_by_quantized_multiplier) for any
 * shift; or the short exact form for s = -shift - 1 >= 0 and |acc| < 2^30 (the generator
 * checks both), saturated to int8 alone (activation range [-128, 127]) or then clamped. */
enum { EK_EXACT, EK_FAST, EK_FAST_CLAMP };

/* The short form: the doubling high multiply (acc * m + 2^30) >> 31 is SMMULR of 2 * acc;
 * the rounding divide by 2^(s+1), halves away from zero, is (((v - (v < 0)) >> s) + 1) >> 1;
 * the output offset z joins before the last halving as 2z (exact: 2z is even), so
 * `offset` = 1 + 2z and one SSAT with its built-in ASR #1 ends it. About 7 instructions. */
EK_DSP_INLINE int8_t requantize(int32_t acc, int32_t multiplier, int32_t shift, int32_t offset, int32_t lo,
                                int32_t hi, int mode)
{
    int32_t v;
    if (mode == EK_EXACT) {
        v = ek_multiply_by_quantized_multiplier(acc, multiplier, shift) + offset;
        return (int8_t)ek_clamp(v, lo, hi);
    }
    v = ek_smmulr(acc * 2, multiplier);
    v = ek_ssat8((((v + (v >> 31)) >> shift) + offset) >> 1);
    if (mode == EK_FAST_CLAMP) {
        v = v < lo ? lo : (v > hi ? hi : v);
    }
    return (int8_t)v;
}

/* The last n (1..3) bytes of a row as a word, zeros above (no read past the row). */
static inline uint32_t load_tail(const int8_t *p, int32_t n)
{
    uint32_t v = (uint8_t)p[0];
    if (n > 1) {
        v |= (uint32_t)(uint8_t)p[1] << 8;
    }
    if (n > 2) {
        v |= (uint32_t)(uint8_t)p[2] << 16;
    }
    return v;
}

/* 4 depth values (input words V0, V1) of two pixels against the pair's next two weight words. */
#define EK_PW_STEP2(V0, V1)                                                                                \
    do {                                                                                                   \
        int32_t w_ = w[0];                                                                                 \
        int32_t wl_ = __sxtb16(w_);                                                                        \
        int32_t x_;                                                                                        \
        w_ = ek_sxtb16_ror8((uint32_t)w_);                                                                 \
        x_ = __sxtb16((int32_t)(V0));                                                                      \
        a00 = __smlad(x_, wl_, a00);                                                                       \
        a01 = __smlad(x_, w_, a01);                                                                        \
        x_ = __sxtb16((int32_t)(V1));                                                                      \
        a10 = __smlad(x_, wl_, a10);                                                                       \
        a11 = __smlad(x_, w_, a11);                                                                        \
        w_ = w[1];                                                                                         \
        w += 2;                                                                                            \
        wl_ = __sxtb16(w_);                                                                                \
        w_ = ek_sxtb16_ror8((uint32_t)w_);                                                                 \
        x_ = ek_sxtb16_ror8(V0);                                                                           \
        a00 = __smlad(x_, wl_, a00);                                                                       \
        a01 = __smlad(x_, w_, a01);                                                                        \
        x_ = ek_sxtb16_ror8(V1);                                                                           \
        a10 = __smlad(x_, wl_, a10);                                                                       \
        a11 = __smlad(x_, w_, a11);                                                                        \
    } while (0)

/* The same for one pixel (V0). */
#define EK_PW_STEP1(V0)                                                                                    \
    do {                                                                                                   \
        const int32_t wa_ = w[0];                                                                          \
        const int32_t wb_ = w[1];                                                                          \
        const int32_t x0e_ = __sxtb16((int32_t)(V0));                                                      \
        const int32_t x0o_ = ek_sxtb16_ror8(V0);                                                           \
        w += 2;                                                                                            \
        a00 = __smlad(x0e_, __sxtb16(wa_), a00);                                                           \
        a01 = __smlad(x0e_, ek_sxtb16_ror8((uint32_t)wa_), a01);                                           \
        a00 = __smlad(x0o_, __sxtb16(wb_), a00);                                                           \
        a01 = __smlad(x0o_, ek_sxtb16_ror8((uint32_t)wb_), a01);                                           \
    } while (0)

/* The constants of the pass, read once (int8 stores may alias the struct). */
#define EK_PW_LOCALS(m)                                                                                    \
    const int32_t channels = (m)->channels;                                                                \
    const int32_t blocks = (m)->depth >> 2;                                                                \
    const int32_t tail = (m)->depth & 3;                                                                   \
    const int32_t offset = mode == EK_EXACT ? (m)->out_offset : 1 + 2 * (m)->out_offset;                   \
    const int32_t lo = (m)->act_min;                                                                       \
    const int32_t hi = (m)->act_max;                                                                       \
    const int32_t *r = (m)->records;                                                                       \
    const int32_t *w = (m)->weights;                                                                       \
    int32_t c

/* The multiply-accumulate loop over the depth for two pixels and one channel pair. */
#define EK_PW_DEPTH2()                                                                                     \
    do {                                                                                                   \
        const int8_t *p0 = x0;                                                                             \
        const int8_t *p1 = x1;                                                                             \
        const int32_t *const end = w + 4 * (blocks >> 1);                                                  \
        while (w != end) {                                                                                 \
            uint32_t u0 = ek_load4(p0);                                                                    \
            uint32_t u1 = ek_load4(p1);                                                                    \
            EK_PW_STEP2(u0, u1);                                                                           \
            __asm__ volatile("" ::: "memory"); /* keeps the two halves apart: no spills */                 \
            u0 = ek_load4(p0 + 4);                                                                         \
            u1 = ek_load4(p1 + 4);                                                                         \
            p0 += 8;                                                                                       \
            p1 += 8;                                                                                       \
            EK_PW_STEP2(u0, u1);                                                                           \
        }                                                                                                  \
        if (blocks & 1) {                                                                                  \
            const uint32_t u0 = ek_load4(p0);                                                              \
            const uint32_t u1 = ek_load4(p1);                                                              \
            p0 += 4;                                                                                       \
            p1 += 4;                                                                                       \
            EK_PW_STEP2(u0, u1);                                                                           \
        }                                                                                                  \
        if (tail) {                                                                                        \
            const uint32_t u0 = load_tail(p0, tail);                                                       \
            const uint32_t u1 = load_tail(p1, tail);                                                       \
            EK_PW_STEP2(u0, u1);                                                                           \
        }                                                                                                  \
    } while (0)

EK_DSP_INLINE void two_pixels(const ek_mm *m, const int8_t *x0, const int8_t *x1, int8_t *o0, int8_t *o1,
                              int mode)
{
    EK_PW_LOCALS(m);
    for (c = 0; c < channels - 1; c += 2, r += 6) {
        int32_t a00 = r[0];
        int32_t a01 = r[1];
        int32_t a10 = a00;
        int32_t a11 = a01;
        EK_PW_DEPTH2();
        {
            /* the record read before the first store (int8 stores may alias anything) */
            const int32_t m0 = r[2], m1 = r[3], s0 = r[4], s1 = r[5];
            const int8_t r00 = requantize(a00, m0, s0, offset, lo, hi, mode);
            const int8_t r10 = requantize(a10, m0, s0, offset, lo, hi, mode);
            const int8_t r01 = requantize(a01, m1, s1, offset, lo, hi, mode);
            const int8_t r11 = requantize(a11, m1, s1, offset, lo, hi, mode);
            o0[c] = r00;
            o0[c + 1] = r01;
            o1[c] = r10;
            o1[c + 1] = r11;
        }
    }
    if (c < channels) { /* the last of an odd count */
        int32_t a00 = r[0];
        int32_t a01 = 0;
        int32_t a10 = a00;
        int32_t a11 = 0;
        EK_PW_DEPTH2();
        (void)a01;
        (void)a11;
        {
            const int32_t m0 = r[2], s0 = r[4];
            const int8_t r00 = requantize(a00, m0, s0, offset, lo, hi, mode);
            const int8_t r10 = requantize(a10, m0, s0, offset, lo, hi, mode);
            o0[c] = r00;
            o1[c] = r10;
        }
    }
}

EK_DSP_INLINE void one_pixel(const ek_mm *m, const int8_t *x0, int8_t *o0, int mode)
{
    EK_PW_LOCALS(m);
    for (c = 0; c < channels; c += 2, r += 6) {
        int32_t a00 = r[0];
        int32_t a01 = r[1];
        const int8_t *p0 = x0;
        const int32_t *const end = w + 2 * blocks;
        while (w != end) {
            const uint32_t u0 = ek_load4(p0);
            p0 += 4;
            EK_PW_STEP1(u0);
        }
        if (tail) {
            const uint32_t u0 = load_tail(p0, tail);
            EK_PW_STEP1(u0);
        }
        {
            const int32_t m0 = r[2], m1 = r[3], s0 = r[4], s1 = r[5];
            const int8_t r00 = requantize(a00, m0, s0, offset, lo, hi, mode);
            const int8_t r01 = requantize(a01, m1, s1, offset, lo, hi, mode);
            o0[c] = r00;
            if (c + 1 < channels) {
                o0[c + 1] = r01;
            }
        }
    }
}

/* Three pixels share one pass over the weights when the requantization is the short one and
 * there are at least four channel pairs to repay the widening (with two, the widening costs
 * about what the shared weight extends save). Their rows are widened in chunks of up to
 * EK_PW_WIDE_MAX_DEPTH values (on the stack: 3 * 256 halfwords). A deeper row takes several
 * chunks: the channels then go in blocks of EK_PW_PART_CHANNELS whose accumulators wait on the
 * stack between chunks (3 * 64 words), each block re-widening the rows (about 4 instructions a
 * depth value, against 3 * 64 MACs a depth value). Both buffers together are the k x k
 * kernel's window (EK_CONV_DSP_MAX_WINDOW halfwords, 2304 bytes). */
#define EK_PW_WIDE_MAX_DEPTH 256
#define EK_PW_PART_CHANNELS 64
#define EK_PW_WIDE_MIN_CHANNELS 8

/* One step of widen3: three pixels' words of 4 depth values as six halfword-pair words. */
static inline void widen3_step(uint32_t v0, uint32_t v1, uint32_t v2, uint32_t *to)
{
    to[0] = (uint32_t)__sxtb16((int32_t)v0);
    to[1] = (uint32_t)__sxtb16((int32_t)v1);
    to[2] = (uint32_t)__sxtb16((int32_t)v2);
    to[3] = (uint32_t)ek_sxtb16_ror8(v0);
    to[4] = (uint32_t)ek_sxtb16_ror8(v1);
    to[5] = (uint32_t)ek_sxtb16_ror8(v2);
}

/* Three pixels' rows of `depth` bytes widened once to halfword pairs, step by step (4 depth
 * values, the last padded with zeros) as six words: the three pixels' (x[k], x[k+2]), then their
 * (x[k+1], x[k+3]). The channel pairs then read them without re-widening. */
static void widen3(const int8_t *x, int32_t x_step, int32_t depth, uint32_t *to)
{
    const int8_t *p0 = x;
    const int8_t *p1 = x + x_step;
    const int8_t *p2 = p1 + x_step;
    const int8_t *const end = x + (depth & ~3);
    const int32_t tail = depth & 3;
    uint32_t v0, v1, v2;
    for (; p0 != end; p0 += 4, p1 += 4, p2 += 4, to += 6) {
        v0 = ek_load4(p0);
        v1 = ek_load4(p1);
        v2 = ek_load4(p2);
        widen3_step(v0, v1, v2, to);
    }
    if (tail) {
        v0 = load_tail(p0, tail);
        v1 = load_tail(p1, tail);
        v2 = load_tail(p2, tail);
        widen3_step(v0, v1, v2, to);
    }
}

/* The accumulators of three pixels (0, 1, 2) by one channel pair (0, 1), in the order the
 * deep path keeps them between chunks. */
typedef struct {
    int32_t a00, a01, a10, a11, a20, a21;
} ek_acc3;

/* One weight word (the pair's two channels, see ek_pointwise_dsp.h) widened once against the
 * three pixels' widened words X[0..2]: six SMLADs. */
#define EK_PW_HALF3(W, X)                                                                                  \
    do {                                                                                                   \
        const int32_t raw_ = (W);                                                                          \
        const int32_t wl_ = __sxtb16(raw_);                                                                \
        const int32_t wh_ = ek_sxtb16_ror8((uint32_t)raw_);                                                \
        int32_t x_ = (int32_t)(X)[0];                                                                      \
        a00 = __smlad(x_, wl_, a00);                                                                       \
        a01 = __smlad(x_, wh_, a01);                                                                       \
        x_ = (int32_t)(X)[1];                                                                              \
        a10 = __smlad(x_, wl_, a10);                                                                       \
        a11 = __smlad(x_, wh_, a11);                                                                       \
        x_ = (int32_t)(X)[2];                                                                              \
        a20 = __smlad(x_, wl_, a20);                                                                       \
        a21 = __smlad(x_, wh_, a21);                                                                       \
    } while (0)

#if !defined(EK_ACLE_EMULATION)
/* One weight word against the three pixels' words at x (see EK_PW_HALF3). */
#define EK_PW_ASM_HALF3                                                                                    \
    "ldr %[wl], [%[w]], #4\n\t"                                                                            \
    "ldrd %[x0], %[x1], [%[x]], #8\n\t"                                                                    \
    "sxtb16 %[wh], %[wl], ror #8\n\t"                                                                      \
    "sxtb16 %[wl], %[wl]\n\t"                                                                              \
    "smlad %[a00], %[x0], %[wl], %[a00]\n\t"                                                               \
    "smlad %[a01], %[x0], %[wh], %[a01]\n\t"                                                               \
    "ldr %[x0], [%[x]], #4\n\t"                                                                            \
    "smlad %[a10], %[x1], %[wl], %[a10]\n\t"                                                               \
    "smlad %[a11], %[x1], %[wh], %[a11]\n\t"                                                               \
    "smlad %[a20], %[x0], %[wl], %[a20]\n\t"                                                               \
    "smlad %[a21], %[x0], %[wh], %[a21]\n\t"
/* One step: the pair's two weight words (depth k, k+2 then k+1, k+3). */
#define EK_PW_ASM_STEP3 EK_PW_ASM_HALF3 EK_PW_ASM_HALF3
#define EK_PW_ASM_OUTPUTS                                                                                  \
    [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [a20] "+r"(a20), [a21] "+r"(a21),  \
        [w] "+r"(w), [x] "+r"(x), [wl] "=&r"(wl), [wh] "=&r"(wh), [x0] "=&r"(x0), [x1] "=&r"(x1)
#endif

/* `steps` steps of one channel pair's weights from `w` against the widened words `xs` (see
 * widen3), added to `acc`: per step two weight loads, four SXTB16, six input loads and twelve
 * SMLADs for 24 MACs. Returns w past the steps. */
EK_DSP_INLINE const int32_t *mac3(const int32_t *w, const uint32_t *xs, int32_t steps, ek_acc3 *acc)
{
    int32_t a00 = acc->a00, a01 = acc->a01, a10 = acc->a10, a11 = acc->a11, a20 = acc->a20, a21 = acc->a21;
    const uint32_t *x = xs;
#if defined(EK_ACLE_EMULATION)
    const int32_t *const end = w + 2 * steps;
    while (w != end) {
        EK_PW_HALF3(w[0], x);
        EK_PW_HALF3(w[1], x + 3);
        w += 2;
        x += 6;
    }
#else
    /* The same in assembly: the compiler's loop spilled accumulators (30 instructions a
     * step); this one holds its 13 registers and takes 23 a step (two steps a pass). */
    int32_t wl, wh, x0, x1;
    if (steps & 1) {
        __asm__ volatile(EK_PW_ASM_STEP3 : EK_PW_ASM_OUTPUTS : : "memory");
    }
    if (steps > 1) {
        const int32_t *const end = w + 2 * (steps & ~1);
        __asm__ volatile("1:\n\t" EK_PW_ASM_STEP3 EK_PW_ASM_STEP3
                         "cmp %[w], %[end]\n\t"
                         "bne 1b\n\t"
                         : EK_PW_ASM_OUTPUTS
                         : [end] "r"(end)
                         : "cc", "memory");
    }
#endif
    acc->a00 = a00;
    acc->a01 = a01;
    acc->a10 = a10;
    acc->a11 = a11;
    acc->a20 = a20;
    acc->a21 = a21;
    return w;
}

/* Two channels of one pixel as bytes biased by 128 (requantize_u8's) clamped to the activation
 * range, four lanes at once like store4, and stored as int8: both, or the first alone. */
EK_DSP_INLINE void store2(int8_t *o, uint32_t pair, uint32_t lo4, uint32_t hi4, int both)
{
    pair = __uadd8(__uqsub8(pair, lo4), lo4); /* max(pair, act_min + 128) */
    pair = __usub8(hi4, __uqsub8(hi4, pair)); /* min(pair, act_max + 128) */
    pair ^= 0x80808080u; /* one EOR (0x8080 is no Thumb-2 immediate); the upper bytes are not stored */
    if (both) {
        const uint16_t h = (uint16_t)pair;
        memcpy(o, &h, 2);
    } else {
        o[0] = (int8_t)pair;
    }
}

/* The three pixels' channels c, c + 1 (their record r) requantized in the short form
 * (requantize_u8: `round` = 1 + 2 * (out_offset + 128)) into o0 and the next two output rows,
 * `channels` apart; the zero channel of an odd count is not stored. */
EK_DSP_INLINE void store3(const ek_acc3 *a, const int32_t *r, int8_t *o0, int32_t c, int32_t channels,
                          int32_t round, uint32_t lo4, uint32_t hi4)
{
    /* the record read before the first store (int8 stores may alias anything) */
    const int32_t m0 = r[2], m1 = r[3], s0 = r[4], s1 = r[5];
    const uint32_t p0 = requantize_u8(2 * a->a00, m0, s0, round) | requantize_u8(2 * a->a01, m1, s1, round) << 8;
    const uint32_t p1 = requantize_u8(2 * a->a10, m0, s0, round) | requantize_u8(2 * a->a11, m1, s1, round) << 8;
    const uint32_t p2 = requantize_u8(2 * a->a20, m0, s0, round) | requantize_u8(2 * a->a21, m1, s1, round) << 8;
    const int both = c + 1 < channels;
    store2(o0 + c, p0, lo4, hi4, both);
    store2(o0 + channels + c, p1, lo4, hi4, both);
    store2(o0 + 2 * channels + c, p2, lo4, hi4, both);
}

/* Channels [c0, c1) of three pixels over the depth chunk widened into `xs`, which starts at
 * depth value d (a multiple of 4) and is `n` values long. The first chunk starts from the
 * bias, the others from `part` (the block's accumulators, six words per pair); the last
 * requantizes into o0 (and the next two output rows), the others leave their sums in `part`. */
EK_DSP_INLINE void three_pixels(const ek_mm *m, const uint32_t *xs, int32_t d, int32_t n, int32_t c0, int32_t c1,
                                ek_acc3 *part, int8_t *o0)
{
    const int32_t channels = m->channels;
    const int32_t row_steps = (m->depth + 3) >> 2;
    const int32_t round = 1 + 2 * (m->out_offset + 128);
    const uint32_t lo4 = (uint32_t)(m->act_min + 128) * 0x01010101u;
    const uint32_t hi4 = (uint32_t)(m->act_max + 128) * 0x01010101u;
    const int32_t *r = m->records + 3 * c0;
    const int32_t *w = m->weights + c0 * row_steps + (d >> 1); /* pair c0 / 2, step d / 4: two words each */
    const int32_t steps = (n + 3) >> 2;
    const int first = d == 0;
    const int last = d + n == m->depth;
    int32_t c;
    for (c = c0; c < c1; c += 2, r += 6, ++part) {
        ek_acc3 a;
        if (first) {
            a.a00 = a.a10 = a.a20 = r[0];
            a.a01 = a.a11 = a.a21 = r[1];
        } else {
            a = *part;
        }
        w = mac3(w, xs, steps, &a) + 2 * (row_steps - steps);
        if (last) {
            store3(&a, r, o0, c, channels, round, lo4, hi4);
        } else {
            *part = a;
        }
    }
}

/* The first n - n % 3 of `n` pixels (see pixels) in blocks of three, short requantization. One
 * instance for both fast modes (the clamp to int8's own range costs a few instructions per
 * output), out of line: the blocks' code is linked once, about 1 KB. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void three_pixel_blocks(const ek_mm *m, const int8_t *x, int32_t x_step, int8_t *o, int32_t n)
{
    uint32_t xs[3 * EK_PW_WIDE_MAX_DEPTH / 2]; /* widen3's words */
    ek_acc3 part[EK_PW_PART_CHANNELS / 2];     /* a channel block's sums between depth chunks */
    const int32_t depth = m->depth;
    const int32_t channels = m->channels;
    /* one block of every channel when the row is one chunk (widened once for all of them) */
    const int32_t block = depth <= EK_PW_WIDE_MAX_DEPTH ? channels : EK_PW_PART_CHANNELS;
    int32_t c0, d;
    for (; n >= 3; n -= 3) {
        for (c0 = 0; c0 < channels; c0 += block) {
            const int32_t c1 = channels - c0 < block ? channels : c0 + block;
            for (d = 0; d < depth; d += EK_PW_WIDE_MAX_DEPTH) {
                const int32_t len = depth - d < EK_PW_WIDE_MAX_DEPTH ? depth - d : EK_PW_WIDE_MAX_DEPTH;
                widen3(x + d, x_step, len, xs);
                three_pixels(m, xs, d, len, c0, c1, part, o);
            }
        }
        x += 3 * x_step;
        o += 3 * channels;
    }
}

/* ---- Four pixels by one channel pair ------------------------------------------------------- */

/* Four pixels' rows are widened once per depth chunk of up to EK_PW_QUAD_DEPTH values into
 * halfword pairs *doubled* (so the sums are 2 * acc, the operand of the requantization's SMMULR:
 * no doubling per output), step by step (4 depth values) as eight words: the four pixels'
 * (x[k], x[k+2]), then their (x[k+1], x[k+3]). Each channel pair then runs over them with its
 * two weight words widened once for the four pixels: per step two weight loads, four SXTB16,
 * four LDRD and sixteen SMLADs for 32 MACs (0.81 instructions per MAC), in an assembly routine
 * that also requantizes, clamps and stores the pair's eight outputs. A deeper row runs the pairs
 * in blocks of EK_PW_QUAD_PAIRS whose sums wait on the stack between chunks (8 words a pair).
 * Stack: 2 KB of widened words and 1 KB of sums. */
#define EK_PW_QUAD_DEPTH 256
#define EK_PW_QUAD_PAIRS 32

/* One call of the routine: channel pairs `count` from `records` / `weights` over one depth chunk
 * of four widened pixels. The field order is the assembly's (it copies the struct onto its stack:
 * field i at [sp, #4i]). */
typedef struct {
    const uint32_t *xs;     /* 0: the widened words (8 a step) */
    const uint32_t *xs_end; /* 1: xs + 8 * steps */
    uint32_t entry;         /* 2: steps & 3 (the assembly turns it into its loop's entry address) */
    const int32_t *weights; /* 3: the first pair's words at this chunk's first step */
    int32_t skip;           /* 4: bytes from a pair's chunk end to the next pair's chunk start */
    int32_t first;          /* 5: the sums start from the doubled biases (else from `part`) */
    int32_t last;           /* 6: requantize and store (else leave the sums in `part`) */
    int32_t round;          /* 7: 1 + 2 * (out_offset - act_min) */
    uint32_t sat2, shift2;  /* 8, 9: the clamp of two bytes at once (below) */
    int8_t *out;            /* 10: pixel 0's output at the first pair's channel */
    int32_t stride;         /* 11: bytes between two pixels' outputs (the channel count) */
    const int32_t *records; /* 12: the first pair's record (bias0, bias1, m0, m1, s0, s1) */
    int32_t *part;          /* 13: the first pair's sums (8 words: pixel-major, channel 0 then 1) */
    int32_t count;          /* 14: channel pairs */
} ek_pw_quad;

/* Requantization of a doubled sum: SMMULR gives TFLite's doubling high multiply v; the rounding
 * divide by 2^(s+1), halves away from zero, is ((v - (v < 0)) >> s + 1) >> 1 and the output
 * offset joins before the last halving (ek_requant_dsp.h); with `round` = 1 + 2 * (out_offset -
 * act_min) USAT gives u = min(max(q - act_min, 0), 255) for the output q. The clamp then takes
 * two channels' bytes at once (ek_conv_dsp.c's conv_groups): UQADD8 of d = 255 - (act_max -
 * act_min) saturates exactly where u passes act_max - act_min, and a wrapping UADD8 of act_min - d
 * gives min(u, act_max - act_min) + act_min, the int8 output. */
static inline uint32_t quad_requantize(int32_t acc2, int32_t m, int32_t s, int32_t round)
{
    int32_t v = ek_smmulr(acc2, m);
    v = ((v + (v >> 31)) >> s) + round;
    return (uint32_t)__usat(v >> 1, 8);
}

#if defined(EK_ACLE_EMULATION)
/* The assembly's arithmetic in C, for the host tests. */
static void run_quad(const ek_pw_quad *q)
{
    const int32_t *w = q->weights;
    const int32_t *r = q->records;
    int8_t *out = q->out;
    int32_t *part = q->part;
    int32_t n;
    for (n = 0; n < q->count; ++n, r += 6, part += 8) {
        int32_t a[8], i;
        const uint32_t *x;
        if (q->first) {
            for (i = 0; i < 8; ++i) {
                a[i] = 2 * r[i & 1];
            }
        } else {
            memcpy(a, part, sizeof(a));
        }
        for (x = q->xs; x != q->xs_end; x += 8, w += 2) {
            int32_t h, p;
            for (h = 0; h < 2; ++h) { /* the pair's (k, k+2) word, then its (k+1, k+3) one */
                const int32_t wl = __sxtb16(w[h]);
                const int32_t wh = ek_sxtb16_ror8((uint32_t)w[h]);
                for (p = 0; p < 4; ++p) {
                    a[2 * p] = __smlad((int32_t)x[4 * h + p], wl, a[2 * p]);
                    a[2 * p + 1] = __smlad((int32_t)x[4 * h + p], wh, a[2 * p + 1]);
                }
            }
        }
        w = (const int32_t *)(const void *)((const char *)w + q->skip);
        if (q->last) {
            for (i = 0; i < 4; ++i) {
                uint32_t pair = quad_requantize(a[2 * i], r[2], r[4], q->round) |
                                quad_requantize(a[2 * i + 1], r[3], r[5], q->round) << 8;
                pair = __uadd8(__uqadd8(pair, q->sat2), q->shift2);
                memcpy(out + i * q->stride, &pair, 2);
            }
            out += 2;
        } else {
            memcpy(part, a, sizeof(a));
        }
    }
}
#else
/* One step (4 depth values): per weight word (the pair's (k, k+2) lanes, then (k+1, k+3)) one
 * LDR, two SXTB16 and the four pixels' words in two LDRDs, eight SMLADs. 104 bytes (every
 * instruction 32-bit): the loop's entry is computed from it. */
#define EK_PW_QUAD_HALF                                                                                    \
    "ldr.w r4, [r1], #4\n\t"                                                                               \
    "ldrd r2, r3, [r0], #8\n\t"                                                                            \
    "sxtb16 r5, r4, ror #8\n\t"                                                                            \
    "sxtb16 r4, r4\n\t"                                                                                    \
    "smlad r6, r2, r4, r6\n\t"                                                                             \
    "smlad r7, r2, r5, r7\n\t"                                                                             \
    "smlad r8, r3, r4, r8\n\t"                                                                             \
    "smlad r9, r3, r5, r9\n\t"                                                                             \
    "ldrd r2, r3, [r0], #8\n\t"                                                                            \
    "smlad r10, r2, r4, r10\n\t"                                                                           \
    "smlad r11, r2, r5, r11\n\t"                                                                           \
    "smlad r12, r3, r4, r12\n\t"                                                                           \
    "smlad lr, r3, r5, lr\n\t"
#define EK_PW_QUAD_STEP EK_PW_QUAD_HALF EK_PW_QUAD_HALF

/* quad_requantize on A in place: multiplier r2, s r3, round r4. */
#define EK_PW_QUAD_REQ(A)                                                                                  \
    "smmulr " A ", " A ", r2\n\t"                                                                          \
    "add " A ", " A ", " A ", asr #31\n\t"                                                                 \
    "asr " A ", " A ", r3\n\t"                                                                             \
    "add " A ", " A ", r4\n\t"                                                                             \
    "usat " A ", #8, " A ", asr #1\n\t"

/* One pixel's two channels (A, B) clamped (sat2 r2, shift2 r3) and stored as a halfword. */
#define EK_PW_QUAD_STORE(A, B, ADDR)                                                                       \
    "orr " A ", " A ", " B ", lsl #8\n\t"                                                                  \
    "uqadd8 " A ", " A ", r2\n\t"                                                                          \
    "uadd8 " A ", " A ", r3\n\t"                                                                           \
    "strh " A ", " ADDR "\n\t"

/* In assembly as a whole: the loop holds 14 registers (8 sums, 2 input words, 2 weight
 * halfword pairs, the input and weight pointers), so the loop's end is read from the stack
 * (three instructions a pass of four steps). Registers: r0 widened words, r1 weights, r2-r3
 * input words, r4-r5 the weight word's two channels, r6-r12 and lr the sums (pixel 0 channel 0,
 * pixel 0 channel 1, pixel 1 channel 0, ...); the struct's fields on the stack. A pair costs
 * about 12 instructions around its loop, 26 a step and 3 a pass, 46 to requantize and 22 to
 * clamp and store its eight outputs. */
__attribute__((naked, noinline)) static void run_quad(const ek_pw_quad *q)
{
    (void)q;
    __asm__ volatile(
        "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "sub sp, sp, #60\n\t"
        "ldmia r0!, {r2, r3, r4, r5, r6, r7, r8, r9}\n\t" /* fields 0-7 */
        "stmia sp, {r2, r3, r4, r5, r6, r7, r8, r9}\n\t"
        "ldmia r0, {r2, r3, r4, r5, r6, r7, r8}\n\t" /* fields 8-14 */
        "add r1, sp, #32\n\t"
        "stmia r1, {r2, r3, r4, r5, r6, r7, r8}\n\t"
        "ldr r4, [sp, #8]\n\t" /* entry: (4 - steps & 3) & 3 steps into the loop, Thumb bit set */
        "rsb r4, r4, #4\n\t"
        "and r4, r4, #3\n\t"
        "movs r5, #104\n\t"
        "adr r2, 4f\n\t"
        "mla r2, r4, r5, r2\n\t"
        "orr r2, r2, #1\n\t"
        "str r2, [sp, #8]\n\t"
        "ldr r1, [sp, #12]\n\t" /* weights */
        "1:\n\t"
        "ldr r2, [sp, #20]\n\t" /* first */
        "cbz r2, 2f\n\t"
        "ldr r0, [sp, #48]\n\t" /* records: the doubled biases */
        "ldrd r6, r7, [r0]\n\t"
        "add r6, r6, r6\n\t"
        "add r7, r7, r7\n\t"
        "mov r8, r6\n\t"
        "mov r9, r7\n\t"
        "mov r10, r6\n\t"
        "mov r11, r7\n\t"
        "mov r12, r6\n\t"
        "mov lr, r7\n\t"
        "b 3f\n\t"
        "2:\n\t"
        "ldr r0, [sp, #52]\n\t" /* part */
        "ldmia r0, {r6, r7, r8, r9, r10, r11, r12, lr}\n\t"
        "3:\n\t"
        "ldr r0, [sp]\n\t" /* xs */
        "ldr pc, [sp, #8]\n\t"
        ".balign 4\n\t"
        "4:\n\t"
        EK_PW_QUAD_STEP EK_PW_QUAD_STEP EK_PW_QUAD_STEP EK_PW_QUAD_STEP
        "ldr r2, [sp, #4]\n\t" /* xs_end */
        "cmp r0, r2\n\t"
        "bne 4b\n\t"
        "ldr r2, [sp, #16]\n\t" /* skip */
        "add r1, r1, r2\n\t"
        "ldr r2, [sp, #24]\n\t" /* last */
        "cmp r2, #0\n\t"
        "beq 6f\n\t"
        "ldr r0, [sp, #48]\n\t" /* records */
        "ldr r4, [sp, #28]\n\t" /* round */
        "ldr r2, [r0, #8]\n\t"
        "ldr r3, [r0, #16]\n\t"
        EK_PW_QUAD_REQ("r6") EK_PW_QUAD_REQ("r8") EK_PW_QUAD_REQ("r10") EK_PW_QUAD_REQ("r12")
        "ldr r2, [r0, #12]\n\t"
        "ldr r3, [r0, #20]\n\t"
        EK_PW_QUAD_REQ("r7") EK_PW_QUAD_REQ("r9") EK_PW_QUAD_REQ("r11") EK_PW_QUAD_REQ("lr")
        "ldrd r2, r3, [sp, #32]\n\t" /* sat2, shift2 */
        "ldrd r0, r5, [sp, #40]\n\t" /* out, stride */
        EK_PW_QUAD_STORE("r6", "r7", "[r0]")
        EK_PW_QUAD_STORE("r8", "r9", "[r0, r5]")
        "add r4, r0, r5, lsl #1\n\t"
        EK_PW_QUAD_STORE("r10", "r11", "[r4]")
        EK_PW_QUAD_STORE("r12", "lr", "[r4, r5]")
        "add r0, r0, #2\n\t"
        "str r0, [sp, #40]\n\t"
        "b 7f\n\t"
        "6:\n\t"
        "ldr r0, [sp, #52]\n\t" /* part: the sums wait */
        "stmia r0, {r6, r7, r8, r9, r10, r11, r12, lr}\n\t"
        "7:\n\t"
        "add r0, sp, #48\n\t" /* records, part, count */
        "ldmia r0, {r2, r3, r4}\n\t"
        "add r2, r2, #24\n\t"
        "add r3, r3, #32\n\t"
        "subs r4, r4, #1\n\t"
        "stmia r0, {r2, r3, r4}\n\t"
        "bne 1b\n\t"
        "add sp, sp, #60\n\t"
        "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}
#endif

/* Four pixels' rows (x, x_step bytes apart) from depth value d on, `n` values, widened into `to`
 * (see EK_PW_QUAD_DEPTH); a last step of 1-3 values is padded with zeros. */
static void widen_quad(const int8_t *x, int32_t x_step, int32_t n, uint32_t *to)
{
    const int32_t full = n & ~3;
    const int32_t tail = n & 3;
    int32_t k, p;
    for (k = 0; k < full; k += 4, to += 8) {
        for (p = 0; p < 4; ++p) {
            const uint32_t v = ek_load4(x + p * x_step + k);
            to[p] = (uint32_t)__sxtab16(__sxtb16((int32_t)v), (int32_t)v); /* 2 * (x[k], x[k+2]) */
            to[4 + p] = (uint32_t)ek_sxtab16_ror8(ek_sxtb16_ror8(v), v);     /* 2 * (x[k+1], x[k+3]) */
        }
    }
    if (tail) {
        for (p = 0; p < 4; ++p) {
            const uint32_t v = load_tail(x + p * x_step + k, tail);
            to[p] = (uint32_t)__sxtab16(__sxtb16((int32_t)v), (int32_t)v);
            to[4 + p] = (uint32_t)ek_sxtab16_ror8(ek_sxtb16_ror8(v), v);
        }
    }
}

/* The first n - n % 4 of `n` pixels (see pixels) in blocks of four, short requantization. Out of
 * line: one instance for both fast modes. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void quad_pixel_blocks(const ek_mm *m, const int8_t *x, int32_t x_step, int8_t *o, int32_t n)
{
    uint32_t xs[8 * (EK_PW_QUAD_DEPTH / 4)]; /* widen_quad's words */
    int32_t part[8 * EK_PW_QUAD_PAIRS];      /* a block's sums between depth chunks */
    const int32_t depth = m->depth;
    const int32_t channels = m->channels;
    const int32_t pairs = (channels + 1) >> 1;
    const int32_t row_steps = (depth + 3) >> 2;
    const int chunked = depth > EK_PW_QUAD_DEPTH;
    const int32_t block = chunked ? EK_PW_QUAD_PAIRS : pairs; /* pairs per block */
    const uint32_t sat = 255u - (uint32_t)(m->act_max - m->act_min);
    const uint32_t lo4 = (uint32_t)(m->act_min + 128) * 0x01010101u;
    const uint32_t hi4 = (uint32_t)(m->act_max + 128) * 0x01010101u;
    const int32_t round_u8 = 1 + 2 * (m->out_offset + 128); /* requantize1's */
    ek_pw_quad q;
    int32_t b0, d;
    q.xs = xs;
    q.round = 1 + 2 * (m->out_offset - m->act_min);
    q.sat2 = sat * 0x0101u;
    q.shift2 = (((uint32_t)m->act_min - sat) & 0xFFu) * 0x0101u;
    q.stride = channels;
    for (; n >= 4; n -= 4, x += 4 * x_step, o += 4 * channels) {
        for (b0 = 0; b0 < pairs; b0 += block) {
            const int32_t b1 = pairs - b0 < block ? pairs : b0 + block;
            for (d = 0; d < depth; d += EK_PW_QUAD_DEPTH) {
                const int32_t len = depth - d < EK_PW_QUAD_DEPTH ? depth - d : EK_PW_QUAD_DEPTH;
                const int32_t steps = (len + 3) >> 2;
                const int last = d + len == depth;
                /* an odd channel count's last pair leaves its sums for the one channel below */
                const int32_t whole = last && (channels & 1) && b1 == pairs ? b1 - 1 : b1;
                if (chunked || b0 == 0) {
                    widen_quad(x + d, x_step, len, xs);
                }
                q.xs_end = xs + 8 * steps;
                q.entry = (uint32_t)(steps & 3);
                q.skip = 8 * (row_steps - steps);
                q.first = d == 0;
                q.part = part;
                if (whole > b0) {
                    q.weights = m->weights + 2 * (b0 * row_steps + (d >> 2));
                    q.last = last;
                    q.out = o + 2 * b0;
                    q.records = m->records + 6 * b0;
                    q.count = whole - b0;
                    run_quad(&q);
                }
                if (whole < b1) {
                    int32_t *const sums = chunked ? part + 8 * (whole - b0) : part;
                    const int32_t *const r = m->records + 6 * whole;
                    int32_t p;
                    q.weights = m->weights + 2 * (whole * row_steps + (d >> 2));
                    q.last = 0;
                    q.records = r;
                    q.part = sums;
                    q.count = 1;
                    run_quad(&q);
                    for (p = 0; p < 4; ++p) {
                        o[p * channels + 2 * whole] = requantize1(sums[2 * p], r[2], r[4], round_u8, lo4, hi4);
                    }
                }
            }
        }
    }
}


/* `n` pixels `x_step` bytes apart, their outputs contiguous. */
EK_DSP_INLINE void pixels(const ek_mm *m, const int8_t *x, int32_t x_step, int8_t *o, int32_t n, int mode)
{
    if (mode != EK_EXACT && n >= 4 && m->channels >= EK_PW_WIDE_MIN_CHANNELS) {
        const int32_t done = n - n % 4;
        quad_pixel_blocks(m, x, x_step, o, n);
        x += done * x_step;
        o += done * m->channels;
        n -= done;
    }
    if (mode != EK_EXACT && n >= 3 && m->channels >= EK_PW_WIDE_MIN_CHANNELS) {
        const int32_t done = n - n % 3;
        three_pixel_blocks(m, x, x_step, o, n);
        x += done * x_step;
        o += done * m->channels;
        n -= done;
    }
    for (; n >= 2; n -= 2) {
        two_pixels(m, x, x + x_step, o, o + m->channels, mode);
        x += 2 * x_step;
        o += 2 * m->channels;
    }
    if (n > 0) {
        one_pixel(m, x, o, mode);
    }
}

/* One instance of the pixel loop per requantization (the entry points share them). */
typedef void (*ek_pw_run)(const ek_mm *m, const int8_t *x, int32_t x_step, int8_t *o, int32_t n);

static void run_exact(const ek_mm *m, const int8_t *x, int32_t x_step, int8_t *o, int32_t n)
{
    pixels(m, x, x_step, o, n, EK_EXACT);
}

static void run_fast(const ek_mm *m, const int8_t *x, int32_t x_step, int8_t *o, int32_t n)
{
    pixels(m, x, x_step, o, n, EK_FAST);
}

static void run_fast_clamp(const ek_mm *m, const int8_t *x, int32_t x_step, int8_t *o, int32_t n)
{
    pixels(m, x, x_step, o, n, EK_FAST_CLAMP);
}

static void conv_1x1(const ek_conv1x1_dsp_params *p, const int8_t *input, int8_t *output, ek_pw_run run)
{
    const ek_mm m = {p->weights, p->records, p->in_c, p->out_c, p->out_offset,
                     p->act_min, p->act_max};
    const int32_t in_row = p->in_w * p->in_c;
    int32_t b, oy;
    if (p->stride_h == 1 && p->stride_w == 1 && p->out_h == p->in_h && p->out_w == p->in_w) {
        /* every input pixel, in order: one matrix of batches * h * w rows */
        run(&m, input, p->in_c, output, p->batches * p->in_h * p->in_w);
        return;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            run(&m, image + oy * p->stride_h * in_row, p->stride_w * p->in_c, output, p->out_w);
            output += p->out_w * p->out_c;
        }
    }
}

static void fully_connected(const ek_fc_dsp_params *p, const int8_t *input, int8_t *output, ek_pw_run run)
{
    const ek_mm m = {p->weights, p->records, p->depth, p->units, p->out_offset,
                     p->act_min, p->act_max};
    run(&m, input, p->depth, output, p->rows);
}

/* The short requantization, clamped to the activation range only when that is not int8's. */
static ek_pw_run fast_run(int32_t lo, int32_t hi) { return lo == -128 && hi == 127 ? run_fast : run_fast_clamp; }

void ek_conv2d_1x1_dsp(const ek_conv1x1_dsp_params *p, const int8_t *input, int8_t *output)
{
    conv_1x1(p, input, output, run_exact);
}

void ek_conv2d_1x1_dsp_fast(const ek_conv1x1_dsp_params *p, const int8_t *input, int8_t *output)
{
    conv_1x1(p, input, output, fast_run(p->act_min, p->act_max));
}

void ek_fully_connected_dsp(const ek_fc_dsp_params *p, const int8_t *input, int8_t *output)
{
    fully_connected(p, input, output, run_exact);
}

void ek_fully_connected_dsp_fast(const ek_fc_dsp_params *p, const int8_t *input, int8_t *output)
{
    fully_connected(p, input, output, fast_run(p->act_min, p->act_max));
}
