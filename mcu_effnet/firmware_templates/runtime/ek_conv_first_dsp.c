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
 * Each staged window is widened once to halfword pairs (x[k], x[k+2]), (x[k+1], x[k+3]) (LDM,
 * eight SXTB16, STM per 16 bytes) into a batch of windows that every group of four output
 * channels then shares: 16 or 64 output channels reuse a window, so widening it once beats
 * two SXTB16 per group and step. One naked assembly routine (run_first_groups) runs every
 * group of the batch's pixels: per step of four values LDRD of two window words, two LDMs of
 * four weight words, eight SMLADs (11 instructions for 16 MACs), then the requantization by
 * SMMLAR (requant_k, 4 instructions a channel) and the clamp of four bytes at once. A group's
 * biases (input offset folded in, doubled), weights and requantization records are one run
 * (dsp_layout.first_runs), so one pointer walks them and the output keeps a register. The host
 * tests run its C twin. The same integers as the reference in another order, modulo 2^32: bit
 * for bit.
 */
#include "ek_conv_first_dsp.h"

#if defined(__ARM_FEATURE_DSP) || defined(EK_ACLE_EMULATION)

#include <string.h>

#include "ek_dsp.h"

/* The window at (y0, x0) tap by tap (borders, horizontal dilation) as bytes in the window's
 * order (dsp_layout.first_order: each row's whole words, then every row's last run % 4 values):
 * taps in the padding hold the input zero point `zero` (with the folded input offset, 0). */
#if defined(__GNUC__)
__attribute__((noinline)) /* the border's slow path stays out of the pixel loop */
#endif
static void stage_taps(const ek_conv_dsp_params *p, const int8_t *image, int32_t y0, int32_t x0, int8_t zero,
                       int8_t *staged)
{
    const int32_t in_c = p->in_c;
    const int32_t whole = (p->k_w * in_c) & ~3; /* a row's bytes in whole words */
    const int32_t rest = p->k_w * in_c - whole;
    int32_t ky, kx, c;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t y = y0 + ky * p->dil_h;
        for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t x = x0 + kx * p->dil_w;
            const int inside = y >= 0 && y < p->in_h && x >= 0 && x < p->in_w;
            const int8_t *px = image + (y * p->in_w + x) * in_c;
            for (c = 0; c < in_c; ++c) {
                const int32_t j = kx * in_c + c; /* the value's place in its row */
                int32_t at = j < whole ? ky * whole + j : p->k_h * whole + ky * rest + j - whole;
                if (j >= whole && whole && rest == 1) { /* where widen_rows puts a row's last byte */
                    const int32_t pair = ky >> 1, odd = (ky & 1) || ky == p->k_h - 1;
                    at = p->k_h * whole + 4 * (pair >> 1) + (pair & 1) + 2 * odd;
                }
                staged[at] = inside ? px[c] : zero;
            }
        }
    }
}

/* Staged window bytes (`words` words, word-aligned) to halfword pairs at `to`: each word's
 * (x0, x2) then its (x1, x3), the k x k kernel's order (ek_conv_dsp.h). Sixteen bytes a pass:
 * it may read up to 12 bytes past the staged ones and write up to 6 words past the window
 * (the callers' buffers leave that room; what lands past a window is the next one's, widened
 * after it, or nothing's). */
#if defined(EK_ACLE_EMULATION)
static void widen_window(const uint32_t *from, uint32_t *to, int32_t words)
{
    int32_t i;
    for (i = 0; i < words; ++i) {
        to[2 * i] = (uint32_t)__sxtb16((int32_t)from[i]);
        to[2 * i + 1] = (uint32_t)ek_sxtb16_ror8(from[i]);
    }
}
#else
/* LDM of four staged words, eight SXTB16, STM of eight window words: 12 instructions per 16
 * bytes with the loop (the compiler's loop takes about 5 a word). Out of line: its eight
 * clobbered registers. */
