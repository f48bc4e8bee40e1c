/* CONV_2D over a shallow input (in_c 1 to 3: a network's first layer) with the DSP extension.
 *
 * The k x k kernel (ek_conv_dsp.c) pads every window ROW to a multiple of four values, so a
 * 3x3 window over RGB (rows of 9) does 36 multiply-accumulates for 27, gathers a first layer's
 * short rows value by value at the borders and widens the window into a buffer of halfwords.
 * Here the window is one run of K = k_h * k_w * in_c values padded once to a multiple of four
 * (27 -> 28), in the order dsp_layout.first_order gives: each row's whole words, then the rows'
 * last k_w * in_c % 4 values. Each pixel's window is widened once from its rows (LDR and two
 * SXTB16 a word; the rows' last bytes staged, or for 3x3 over RGB packed two rows at a time
 * with PKHTB), into a batch of halfword-pair windows (x[k], x[k+2]),
 * (x[k+1], x[k+3]) that every group of four output channels then shares: 16 or 64 output
 * channels reuse a window, so widening it once beats two SXTB16 per group and step.
 * Taps in the padding get the input zero point: with the input offset folded into the bias
 * (bias + in_offset * sum(w), as the plain kernels take it) a tap of value -in_offset adds
 * w * (x + in_offset) = 0, exactly as TFLite Micro's reference skips it. Every window is
 * widened from a band: the k_h input rows a run of output columns reads, copied with the zero
 * point around them (stage_band), so borders cost what the interior does (a few instructions
 * a pixel for the copy) and one path serves both. The generator keeps the k x k kernel for a
 * horizontal dilation (dsp_layout.takes_first_kernel).
 *
 * One naked assembly routine (run_first_groups) runs every group of the batch's pixels: per
 * step of four values LDRD of two window words, two LDMs of four weight words, eight SMLADs
 * (11 instructions for 16 MACs), then the requantization by SMMLAR (requantize_k in
 * ek_requant_dsp.h, 4 instructions a channel) and the clamp of four bytes at once. A group's biases (input offset folded in,
 * doubled), weights and requantization records are one run (dsp_layout.first_runs), so one
 * pointer walks them and the output keeps a register. The host tests run its C twin. The same
 * integers as the reference in another order, modulo 2^32: bit for bit.
 */
#include "ek_conv_first_dsp.h"

#if defined(__ARM_FEATURE_DSP) || defined(EK_ACLE_EMULATION)

#include <string.h>

#include "ek_dsp.h"
#include "ek_requant_dsp.h"

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
                word |= requantize_k(a[j], r[0], r[1], r[2]) << (8 * j);
            }
            word = clamp_k4(word, k->sat4, k->shift4);
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

/* Two channels' requantization from the group's run at r1 (ek_requant_dsp.h). */
#define EK_FIRST_REQUANT2(A0, A1) EK_ASM_REQUANT2("r1", A0, A1)

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

/* The widened windows: a batch of them on the stack. */
#define EK_FIRST_WINDOWS 192     /* words of widened windows on the stack (768 B) */
#define EK_FIRST_BAND 1024       /* bytes of an output row's input rows, padded (stage_band) */
#define EK_FIRST_MAX_BATCH 32    /* pixels a call of the groups' routine */

/* A batch of pixels' widened windows and where their outputs go. */
typedef struct {
    first_groups full;        /* the full groups (flush derives the last 1 to 3 channels' group) */
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
    if (EK_CONV_DSP_TAIL && b->tail_c) { /* compiled out when no call has a tail (ek_dsp_paths.h) */
        const int32_t at = b->out_c - b->tail_c;
        first_groups t = b->full; /* the last group's run, one word a pixel */
        t.run = b->full.run_end;
        t.run_end = t.run + 16 + 4 * (b->full.end - b->full.window); /* 4 biases, 8 words a step, 12 */
        t.out = (int8_t *)(void *)tail_words;
        t.last_end = last_end;
        t.skip = 0;
        run_first_groups(&t);
        for (i = 0; i < b->n; ++i) {
            memcpy(b->out + i * b->out_c + at, &tail_words[i], (size_t)b->tail_c);
        }
    }
    b->out += b->n * b->out_c;
    b->n = 0;
}

/* The window at px (k_h rows of `q` whole words and `r` bytes more, row_step apart) widened
 * straight into `to` in the window's order (dsp_layout.first_order): each row's words (LDR,
 * two SXTB16: no staging), then the rows' last r bytes, staged back to back in `left` and
 * widened after (their last word's bytes past k_h * r meet zero weights). */
EK_DSP_INLINE void widen_rows(const int8_t *px, int32_t row_step, int32_t k_h, int32_t q, int32_t r, uint32_t *to,
                              uint32_t *left)
{
    int8_t *l = (int8_t *)(void *)left;
    int32_t ky, i;
    for (ky = 0; ky < k_h; ++ky, px += row_step) {
        for (i = 0; i < q; ++i, to += 2) {
            const uint32_t v = ek_load4(px + 4 * i);
            to[0] = (uint32_t)__sxtb16((int32_t)v); /* (x0, x2) */
            to[1] = (uint32_t)ek_sxtb16_ror8(v);    /* (x1, x3) */
        }
        /* r <= 3 stores, no loop: gcc turns a loop into a call of memcpy, ten times the cost */
        if (r > 0) {
            l[0] = px[4 * q];
        }
        if (r > 1) {
            l[1] = px[4 * q + 1];
        }
        if (r > 2) {
            l[2] = px[4 * q + 2];
        }
        l += r;
    }
    for (i = 0; i < (k_h * r + 3) >> 2; ++i, to += 2) {
        to[0] = (uint32_t)__sxtb16((int32_t)left[i]);
        to[1] = (uint32_t)ek_sxtb16_ror8(left[i]);
    }
}

