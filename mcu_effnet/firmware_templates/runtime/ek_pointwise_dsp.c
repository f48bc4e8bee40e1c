/* 1x1 CONV_2D and FULLY_CONNECTED with SMLAD: a matrix product of pixels (rows of `depth`
 * int8 values) by output channels, four, three, two or one pixels by two channels at a time.
 *
 * Blocks of four and three pixels (short requantization, 8 or more channels: MobileNets' and
 * EfficientNets' deep 1x1 layers, whose weights stay int8 because widening them would cost more
 * flash than TFLite Micro's firmware takes): a block's rows are widened once to doubled halfword
 * pairs on the stack (256 depth values at a time), then each channel pair's weight word is
 * widened once (two SXTB16) for the block: per 4 depth values two weight loads, four SXTB16,
 * four LDRD (four pixels) or two LDM (three) and 16 or 12 SMLADs for 32 or 24 MACs, in an
 * assembly routine that also requantizes (SMMLAR, 4 instructions an output), clamps two
 * channels at once and stores them (about 0.84 instructions per MAC in the loop; VWW's 3x3
 * 128 -> 256 and 256 -> 256 layers 1.11 and 1.04 -> 0.97 and 0.92 with everything; EfficientNet-
 * B0's 7x7 240 -> 80, 80 -> 480, 480 -> 80 and 480 -> 112 1.08, 1.22, 1.08 and 1.06 -> 0.93,
 * 0.99, 0.95 and 0.93).
 *
 * Two pixels (fewer channels, the exact requantization, the one or two pixels the blocks leave):
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

/* ---- Blocks of four or three pixels by one channel pair ---------------------------------------- */

/* With the short requantization and 8 or more channels, the pixels go in blocks of four (three
 * where the count needs it: n = 4a + 3b) that share one pass over the weights. A block's rows
 * are widened once per depth chunk of up to EK_PW_WIDE_MAX_DEPTH values into halfword pairs
 * *doubled* (the sums are then 2 * acc, the operand of the requantization's SMMULR: no doubling
 * per output), step by step (4 depth values) as 2P words: the P pixels' (x[k], x[k+2]), then
 * their (x[k+1], x[k+3]). Each channel pair runs over them with its two weight words widened
 * once for the block, in an assembly routine that also requantizes, clamps and stores the pair's
 * outputs: per step two weight loads, four SXTB16, the inputs (four LDRD; one LDM of three) and
 * 4P SMLADs for 8P MACs (26 for 32, 20 for 24). A deeper row runs the pairs in blocks of
 * EK_PW_PART_PAIRS whose sums wait on the stack between chunks (2P words a pair). Stack: 2 KB of
 * widened words and 1 KB of sums. */
#define EK_PW_WIDE_MAX_DEPTH 256
#define EK_PW_PART_PAIRS 32
#define EK_PW_WIDE_MIN_CHANNELS 8

/* One call of the routine: channel pairs `count` from `records` / `weights` over one depth chunk
 * of a block's widened pixels. The field order is the assembly's (it copies the struct onto its
 * stack: field i at [sp, #4i]). */
typedef struct {
    const uint32_t *xs;     /* 0: the widened words (2P a step) */
    const uint32_t *xs_end; /* 1: xs + 2P * steps */
    uint32_t entry;         /* 2: steps & 3 (the assembly turns it into its loop's entry address) */
    const int32_t *weights; /* 3: the first pair's words at this chunk's first step */
    int32_t skip;           /* 4: bytes from a pair's chunk end to the next pair's chunk start */
    int32_t first;          /* 5: the sums start from the doubled biases (else from `part`) */
    int32_t last;           /* 6: requantize and store (else leave the sums in `part`) */
    int32_t round;          /* 7: 1 + 2 * (out_offset - act_min) */
    uint32_t sat2, shift2;  /* 8, 9: the clamp of two bytes at once (clamp_k4) */
    int8_t *out;            /* 10: pixel 0's output at the first pair's channel */
    int32_t stride;         /* 11: bytes between two pixels' outputs (the channel count) */
    const int32_t *records; /* 12: the first pair's record (bias0, bias1, m0, m1, s0, s1) */
    int32_t *part;          /* 13: the first pair's sums (2P words: pixel-major, channel 0 then 1) */
    int32_t count;          /* 14: channel pairs */
} ek_pw_block;