__attribute__((noinline)) static void widen_window(const uint32_t *from, uint32_t *to, int32_t words)
{
    const uint32_t *const end = from + ((words + 3) & ~3);
    __asm__ volatile("1:\n\t"
                     "ldmia %[from]!, {r4, r6, r9, r11}\n\t"
                     "sxtb16 r5, r4, ror #8\n\t"
                     "sxtb16 r4, r4\n\t"
                     "sxtb16 r8, r6, ror #8\n\t"
                     "sxtb16 r6, r6\n\t"
                     "sxtb16 r10, r9, ror #8\n\t"
                     "sxtb16 r9, r9\n\t"
                     "sxtb16 r12, r11, ror #8\n\t"
                     "sxtb16 r11, r11\n\t"
                     "stmia %[to]!, {r4, r5, r6, r8, r9, r10, r11, r12}\n\t"
                     "cmp %[from], %[end]\n\t"
                     "bne 1b\n\t"
                     : [from] "+r"(from), [to] "+r"(to)
                     : [end] "r"(end)
                     : "r4", "r5", "r6", "r8", "r9", "r10", "r11", "r12", "cc", "memory");
}
#endif

/* What the groups' routine takes; the fields' order is the assembly's (one LDM). */
typedef struct {
    const uint32_t *window;   /* the first pixel's widened window, word-aligned */
    const uint32_t *end;      /* its end, window + 2 * steps words: the next pixel's window */
    const uint32_t *last_end; /* the last pixel's window end */
    uint32_t entry;           /* steps & 3; the assembly turns it into its loop's entry address */
    int8_t *out;
    const int32_t *run;     /* the first group's run: 4 biases, 8 words a step, 12 record words */
    const int32_t *run_end; /* past the last group's run */
    uint32_t sat4, shift4;  /* the activation clamp (as ek_conv_dsp.c's conv_groups) */
    int32_t skip;           /* output bytes between one pixel's groups and the next pixel's */
} first_groups;

/* One channel's requantization from the doubled accumulator (SMMLAR with the record's constant
 * k = (1 + 2 * (out_offset - act_min)) << s, the sign correction, USAT of the rounded halving):
 * ek_conv_dsp.c's requantize_k, whose derivation holds here (dsp_layout.rounding_constants). */
static inline uint32_t requant_k(int32_t acc2, int32_t m, int32_t k, int32_t s)
{
    int32_t v = (int32_t)((uint32_t)ek_smmulr(acc2, m) + (uint32_t)k);
    v -= (int32_t)((uint32_t)acc2 >> 31);
    return (uint32_t)__usat((v >> s) >> 1, 8);
}

#if defined(EK_ACLE_EMULATION)
/* The assembly's arithmetic in C, for the host tests. */
static void run_first_groups(const first_groups *k)
{
    const size_t span = (size_t)(k->end - k->window);
    const uint32_t *window = k->window;
    int8_t *out = k->out;
    for (; window != k->last_end; window += span, out += k->skip) {
        const int32_t *r = k->run;
        while (r != k->run_end) {
            int32_t a[4] = {r[0], r[1], r[2], r[3]}, j;
            const uint32_t *v;
            uint32_t word = 0;
            for (r += 4, v = window; v != window + span; v += 2, r += 8) {
                for (j = 0; j < 4; ++j) {
                    a[j] = __smlad((int32_t)v[0], r[j], a[j]);
                    a[j] = __smlad((int32_t)v[1], r[4 + j], a[j]);
                }
            }
            for (j = 0; j < 4; ++j, r += 3) {
                word |= requant_k(a[j], r[0], r[1], r[2]) << (8 * j);
            }
            word = __uadd8(__uqadd8(word, k->sat4), k->shift4);
            memcpy(out, &word, 4);
            out += 4;
        }
    }
}
#else
/* One step of four window values: LDRD of the window's two words, LDM of four weight words per
 * word, eight SMLADs. 44 bytes (every instruction 32-bit): the loop's entry is computed from it. */
