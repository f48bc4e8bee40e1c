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

/* `n` pixels `x_step` bytes apart, their outputs contiguous. */
EK_DSP_INLINE void pixels(const ek_mm *m, const int8_t *x, int32_t x_step, int8_t *o, int32_t n, int mode)
{
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