/* The pixel blocks requantize a doubled sum in requantize_k's form (ek_requant_dsp.h: SMMLAR
 * with k = `round` << s, `round` = 1 + 2 * (out_offset - act_min), 4 instructions); the generator
 * keeps s <= 20 (dsp_pointwise.fast_requantize_ok), so v + k fits int32. Two channels' bytes are
 * clamped at once (clamp_k4). */
#if defined(EK_ACLE_EMULATION)
/* The assembly's arithmetic in C, for the host tests: P pixels (3 or 4). */
static void run_block(const ek_pw_block *q, int32_t P)
{
    const int32_t *w = q->weights;
    const int32_t *r = q->records;
    int8_t *out = q->out;
    int32_t *part = q->part;
    int32_t n;
    for (n = 0; n < q->count; ++n, r += 6, part += 2 * P) {
        int32_t a[8], i;
        const uint32_t *x;
        if (q->first) {
            for (i = 0; i < 2 * P; ++i) {
                a[i] = 2 * r[i & 1];
            }
        } else {
            memcpy(a, part, (size_t)(2 * P) * sizeof(a[0]));
        }
        for (x = q->xs; x != q->xs_end; x += 2 * P, w += 2) {
            int32_t h, p;
            for (h = 0; h < 2; ++h) { /* the pair's (k, k+2) word, then its (k+1, k+3) one */
                const int32_t wl = __sxtb16(w[h]);
                const int32_t wh = ek_sxtb16_ror8((uint32_t)w[h]);
                for (p = 0; p < P; ++p) {
                    a[2 * p] = __smlad((int32_t)x[P * h + p], wl, a[2 * p]);
                    a[2 * p + 1] = __smlad((int32_t)x[P * h + p], wh, a[2 * p + 1]);
                }
            }
        }
        w = (const int32_t *)(const void *)((const char *)w + q->skip);
        if (q->last) {
            for (i = 0; i < P; ++i) {
                const uint32_t pair = requantize_k(a[2 * i], r[2], (int32_t)((uint32_t)q->round << r[4]), r[4]) |
                                      requantize_k(a[2 * i + 1], r[3], (int32_t)((uint32_t)q->round << r[5]), r[5])
                                          << 8;
                const uint32_t clamped = clamp_k4(pair, q->sat2, q->shift2);
                memcpy(out + i * q->stride, &clamped, 2);
            }
            out += 2;
        } else {
            memcpy(part, a, (size_t)(2 * P) * sizeof(a[0]));
        }
    }
}
static void run_quad(const ek_pw_block *q) { run_block(q, 4); }
static void run_tri(const ek_pw_block *q) { run_block(q, 3); }
#else
/* The routines' shared parts. Prologue: the struct copied onto the stack (60 bytes below the
 * saved registers), the loop's entry address ((4 - steps & 3) & 3 steps of STEP bytes into it,
 * Thumb bit set) in field 2, r1 the weights. */
#define EK_PW_BLOCK_PROLOGUE(STEP)                                                                         \
    "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                                                      \
    "sub sp, sp, #60\n\t"                                                                                  \
    "ldmia r0!, {r2, r3, r4, r5, r6, r7, r8, r9}\n\t" /* fields 0-7 */                                     \
    "stmia sp, {r2, r3, r4, r5, r6, r7, r8, r9}\n\t"                                                       \
    "ldmia r0, {r2, r3, r4, r5, r6, r7, r8}\n\t" /* fields 8-14 */                                         \
    "add r1, sp, #32\n\t"                                                                                  \
    "stmia r1, {r2, r3, r4, r5, r6, r7, r8}\n\t"                                                           \
    "ldr r4, [sp, #8]\n\t"                                                                                 \
    "rsb r4, r4, #4\n\t"                                                                                   \
    "and r4, r4, #3\n\t"                                                                                   \
    "movs r5, #" STEP "\n\t"                                                                               \
    "adr r2, 4f\n\t"                                                                                       \
    "mla r2, r4, r5, r2\n\t"                                                                               \
    "orr r2, r2, #1\n\t"                                                                                   \
    "str r2, [sp, #8]\n\t"                                                                                 \
    "ldr r1, [sp, #12]\n\t"