/* widen_rows of 3 rows of 9 bytes (3x3 over RGB), written out: about 34 instructions a window
 * (9 LDRs, 14 SXTB16, the stores) against about 75 in widen_rows' loops. The rows' last bytes
 * come two rows at once: the words ending at rows 0 and 1's ends packed by their top halves
 * (PKHTB) into one SXTB16, row 2's word alone into the high half of the other (dsp_layout
 * first_order places them). */
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

/* The k_h input rows that output columns [ox, ox + n) of the row at y0 read, from input column
 * x0 = ox * stride_w - pad_left on, `width` bytes each, back to back in `band`: the input zero
 * point wherever they leave the input (rows above or below, columns left or right), so every
 * window is widened alike from a band, borders included (DS-CNN's 10 x 4 over 10 columns:
 * more than half its pixels at a border; the copy costs a few instructions a pixel). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void stage_band(const ek_conv_dsp_params *p, const int8_t *image, int32_t y0, int32_t x0, int32_t width,
                       int8_t *band)
{
    const int32_t in_c = p->in_c;
    const int32_t lo = x0 < 0 ? 0 : x0; /* the input columns inside: [lo, hi) */
    const int32_t end = x0 + width / in_c;
    const int32_t hi = end < p->in_w ? end : p->in_w;
    int32_t ky;
    memset(band, -p->in_offset, (size_t)(p->k_h * width));
    for (ky = 0; ky < p->k_h && hi > lo; ++ky, band += width) {
        const int32_t y = y0 + ky * p->dil_h;
        if (y >= 0 && y < p->in_h) {
            memcpy(band + (lo - x0) * in_c, image + (y * p->in_w + lo) * in_c, (size_t)((hi - lo) * in_c));
        }
    }
}

/* The `m` windows of a band from `px` on (`x_step` bytes apart, rows `width` bytes apart)
 * widened into the batch. Out of line: inlined, the call's state crowded the widening into
 * the stack (about 25 instructions a window more). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void take_band(first_batch *b, const int8_t *px, int32_t m, int32_t x_step, int32_t width, int32_t run,
                      int32_t k_h, uint32_t *left)
{
    for (; m > 0; --m, px += x_step) {
        uint32_t *const to = b->windows + b->n * b->span;
        if (run == 9 && k_h == 3) { /* 3x3 over RGB */
            widen_3x9(px, width, to);
        } else if (run == 9) { /* 3 x k over RGB: constant word and byte counts, about half the cost */
            widen_rows(px, width, k_h, 2, 1, to, left);
        } else if (run == 4) { /* KWS's 10 x 4 over one channel: a word a row */
            widen_rows(px, width, k_h, 1, 0, to, left);
        } else {
            widen_rows(px, width, k_h, run >> 2, run & 3, to, left);
        }
        if (++b->n == b->batch) {
            flush(b);
        }
    }
}

void ek_conv2d_first_dsp(const ek_conv_dsp_params *p, const int8_t *input, int8_t *output)
{
    uint32_t left[EK_CONV_FIRST_MAX_WINDOW / 4]; /* the rows' last bytes (widen_rows) */
    uint32_t windows[EK_FIRST_WINDOWS];
    int8_t band[EK_FIRST_BAND];
    const int32_t in_c = p->in_c;
    const int32_t run = p->k_w * in_c; /* a window row's bytes */
    const int32_t steps = (p->k_h * run + 3) >> 2; /* the window padded once to a multiple of 4 */
    const int32_t x_step = p->stride_w * in_c;
    /* output columns a band holds: k_h rows of ((cols - 1) * stride_w + k_w) * in_c bytes within
     * EK_FIRST_BAND (at least one: k_h * k_w * in_c <= EK_CONV_FIRST_MAX_WINDOW) */
    const int32_t cols = (EK_FIRST_BAND / (p->k_h * in_c) - p->k_w) / p->stride_w + 1;
    const uint32_t sat = 255u - (uint32_t)(p->act_max - p->act_min); /* see conv_groups */
    const int32_t group_run = 16 + 8 * steps;                         /* words of a group's run */
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
    memset(left, 0, sizeof(left)); /* what their last word holds past them meets zero weights */
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * p->in_w * in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ox += cols) {
                const int32_t m = p->out_w - ox < cols ? p->out_w - ox : cols;
                const int32_t width = ((m - 1) * p->stride_w + p->k_w) * in_c;
                stage_band(p, image, oy * p->stride_h - p->pad_top, ox * p->stride_w - p->pad_left, width, band);
                take_band(&bt, band, m, x_step, width, run, p->k_h, left);
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