#define EK_FIRST_GROUP_STEP                   \
    "ldrd r2, r3, [r0], #8\n\t"               \
    "ldmia.w r1!, {r4, r5, r6, r7}\n\t"       \
    "smlad r9, r2, r4, r9\n\t"                \
    "smlad r10, r2, r5, r10\n\t"              \
    "smlad r11, r2, r6, r11\n\t"              \
    "smlad r12, r2, r7, r12\n\t"              \
    "ldmia.w r1!, {r4, r5, r6, r7}\n\t"       \
    "smlad r9, r3, r4, r9\n\t"                \
    "smlad r10, r3, r5, r10\n\t"              \
    "smlad r11, r3, r6, r11\n\t"              \
    "smlad r12, r3, r7, r12\n\t"

/* Two channels' requantization (requant_k) from accumulators A0, A1, their records' m, k, s
 * read from the run into r2-r4 and r5-r7. */
#define EK_FIRST_REQUANT2(A0, A1)             \
    "ldmia r1!, {r2, r3, r4, r5, r6, r7}\n\t" \
    "smmlar r2, " A0 ", r2, r3\n\t"           \
    "sub r2, r2, " A0 ", lsr #31\n\t"         \
    "asr r2, r2, r4\n\t"                      \
    "usat " A0 ", #8, r2, asr #1\n\t"         \
    "smmlar r5, " A1 ", r5, r6\n\t"           \
    "sub r5, r5, " A1 ", lsr #31\n\t"         \
    "asr r5, r5, r7\n\t"                      \
    "usat " A1 ", #8, r5, asr #1\n\t"

/* Every group of four output channels of several pixels, requantization and clamp included.
 * Registers: r0 window (walking), r1 the group's run (biases, weights, records), r2-r3 window
 * words, r4-r7 weight words, then records, r8 the output, r9-r12 accumulators, lr the window's
 * end. The frame: [sp] the pixel's window, [sp, #4] last_end, [sp, #8] the loop's entry,
 * [sp, #12] run, [sp, #16] run_end, [sp, #20] sat4, [sp, #24] shift4, [sp, #28] skip.
 * A group costs 3 instructions before its steps, 11 a step and 2 a pass of four (entered
 * part-way: steps & 3 steps before the first compare), 28 to requantize, clamp, store and loop;
 * a pixel after the first 9 more. */