/* A pair's sums from its doubled biases (first chunk) or from `part` (A..B: the sum registers). */
#define EK_PW_BLOCK_INIT(MOVS, PART_REGS)                                                                  \
    "1:\n\t"                                                                                               \
    "ldr r2, [sp, #20]\n\t" /* first */                                                                    \
    "cbz r2, 2f\n\t"                                                                                       \
    "ldr r0, [sp, #48]\n\t" /* records: the doubled biases */                                              \
    "ldrd r6, r7, [r0]\n\t"                                                                                \
    "add r6, r6, r6\n\t"                                                                                   \
    "add r7, r7, r7\n\t" MOVS "b 3f\n\t"                                                                   \
    "2:\n\t"                                                                                               \
    "ldr r0, [sp, #52]\n\t" /* part */                                                                     \
    "ldmia r0, {" PART_REGS "}\n\t"                                                                        \
    "3:\n\t"

/* After the loop: the weights on to the next pair's chunk; unless last, the sums to `part`. */
#define EK_PW_BLOCK_AFTER(PART_REGS)                                                                       \
    "ldr r2, [sp, #16]\n\t" /* skip */                                                                     \
    "add r1, r1, r2\n\t"                                                                                   \
    "ldr r2, [sp, #24]\n\t" /* last */                                                                     \
    "cbnz r2, 5f\n\t"                                                                                      \
    "ldr r0, [sp, #52]\n\t" /* part: the sums wait */                                                      \
    "stmia r0, {" PART_REGS "}\n\t"                                                                        \
    "b 7f\n\t"                                                                                             \
    "5:\n\t"                                                                                               \
    "ldr r0, [sp, #48]\n\t" /* records */                                                                  \
    "ldr r2, [r0, #8]\n\t"  /* channel 0's multiplier, s and k */                                          \
    "ldr r3, [r0, #16]\n\t"                                                                                \
    "ldr r4, [sp, #28]\n\t"                                                                                \
    "lsl r4, r4, r3\n\t"

/* The next pair (records, part, count: fields 12-14), PART bytes of sums on. */
#define EK_PW_BLOCK_NEXT(PART)                                                                             \
    "7:\n\t"                                                                                               \
    "add r0, sp, #48\n\t"                                                                                  \
    "ldmia r0, {r2, r3, r4}\n\t"                                                                           \
    "add r2, r2, #24\n\t"                                                                                  \
    "add r3, r3, #" PART "\n\t"                                                                            \
    "subs r4, r4, #1\n\t"                                                                                  \
    "stmia r0, {r2, r3, r4}\n\t"                                                                           \
    "bne 1b\n\t"                                                                                           \
    "add sp, sp, #60\n\t"                                                                                  \
    "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"

/* requantize_k on A in place (k = round << s): multiplier r2, s r3, k r4, r5 free. */
#define EK_PW_BLOCK_REQ(A)                                                                                 \
    "smmlar r5, " A ", r2, r4\n\t"                                                                         \
    "sub r5, r5, " A ", lsr #31\n\t"                                                                       \
    "asr r5, r5, r3\n\t"                                                                                   \
    "usat " A ", #8, r5, asr #1\n\t"

/* Channel 1's multiplier, s and k (records in r0). */
#define EK_PW_BLOCK_CHANNEL1                                                                               \
    "ldr r2, [r0, #12]\n\t"                                                                                \
    "ldr r3, [r0, #20]\n\t"                                                                                \
    "ldr r4, [sp, #28]\n\t"                                                                                \
    "lsl r4, r4, r3\n\t"

/* One pixel's two channels (A, B) clamped (sat2 r2, shift2 r3) and stored as a halfword. */
#define EK_PW_BLOCK_STORE(A, B, ADDR)                                                                      \
    "orr " A ", " A ", " B ", lsl #8\n\t"                                                                  \
    "uqadd8 " A ", " A ", r2\n\t"                                                                          \
    "uadd8 " A ", " A ", r3\n\t"                                                                           \
    "strh " A ", " ADDR "\n\t"

/* The clamp's constants and the output (r0) and its stride (r5). */
#define EK_PW_BLOCK_OUT                                                                                    \
    "ldrd r2, r3, [sp, #32]\n\t" /* sat2, shift2 */                                                        \
    "ldrd r0, r5, [sp, #40]\n\t" /* out, stride */

/* The output on by the pair's two channels. */
#define EK_PW_BLOCK_OUT_NEXT                                                                               \
    "add r0, r0, #2\n\t"                                                                                   \
    "str r0, [sp, #40]\n\t"

/* Four pixels, one step (4 depth values): per weight word (the pair's (k, k+2) lanes, then
 * (k+1, k+3)) one LDR, two SXTB16, the four pixels' words in two LDRDs and eight SMLADs. 104
 * bytes (every instruction 32-bit): the loop's entry is computed from it. */
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

/* Four pixels: the loop holds all 14 registers (8 sums, 2 input words, 2 weight halfword
 * pairs, the input and weight pointers), so the loop's end is read from the stack (three
 * instructions a pass of four steps). Registers: r0 widened words, r1 weights, r2-r3 input
 * words, r4-r5 the weight word's two channels, r6-r12 and lr the sums (pixel 0 channel 0, pixel
 * 0 channel 1, pixel 1 channel 0, ...). A pair costs 26 instructions a step, 3 a pass and about
 * 88 besides (26 around its loop and on to the next pair, 41 to requantize and 21 to clamp and
 * store its 8 outputs): EfficientNet-B0's 80 -> 480 at 7x7, 20 steps, 0.99 instructions per MAC. */
__attribute__((naked, noinline)) static void run_quad(const ek_pw_block *q)
{
    (void)q;
    __asm__ volatile(
        EK_PW_BLOCK_PROLOGUE("104")
        EK_PW_BLOCK_INIT("mov r8, r6\n\tmov r9, r7\n\tmov r10, r6\n\tmov r11, r7\n\tmov r12, r6\n\tmov lr, r7\n\t",
                         "r6, r7, r8, r9, r10, r11, r12, lr")
        "ldr r0, [sp]\n\t" /* xs */
        "ldr pc, [sp, #8]\n\t"
        ".balign 4\n\t"
        "4:\n\t"
        EK_PW_QUAD_STEP EK_PW_QUAD_STEP EK_PW_QUAD_STEP EK_PW_QUAD_STEP
        "ldr r2, [sp, #4]\n\t" /* xs_end */
        "cmp r0, r2\n\t"
        "bne 4b\n\t"
        EK_PW_BLOCK_AFTER("r6, r7, r8, r9, r10, r11, r12, lr")
        EK_PW_BLOCK_REQ("r6") EK_PW_BLOCK_REQ("r8") EK_PW_BLOCK_REQ("r10") EK_PW_BLOCK_REQ("r12")
        EK_PW_BLOCK_CHANNEL1
        EK_PW_BLOCK_REQ("r7") EK_PW_BLOCK_REQ("r9") EK_PW_BLOCK_REQ("r11") EK_PW_BLOCK_REQ("lr")
        EK_PW_BLOCK_OUT
        EK_PW_BLOCK_STORE("r6", "r7", "[r0]")
        EK_PW_BLOCK_STORE("r8", "r9", "[r0, r5]")
        "add r4, r0, r5, lsl #1\n\t"
        EK_PW_BLOCK_STORE("r10", "r11", "[r4]")
        EK_PW_BLOCK_STORE("r12", "lr", "[r4, r5]")
        EK_PW_BLOCK_OUT_NEXT
        EK_PW_BLOCK_NEXT("32"));
}

/* Three pixels, one step: per weight word one LDR, two SXTB16, one LDM of the three pixels'
 * words and six SMLADs. 80 bytes (every instruction 32-bit). */
#define EK_PW_TRI_HALF                                                                                     \
    "ldr.w r5, [r1], #4\n\t"                                                                               \
    "ldmia.w r0!, {r2, r3, r4}\n\t"                                                                        \
    "sxtb16 r12, r5, ror #8\n\t"                                                                           \
    "sxtb16 r5, r5\n\t"                                                                                    \
    "smlad r6, r2, r5, r6\n\t"                                                                             \
    "smlad r7, r2, r12, r7\n\t"                                                                            \
    "smlad r8, r3, r5, r8\n\t"                                                                             \
    "smlad r9, r3, r12, r9\n\t"                                                                            \
    "smlad r10, r4, r5, r10\n\t"                                                                           \
    "smlad r11, r4, r12, r11\n\t"
#define EK_PW_TRI_STEP EK_PW_TRI_HALF EK_PW_TRI_HALF