__attribute__((naked, noinline)) static void run_first_groups(const first_groups *k)
{
    (void)k;
    __asm__ volatile(
        "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        /* window, end, last_end, entry, out, run, run_end, sat4, shift4, skip */
        "ldmia r0, {r2, r3, r4, r5, r6, r7, r8, r9, r10, r11}\n\t"
        "rsb r5, r5, #4\n\t" /* entry: (4 - steps & 3) & 3 steps into the loop, Thumb bit set */
        "and r5, r5, #3\n\t"
        "mov r12, #44\n\t"
        "adr r0, 4f\n\t"
        "mla r5, r5, r12, r0\n\t"
        "orr r5, r5, #1\n\t"
        "mov lr, r3\n\t"
        "mov r1, r7\n\t"
        "push {r2, r4, r5, r7, r8, r9, r10, r11}\n\t"
        "mov r8, r6\n\t"
        "1:\n\t"
        "ldmia r1!, {r9, r10, r11, r12}\n\t" /* biases (input offset folded in, doubled) */
        "ldr r0, [sp]\n\t"
        "ldr pc, [sp, #8]\n\t"
        ".balign 4\n\t"
        "4:\n\t"
        EK_FIRST_GROUP_STEP EK_FIRST_GROUP_STEP EK_FIRST_GROUP_STEP EK_FIRST_GROUP_STEP
        "cmp r0, lr\n\t"
        "bne 4b\n\t"
        EK_FIRST_REQUANT2("r9", "r10") EK_FIRST_REQUANT2("r11", "r12")
        "orr r9, r9, r10, lsl #8\n\t"
        "orr r9, r9, r11, lsl #16\n\t"
        "orr r9, r9, r12, lsl #24\n\t"
        "ldrd r2, r3, [sp, #20]\n\t"
        "uqadd8 r9, r9, r2\n\t" /* the activation clamp and back to int8 (conv_groups) */
        "uadd8 r9, r9, r3\n\t"
        "str r9, [r8], #4\n\t"
        "ldr r3, [sp, #16]\n\t"
        "cmp r1, r3\n\t"
        "bne 1b\n\t"
        "ldrd r2, r3, [sp]\n\t" /* the next pixel: its window starts at this one's end */
        "cmp lr, r3\n\t"
        "beq 9f\n\t"
        "ldr r12, [sp, #28]\n\t"
        "add r8, r8, r12\n\t"
        "sub r2, lr, r2\n\t"
        "str lr, [sp]\n\t"
        "add lr, lr, r2\n\t"
        "ldr r1, [sp, #12]\n\t"
        "b 1b\n\t"
        "9:\n\t"
        "add sp, sp, #32\n\t"
        "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}
#endif

/* Room past the staged bytes and past the windows for widen_window's whole passes. */
#define EK_FIRST_STAGE_SLACK 4   /* words */
#define EK_FIRST_WINDOW_SLACK 8  /* words */
#define EK_FIRST_WINDOWS 192     /* words of widened windows on the stack (768 B) */
#define EK_FIRST_BAND 1024       /* bytes of an output row's input rows, padded (stage_band) */
#define EK_FIRST_MAX_BATCH 32    /* pixels a call of the groups' routine */

/* A batch of pixels' widened windows and where their outputs go. */
typedef struct {
    first_groups full, tail;  /* the full groups; the last 1 to 3 channels' group */
    uint32_t *windows;
    int32_t span, batch, n;   /* words a window; windows the buffer holds; windows held */
    int32_t out_c, tail_c;
    int8_t *out;              /* the held batch's first output pixel */
} first_batch;

/* The held windows' outputs: the full groups in one call, then the tail group into a word per
 * pixel, copied after. */
static void flush(first_batch *b)
{
    uint32_t tail_words[EK_FIRST_MAX_BATCH];
    const uint32_t *last_end = b->windows + b->n * b->span;
    int32_t i;
    if (b->full.run != b->full.run_end) {
        b->full.out = b->out;
        b->full.last_end = last_end;
        run_first_groups(&b->full);
    }
    if (b->tail_c) {
        const int32_t at = b->out_c - b->tail_c;
        b->tail.out = (int8_t *)(void *)tail_words;
        b->tail.last_end = last_end;
        run_first_groups(&b->tail);
        for (i = 0; i < b->n; ++i) {
            memcpy(b->out + i * b->out_c + at, &tail_words[i], (size_t)b->tail_c);
        }
    }
    b->out += b->n * b->out_c;
    b->n = 0;
}

/* The staged window widened into the batch; the batch's outputs once it is full. */
static inline void take(first_batch *b, const uint32_t *staged, int32_t steps)
{
    widen_window(staged, b->windows + b->n * b->span, steps);
    if (++b->n == b->batch) {
        flush(b);
    }
}

/* The window at px (k_h rows of whole words `q` and `r` bytes more, row_step apart) widened
 * straight into `to` in the window's order: each row's words (LDR, two SXTB16: no staging),
 * then the rows' last r bytes, staged back to back in `left` and widened after. Inlined with
 * constant q and r for the common first layers (take_rows), so gcc unrolls the words. */
EK_DSP_INLINE void widen_rows(const int8_t *px, int32_t row_step, int32_t k_h, int32_t q, int32_t r, uint32_t *to,
                              uint32_t *left)
{
    int8_t *l = (int8_t *)(void *)left;
    uint32_t *last = to + 2 * q * k_h; /* r = 1: the rows' last bytes, a halfword pair per two rows */
    uint32_t held = 0;
    int32_t ky, i;
    for (ky = 0; ky < k_h; ++ky, px += row_step) {
        for (i = 0; i < q; ++i, to += 2) {
            const uint32_t v = ek_load4(px + 4 * i);
            to[0] = (uint32_t)__sxtb16((int32_t)v); /* (x0, x2) */
            to[1] = (uint32_t)ek_sxtb16_ror8(v);    /* (x1, x3) */
        }
        if (r == 1) {
            /* the word ending at the row's end: its last byte in byte 3; two rows' such words
             * packed by their top halves (PKHTB) give both bytes to one SXTB16 */
            const uint32_t u = ek_load4(px + 4 * q - 3);
            if (ky & 1) {
                *last++ = (uint32_t)ek_sxtb16_ror8((held >> 16) | (u & 0xFFFF0000u));
            } else {
                held = u;
            }
        } else {
            for (i = 0; i < r; ++i) {
                *l++ = px[4 * q + i];
            }
        }
    }
    if (r == 1) {
        if (k_h & 1) { /* the last row alone: (its byte 1, its last byte), the first meets a zero weight */
            *last++ = (uint32_t)ek_sxtb16_ror8(held);
        }
        if ((k_h + 1) & 2) { /* an odd count of pairs: the step's other word, zero weights */
            *last = 0;
        }
        return;
    }
    for (i = 0; r && i < (k_h * r + 3) >> 2; ++i, to += 2) {
        to[0] = (uint32_t)__sxtb16((int32_t)left[i]);
        to[1] = (uint32_t)ek_sxtb16_ror8(left[i]);
    }
}

/* widen_rows of 3 rows of 9 bytes (3x3 over RGB), written out: gcc keeps widen_rows' row loop
 * (about 20 instructions a row); here 9 LDRs, 14 SXTB16, the PKHTB and the stores, about 34 a
 * window. */
EK_DSP_INLINE void widen_3x9(const int8_t *px, int32_t row_step, uint32_t *to)
{
    const int8_t *const p1 = px + row_step;
    const int8_t *const p2 = p1 + row_step;
    uint32_t v, u0, u1;
    v = ek_load4(px);
    to[0] = (uint32_t)__sxtb16((int32_t)v);
    to[1] = (uint32_t)ek_sxtb16_ror8(v);
    v = ek_load4(px + 4);
    to[2] = (uint32_t)__sxtb16((int32_t)v);
    to[3] = (uint32_t)ek_sxtb16_ror8(v);
    u0 = ek_load4(px + 5);
    v = ek_load4(p1);
    to[4] = (uint32_t)__sxtb16((int32_t)v);
    to[5] = (uint32_t)ek_sxtb16_ror8(v);
    v = ek_load4(p1 + 4);
    to[6] = (uint32_t)__sxtb16((int32_t)v);
    to[7] = (uint32_t)ek_sxtb16_ror8(v);
    u1 = ek_load4(p1 + 5);
    to[12] = (uint32_t)ek_sxtb16_ror8((u0 >> 16) | (u1 & 0xFFFF0000u)); /* rows 0 and 1's last bytes */
    v = ek_load4(p2);
    to[8] = (uint32_t)__sxtb16((int32_t)v);
    to[9] = (uint32_t)ek_sxtb16_ror8(v);
    v = ek_load4(p2 + 4);
    to[10] = (uint32_t)__sxtb16((int32_t)v);
    to[11] = (uint32_t)ek_sxtb16_ror8(v);
    to[13] = (uint32_t)ek_sxtb16_ror8(ek_load4(p2 + 5)); /* (a zero weight's, row 2's last byte) */
}

/* The `count` windows from `px` on (each `x_step` bytes right of the one before, every tap
 * inside what px points into) widened into the batch (q, r as widen_rows). */
EK_DSP_INLINE void take_rows_qr(first_batch *b, const int8_t *px, int32_t count, int32_t x_step, int32_t row_step,
                                int32_t k_h, int32_t q, int32_t r, uint32_t *left)
{
    for (; count > 0; --count, px += x_step) {
        widen_rows(px, row_step, k_h, q, r, b->windows + b->n * b->span, left);
        if (++b->n == b->batch) {
            flush(b);
        }
    }
}

/* take_rows_qr of 3 rows of 9 bytes (widen_3x9), a loop of its own: about 45 instructions a
 * window with the batch's bookkeeping (merged into take_rows, gcc spilled the loop's state). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void take_rows_3x9(first_batch *b, const int8_t *px, int32_t count, int32_t x_step, int32_t row_step)
{
    for (; count > 0; --count, px += x_step) {
        widen_3x9(px, row_step, b->windows + b->n * b->span);
        if (++b->n == b->batch) {
            flush(b);
        }
    }
}

/* take_rows_qr for a row of `run` >= 4 bytes, specialized for 3 x 3 over RGB (two words and a
 * byte a row) and a window row of one word (KWS's 10 x 4 over one channel). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void take_rows(first_batch *b, const int8_t *px, int32_t count, int32_t x_step, int32_t row_step, int32_t run,
                      int32_t k_h, uint32_t *left)
{
    if (run == 9 && k_h == 3) {
        take_rows_3x9(b, px, count, x_step, row_step);
    } else if (run == 9) {
        take_rows_qr(b, px, count, x_step, row_step, k_h, 2, 1, left);
    } else if (run == 4) {
        take_rows_qr(b, px, count, x_step, row_step, k_h, 1, 0, left);
    } else {
        take_rows_qr(b, px, count, x_step, row_step, k_h, run >> 2, run & 3, left);
    }
}

/* The k_h input rows the windows of the output row at y0 read (dil_w 1), from column -pad_left
 * on, `width` bytes each, back to back in `band`: the input zero point wherever they leave the
 * input (rows above or below, columns left or right). An output row with border pixels then
 * runs the rows path over it instead of staging each border window tap by tap (DS-CNN's
 * 10 x 4 window over 10 columns: more than half its pixels). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void stage_band(const ek_conv_dsp_params *p, const int8_t *image, int32_t y0, int8_t zero, int8_t *band,
                       int32_t width)
{
    const int32_t in_row = p->in_w * p->in_c;
    const int32_t left = p->pad_left * p->in_c; /* band bytes before input column 0 */
    const int32_t inside = width - left < in_row ? width - left : in_row;
    int32_t ky;
    memset(band, zero, (size_t)(p->k_h * width));
    for (ky = 0; ky < p->k_h; ++ky, band += width) {
        const int32_t y = y0 + ky * p->dil_h;
        if (y >= 0 && y < p->in_h && inside > 0) {
            memcpy(band + left, image + y * in_row, (size_t)inside);
        }
    }
}

void ek_conv2d_first_dsp(const ek_conv_dsp_params *p, const int8_t *input, int8_t *output)
{
    uint32_t staged_words[EK_CONV_FIRST_MAX_WINDOW / 4 + EK_FIRST_STAGE_SLACK]; /* the window's bytes */
    uint32_t windows[EK_FIRST_WINDOWS + EK_FIRST_WINDOW_SLACK];
    int8_t *const staged = (int8_t *)(void *)staged_words;
    const int32_t in_c = p->in_c;
    const int32_t values = p->k_h * p->k_w * in_c;
    const int32_t steps = (values + 3) >> 2; /* the window padded once to a multiple of 4 */
    const int32_t in_row = p->in_w * in_c;
    const int32_t in_image = p->in_h * in_row;
    const int32_t run = p->k_w * in_c;            /* a window row's bytes */
    const int32_t x_step = p->stride_w * in_c;    /* input bytes from one output column to the next */
    const int32_t row_step = p->dil_h * in_row;   /* input bytes from one window row to the next */
    const int8_t zero = (int8_t)(-p->in_offset); /* the input zero point */
    /* Output columns [ox_lo, ox_hi) have every tap's column inside the input, and take the rows
     * path when dil_w is 1 and a row has at least a word (take_rows); the others go tap by tap. */
    const int32_t reach_w = (p->k_w - 1) * p->dil_w;
    const int32_t ox_lo = (p->pad_left + p->stride_w - 1) / p->stride_w;
    const int32_t last_x = p->in_w - 1 - reach_w + p->pad_left; /* ox * stride_w <= last_x */
    const int rows_path = p->dil_w == 1 && run >= 4 && last_x >= 0;
    const int32_t fit = rows_path ? last_x / p->stride_w + 1 : 0;
    const int32_t ox_hi = fit < p->out_w ? fit : p->out_w;
    const uint32_t sat = 255u - (uint32_t)(p->act_max - p->act_min); /* see conv_groups */
    const int32_t group_run = 16 + 8 * steps; /* words of a group's run */
    /* Output rows with border pixels stage a padded band of their input rows when it fits. */
    const int32_t width = ((p->out_w - 1) * p->stride_w + p->k_w) * in_c;
    const int banded = p->dil_w == 1 && run >= 4 && p->k_h * width <= EK_FIRST_BAND;
    int8_t band[EK_FIRST_BAND];
    first_batch bt;
    int32_t b, oy, ox;
    bt.span = 2 * steps;
    bt.batch = EK_FIRST_WINDOWS / bt.span < EK_FIRST_MAX_BATCH ? EK_FIRST_WINDOWS / bt.span : EK_FIRST_MAX_BATCH;
    bt.n = 0;
    bt.windows = windows;
    bt.out_c = p->out_c;
    bt.tail_c = p->out_c & 3;
    bt.out = output;
    bt.full.window = windows;
    bt.full.end = windows + bt.span;
    bt.full.entry = (uint32_t)(steps & 3);
    bt.full.run = p->weights;
    bt.full.run_end = p->weights + (p->out_c >> 2) * group_run;
    bt.full.sat4 = sat * 0x01010101u;
    bt.full.shift4 = (((uint32_t)p->act_min - sat) & 0xFFu) * 0x01010101u;
    bt.full.skip = bt.tail_c;
    bt.tail = bt.full;
    bt.tail.run = bt.full.run_end;
    bt.tail.run_end = bt.full.run_end + group_run;
    bt.tail.skip = 0;
    /* The bytes past K meet zero weights and are never written: zeroed once, they add 0. */
    memset(staged_words, 0, sizeof(staged_words));
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * in_image;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            const int rows_inside = y0 >= 0 && y0 + (p->k_h - 1) * p->dil_h < p->in_h;
            const int32_t lo = rows_inside && ox_lo < ox_hi ? ox_lo : p->out_w; /* [lo, hi): rows path */
            const int32_t hi = rows_inside && ox_lo < ox_hi ? ox_hi : p->out_w;
            if (banded && (lo != 0 || hi != p->out_w)) { /* border pixels: the rows path over a padded band */
                stage_band(p, image, y0, zero, band, width);
                take_rows(&bt, band, p->out_w, x_step, width, run, p->k_h, staged_words);
                continue;
            }
            for (ox = 0; ox < lo; ++ox) {
                stage_taps(p, image, y0, ox * p->stride_w - p->pad_left, zero, staged);
                take(&bt, staged_words, steps);
            }
            if (ox < hi) {
                take_rows(&bt, image + y0 * in_row + (ox * p->stride_w - p->pad_left) * in_c, hi - ox, x_step,
                          row_step, run, p->k_h, staged_words);
                ox = hi;
            }
            for (; ox < p->out_w; ++ox) {
                stage_taps(p, image, y0, ox * p->stride_w - p->pad_left, zero, staged);
                take(&bt, staged_words, steps);
            }
        }
    }
    if (bt.n) {
        flush(&bt);
    }
}

#else
typedef int ek_conv_first_dsp_unused; /* no DSP extension: the plain kernels run (ek_conv.c) */
#endif