/* Three pixels: r0 widened words, r1 weights, r2-r4 input words, r5 and r12 the weight word's
 * two channels, r6-r11 the sums, lr the loop's end (two instructions a pass). */
__attribute__((naked, noinline)) static void run_tri(const ek_pw_block *q)
{
    (void)q;
    __asm__ volatile(
        EK_PW_BLOCK_PROLOGUE("80")
        EK_PW_BLOCK_INIT("mov r8, r6\n\tmov r9, r7\n\tmov r10, r6\n\tmov r11, r7\n\t", "r6, r7, r8, r9, r10, r11")
        "ldrd r0, lr, [sp]\n\t" /* xs, xs_end */
        "ldr pc, [sp, #8]\n\t"
        ".balign 4\n\t"
        "4:\n\t"
        EK_PW_TRI_STEP EK_PW_TRI_STEP EK_PW_TRI_STEP EK_PW_TRI_STEP
        "cmp r0, lr\n\t"
        "bne 4b\n\t"
        EK_PW_BLOCK_AFTER("r6, r7, r8, r9, r10, r11")
        EK_PW_BLOCK_REQ("r6") EK_PW_BLOCK_REQ("r8") EK_PW_BLOCK_REQ("r10")
        EK_PW_BLOCK_CHANNEL1
        EK_PW_BLOCK_REQ("r7") EK_PW_BLOCK_REQ("r9") EK_PW_BLOCK_REQ("r11")
        EK_PW_BLOCK_OUT
        EK_PW_BLOCK_STORE("r6", "r7", "[r0]")
        EK_PW_BLOCK_STORE("r8", "r9", "[r0, r5]")
        "add r4, r0, r5, lsl #1\n\t"
        EK_PW_BLOCK_STORE("r10", "r11", "[r4]")
        EK_PW_BLOCK_OUT_NEXT
        EK_PW_BLOCK_NEXT("24"));
}
#endif

/* P pixels' rows (x, x_step bytes apart), `n` values from the row's depth value d on, widened
 * into `to` (see above); a last step of 1-3 values is padded with zeros. */
static void widen_block(const int8_t *x, int32_t x_step, int32_t n, uint32_t *to, int32_t P)
{
    const int32_t full = n & ~3;
    const int32_t tail = n & 3;
    int32_t k, p;
    for (k = 0; k < full; k += 4, to += 2 * P) {
        for (p = 0; p < P; ++p) {
            const uint32_t v = ek_load4(x + p * x_step + k);
            to[p] = (uint32_t)__sxtab16(__sxtb16((int32_t)v), (int32_t)v); /* 2 * (x[k], x[k+2]) */
            to[P + p] = (uint32_t)ek_sxtab16_ror8(ek_sxtb16_ror8(v), v);   /* 2 * (x[k+1], x[k+3]) */
        }
    }
    if (tail) {
        for (p = 0; p < P; ++p) {
            const uint32_t v = load_tail(x + p * x_step + k, tail);
            to[p] = (uint32_t)__sxtab16(__sxtb16((int32_t)v), (int32_t)v);
            to[P + p] = (uint32_t)ek_sxtab16_ror8(ek_sxtb16_ror8(v), v);
        }
    }
}

/* The buffers of the blocks (on the stack of wide_pixels) and the constants of the layer. */
typedef struct {
    uint32_t xs[2 * EK_PW_WIDE_MAX_DEPTH];  /* widen_block's words: 4 pixels' rows as halfwords */
    int32_t part[8 * EK_PW_PART_PAIRS];     /* a block of pairs' sums between depth chunks */
    ek_pw_block q;                          /* the routine's call, its constants set once */
    uint32_t lo4, hi4;                      /* requantize1's clamp (an odd count's last channel) */
} ek_pw_blocks;

/* One block of P pixels (x, x_step bytes apart; outputs at o): every channel, depth chunk by
 * chunk. An odd channel count's last pair runs with `last` off and its one channel is
 * requantized here. One instance for both block sizes (the routine's call is most of a block's
 * setup). */
static void pixel_block(const ek_mm *m, ek_pw_blocks *k, const int8_t *x, int32_t x_step, int8_t *o,
                               int32_t P)
{
    ek_pw_block *const q = &k->q;
    const int32_t depth = m->depth;
    const int32_t channels = m->channels;
    const int32_t pairs = (channels + 1) >> 1;
    const int32_t row_steps = (depth + 3) >> 2;
    const int chunked = depth > EK_PW_WIDE_MAX_DEPTH;
    const int32_t block = chunked ? EK_PW_PART_PAIRS : pairs; /* pairs per block */
    void (*const run)(const ek_pw_block *) = P == 4 ? run_quad : run_tri;
    int32_t b0, d;
    for (b0 = 0; b0 < pairs; b0 += block) {
        const int32_t b1 = pairs - b0 < block ? pairs : b0 + block;
        for (d = 0; d < depth; d += EK_PW_WIDE_MAX_DEPTH) {
            const int32_t len = depth - d < EK_PW_WIDE_MAX_DEPTH ? depth - d : EK_PW_WIDE_MAX_DEPTH;
            const int32_t steps = (len + 3) >> 2;
            const int last = d + len == depth;
            const int32_t whole = last && (channels & 1) && b1 == pairs ? b1 - 1 : b1;
            if (chunked || b0 == 0) {
                widen_block(x + d, x_step, len, k->xs, P);
            }
            q->xs_end = k->xs + 2 * P * steps;
            q->entry = (uint32_t)(steps & 3);
            q->skip = 8 * (row_steps - steps);
            q->first = d == 0;
            q->part = k->part;
            if (whole > b0) {
                q->weights = m->weights + 2 * (b0 * row_steps + (d >> 2));
                q->last = last;
                q->out = o + 2 * b0;
                q->records = m->records + 6 * b0;
                q->count = whole - b0;
                run(q);
            }
            if (whole < b1) { /* the odd channel's pair: its sums, then the one channel */
                int32_t *const sums = chunked ? k->part + 2 * P * (whole - b0) : k->part;
                const int32_t *const r = m->records + 6 * whole;
                const int32_t round_u8 = 1 + 2 * (m->out_offset + 128); /* requantize1's */
                int32_t p;
                q->weights = m->weights + 2 * (whole * row_steps + (d >> 2));
                q->last = 0;
                q->records = r;
                q->part = sums;
                q->count = 1;
                run(q);
                for (p = 0; p < P; ++p) {
                    o[p * channels + 2 * whole] = requantize1(sums[2 * p], r[2], r[4], round_u8, k->lo4, k->hi4);
                }
            }
        }
    }
}

/* The first pixels of `n` (see pixels) in blocks of four and three, n = 4a + 3b with b the
 * fewest threes (n = 5: one block of four), short requantization. Out of line: one instance for
 * both fast modes. Returns the pixels done. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int32_t wide_pixels(const ek_mm *m, const int8_t *x, int32_t x_step, int8_t *o, int32_t n)
{
    ek_pw_blocks k;
    const uint32_t sat = 255u - (uint32_t)(m->act_max - m->act_min);
    int32_t threes = (4 - (n & 3)) & 3;
    const int32_t done = 3 * threes > n ? n & ~3 : n;
    int32_t i;
    if (3 * threes > n) {
        threes = 0;
    }
    k.q.xs = k.xs;
    k.q.round = 1 + 2 * (m->out_offset - m->act_min);
    k.q.sat2 = sat * 0x0101u;
    k.q.shift2 = (((uint32_t)m->act_min - sat) & 0xFFu) * 0x0101u;
    k.q.stride = m->channels;
    k.lo4 = (uint32_t)(m->act_min + 128) * 0x01010101u;
    k.hi4 = (uint32_t)(m->act_max + 128) * 0x01010101u;
    for (i = 0; i < (done - 3 * threes) / 4; ++i, x += 4 * x_step, o += 4 * m->channels) {
        pixel_block(m, &k, x, x_step, o, 4);
    }
    for (i = 0; i < threes; ++i, x += 3 * x_step, o += 3 * m->channels) {
        pixel_block(m, &k, x, x_step, o, 3);
    }
    return done;
}

/* `n` pixels `x_step` bytes apart, their outputs contiguous. */
EK_DSP_INLINE void pixels(const ek_mm *m, const int8_t *x, int32_t x_step, int8_t *o, int32_t n, int mode)
{
    if (mode != EK_EXACT && n >= 3 && m->channels >= EK_PW_WIDE_MIN_CHANNELS) {
        const int32_t done = wide_pixels(m, x, x_step, o, n);
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
