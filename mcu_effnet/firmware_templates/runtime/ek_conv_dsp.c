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
 * A 1x1 window (a 1x1 CONV_2D of any stride or a FULLY_CONNECTED row, depth a multiple of 4) is
 * the pixel's bytes widened, without the gather's bookkeeping.
 *
 * Each group of four output channels then runs over the buffer in steps of four window values:
 * one LDRD of two window words, two LDMs of four weight words (widened and doubled at
 * generation time) and eight SMLADs: 11 instructions for 16 MACs, eight steps per loop pass.
 * The accumulators hold 2 * acc, the operand of the requantization's SMMLAR (requantize_k).
 * On the target one assembly routine (run_groups) runs every group of several pixels: loop,
 * requantization and the activation clamp of four bytes at once, 33 instructions per
 * group besides the steps (the compiler's code around inline assembly spilled the group's
 * state: about 60). The host tests run its C twin. The same integers as the reference in
 * another order, modulo 2^32: bit for bit.
 *
 * Where a 1x1 layer's instructions go (qemu-m4, per group of four channels, from the assembly),
 * in run_groups: 3 before the steps (biases, window pointer, entry jump), 11 per step, 2 per
 * pass of eight steps, then 28: two LDMs of the records, 4 per channel to requantize (SMMLAR,
 * SUB, ASR, USAT), 3 ORRs to pack, one LDM from sp of the output pointer, the groups' end and
 * the clamp's two constants, 2 to clamp (UQADD8, UADD8), 2 to store and move the output
 * pointer, 2 for the group loop; 8 a pixel to move to the next window, and its widening (13
 * instructions per 16 bytes). Depth 32 (8 steps): 121 for 128 MACs, depth 16 (4 steps): 77 for
 * 64 MACs, 1.203 a MAC before the pixel's share. The floor for depth 16 in this form: per
 * output, 16 MACs at 11/16 (11), the requantization's 4, a quarter of the bias LDM, half a
 * record LDM, and a quarter each of the 3 to pack, the 2 to clamp, the store and the constants'
 * LDM: 17.5 for 16 MACs, 1.094 a MAC, 70 a group. Windows of exactly 16 or 32 values take
 * run_groups16 / run_groups32 (compiled in where some call has one, EK_CONV_DSP_DEPTH16 /
 * EK_CONV_DSP_DEPTH32): the steps written out, the window at fixed offsets, the output pointer
 * in lr, no entry jump, loop compare, window reload or output write-back: 72 a group at depth
 * 16 (1.125 a MAC; the 2 above the floor are the group loop's compare and branch) and 116 at
 * depth 32 (0.906), 6 a pixel, about 320 and 480 bytes of code. Measured with the pixels' share
 * (benchmarks/public_layers.py, qemu-m4): ResNet-8's 16 -> 32 stride 2 1.274 -> 1.192, VWW's
 * 16 -> 32 1.251 -> 1.168, ResNet-8's 32 -> 64 stride 2 0.975 -> 0.935, VWW's 32 -> 32 in place
 * 0.983 -> 0.942 and 32 -> 64 at 12x12 0.965 -> 0.925. What is left at depth 16 is the
 * widening (a stride-2 pixel's 18) and the pixel's move: 34 a pixel, 0.067 a MAC at 32 output
 * channels. The loop itself cannot go below 11/16 a MAC with 14 registers: two pixels per
 * group (8 accumulators) leave two for weights, 11 again, and eight weight words per LDM leave
 * no register for a pointer.
 *
 * The window buffer lives on the stack: the generator uses this kernel only when the window
 * (k_h rows of k_w * in_c values, each rounded up to a multiple of 4) fits
 * EK_CONV_DSP_MAX_WINDOW values; as many pixels' windows as it holds are gathered before one
 * call of run_groups when the channels fill whole groups of four.
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

/* `pixels` runs of `n` input bytes (a multiple of 4), `x_step` bytes apart from `px`, to window
 * words at `to` back to back: the 1x1 path's pixels (a strided 1x1 reads every other one) and
 * FULLY_CONNECTED rows, one call for all of them. */
#if defined(EK_ACLE_EMULATION)
static void widen_pixels(const int8_t *px, uint32_t *to, int32_t pixels, int32_t n, int32_t x_step, int32_t off2)
{
    for (; pixels > 0; --pixels, px += x_step, to += n >> 1) {
        widen4(px, to, n, off2);
    }
}
#else
/* Registers: r0 px, r1 to, r2 pixels left, r3 n, r4 x_step - n, r5 off2, r6 the pixel's end,
 * r7-r8 (r11-r12) input words, r9-r12 (r7-r10, lr) window words. A word-aligned input whose runs
 * are multiples of 16 bytes (every arena buffer and 16-deep pixel) goes 16 bytes in 13
 * instructions (one LDM, eight SXTAB16, two STMs of four words in register order, the window's
 * order); otherwise eight bytes in 9 (two LDRs, which need no alignment, four SXTAB16, one STM), a
 * pixel's 4-byte remainder first. 5 or 6 instructions a pixel besides: a 16-deep stride-2 pixel
 * in 18, where a call a pixel (8 bytes in 10) took about 37. */
__attribute__((naked, noinline)) static void widen_pixels(const int8_t *px, uint32_t *to, int32_t pixels,
                                                          int32_t n, int32_t x_step, int32_t off2)
{
    (void)px, (void)to, (void)pixels, (void)n, (void)x_step, (void)off2;
    __asm__ volatile("push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
                     "ldrd r4, r5, [sp, #36]\n\t" /* x_step, off2 */
                     "sub r4, r4, r3\n\t"
                     "orr r6, r3, r0, lsl #4\n\t" /* px word-aligned and n a multiple of 16? */
                     "tst r6, #63\n\t"
                     "bne 1f\n\t"
                     "5:\n\t"
                     "add r6, r0, r3\n\t"
                     "6:\n\t" /* 16 bytes: one LDM, eight SXTAB16, two STMs (registers ascending) */
                     "ldmia r0!, {r7, r8, r11, r12}\n\t"
                     "sxtab16 r9, r5, r7, ror #8\n\t"
                     "sxtab16 r7, r5, r7\n\t"
                     "sxtab16 r10, r5, r8\n\t"
                     "sxtab16 lr, r5, r8, ror #8\n\t"
                     "stmia r1!, {r7, r9, r10, lr}\n\t"
                     "sxtab16 r8, r5, r11, ror #8\n\t"
                     "sxtab16 r7, r5, r11\n\t"
                     "sxtab16 r9, r5, r12\n\t"
                     "sxtab16 r10, r5, r12, ror #8\n\t"
                     "stmia r1!, {r7, r8, r9, r10}\n\t"
                     "cmp r0, r6\n\t"
                     "bne 6b\n\t"
                     "add r0, r0, r4\n\t"
                     "subs r2, r2, #1\n\t"
                     "bne 5b\n\t"
                     "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
                     "1:\n\t"
                     "add r6, r0, r3\n\t"
                     "tst r3, #4\n\t"
                     "beq 2f\n\t"
                     "ldr r7, [r0], #4\n\t"
                     "sxtab16 r9, r5, r7\n\t"
                     "sxtab16 r10, r5, r7, ror #8\n\t"
                     "strd r9, r10, [r1], #8\n\t"
                     "cmp r0, r6\n\t"
                     "beq 3f\n\t"
                     "2:\n\t"
                     "ldr r7, [r0], #4\n\t"
                     "ldr r8, [r0], #4\n\t"
                     "sxtab16 r9, r5, r7\n\t"
                     "sxtab16 r10, r5, r7, ror #8\n\t"
                     "sxtab16 r11, r5, r8\n\t"
                     "sxtab16 r12, r5, r8, ror #8\n\t"
                     "stmia r1!, {r9, r10, r11, r12}\n\t"
                     "cmp r0, r6\n\t"
                     "bne 2b\n\t"
                     "3:\n\t"
                     "add r0, r0, r4\n\t"
                     "subs r2, r2, #1\n\t"
                     "bne 1b\n\t"
                     "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}
#endif

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
 * ky * run4, run4 = k_w * in_c rounded up to a multiple of 4 (ek_conv_dsp.h). In whole steps
 * (in_c a multiple of 4) a row's taps inside the input, kx in [lo, hi), are one call of
 * widen_pixels (one run of bytes when dil_w is 1), the others zero; a window inside the input
 * is one call for all its rows. in_c not a multiple of 4 (compiled out when no call of the
 * engine has one, EK_CONV_DSP_UNALIGNED) goes row by row or value by value. */
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
    const int aligned = !EK_CONV_DSP_UNALIGNED || (in_c & 3) == 0; /* ek_dsp_paths.h */
    const int32_t dil_w = p->dil_w;
    /* the taps whose columns are inside the input: kx in [lo, hi) */
    const int32_t lo = x0 < 0 ? (-x0 + dil_w - 1) / dil_w : 0;
    const int32_t reach = (p->in_w - x0 + dil_w - 1) / dil_w;
    const int32_t hi = reach < p->k_w ? reach : p->k_w;
    int32_t ky, kx, k = 0;
    if (aligned && dil_w == 1 && lo == 0 && hi == p->k_w && y0 >= 0 && y0 + (p->k_h - 1) * p->dil_h < p->in_h) {
        widen_pixels(image + y0 * in_row + x0 * in_c, (uint32_t *)(void *)window, p->k_h, run, p->dil_h * in_row,
                     off2);
        return;
    }
    for (ky = 0; ky < p->k_h; ++ky, k += run4) {
        const int32_t y = y0 + ky * p->dil_h;
        if (y < 0 || y >= p->in_h || hi <= lo) {
            memset(window + k, 0, (size_t)run4 * sizeof(int16_t));
        } else if (aligned) {
            const int8_t *px = image + y * in_row + (x0 + lo * dil_w) * in_c;
            uint32_t *to = (uint32_t *)(void *)(window + k + lo * in_c);
            if (lo > 0) {
                memset(window + k, 0, (size_t)(lo * in_c) * sizeof(int16_t));
            }
            if (hi < p->k_w) {
                memset(window + k + hi * in_c, 0, (size_t)((p->k_w - hi) * in_c) * sizeof(int16_t));
            }
            if (dil_w == 1) {
                widen_pixels(px, to, 1, (hi - lo) * in_c, 0, off2);
            } else {
                widen_pixels(px, to, hi - lo, in_c, dil_w * in_c, off2);
            }
        } else if (dil_w == 1 && lo == 0 && hi == p->k_w) {
            widen_row(image + y * in_row + x0 * in_c, (uint32_t *)(void *)(window + k), run, off2);
        } else {
            for (kx = 0; kx < p->k_w; ++kx) {
                const int32_t x = x0 + kx * dil_w;
                if (x < 0 || x >= p->in_w) {
                    zero1(window, k + kx * in_c, in_c);
                } else {
                    widen1(image + y * in_row + x * in_c, window, k + kx * in_c, in_c, off);
                }
            }
        }
    }
}

/* Output pixels' channel groups: for each window gathered back to back from `window` to
 * `last_end` (each `end - window` words long), the groups of four channels from `records` to
 * `records_end`, requantized, clamped and stored as four int8 bytes at `out` on. Several
 * pixels per call (1x1 layers over 16 or 32 channels: about 70 instructions of call and
 * gather per pixel besides 512 MACs) pay the call's setup once. The fields' order is the
 * assembly's (it pushes the last two onto its stack with one LDRD and one PUSH, then the first
 * eight with an LDM and a PUSH below them: the first four, which every group reads, with one
 * LDM from sp). */
typedef struct {
    int8_t *out;
    const int32_t *records_end;
    uint32_t sat4, shift4; /* the activation clamp on four bytes at once (clamp_k4) */
    const uint32_t *window; /* the first pixel's gathered window, word-aligned */
    const uint32_t *end;    /* window + 2 * steps words: the next pixel's window */
    uint32_t entry;         /* steps & 7 (C); the assembly turns it into its loop's entry address */
    const uint32_t *last_end; /* the last pixel's window end */
    const uint32_t *weights;  /* the first group's */
    const int32_t *records;   /* the first group's (ek_conv_dsp.h); beside weights: one LDRD */
} conv_groups;

#if defined(EK_ACLE_EMULATION)
/* The assembly's arithmetic in C, for the host tests (requantize_k: ek_requant_dsp.h). */
static void run_groups(const conv_groups *k)
{
    const size_t span = (size_t)(k->end - k->window);
    const uint32_t *window = k->window;
    int8_t *out = k->out;
    for (; window != k->last_end; window += span) {
        const uint32_t *w = k->weights;
        const int32_t *rec = k->records;
        for (; rec != k->records_end; rec += 16, out += 4) {
            int32_t a[4] = {rec[0], rec[1], rec[2], rec[3]};
            const uint32_t *v;
            uint32_t word = 0;
            int32_t j;
            for (v = window; v != window + span; v += 2, w += 8) {
                for (j = 0; j < 4; ++j) {
                    a[j] = __smlad((int32_t)v[0], (int32_t)w[j], a[j]);
                    a[j] = __smlad((int32_t)v[1], (int32_t)w[4 + j], a[j]);
                }
            }
            for (j = 0; j < 4; ++j) {
                const int32_t *c = rec + 4 + 3 * j;
                word |= requantize_k(a[j], c[0], c[1], c[2]) << (8 * j);
            }
            word = clamp_k4(word, k->sat4, k->shift4);
            memcpy(out, &word, 4);
        }
    }
}

#if EK_CONV_DSP_DEPTH16 || EK_CONV_DSP_DEPTH32
/* run_groups16 and run_groups32 in the assembly's order: each window read at fixed offsets
 * (words 0 to 2 * steps - 1), the groups' weights walking on through a pixel. */
static void run_groups_fixed(const conv_groups *k, int32_t steps)
{
    const uint32_t *v;
    int8_t *out = k->out;
    for (v = k->window; v != k->last_end; v += 2 * steps) {
        const uint32_t *w = k->weights;
        const int32_t *rec = k->records;
        for (; rec != k->records_end; rec += 16, out += 4, w += 8 * steps) {
            int32_t a[4] = {rec[0], rec[1], rec[2], rec[3]};
            uint32_t word = 0;
            int32_t j, s;
            for (s = 0; s < steps; ++s) {
                for (j = 0; j < 4; ++j) {
                    a[j] = __smlad((int32_t)v[2 * s], (int32_t)w[8 * s + j], a[j]);
                    a[j] = __smlad((int32_t)v[2 * s + 1], (int32_t)w[8 * s + 4 + j], a[j]);
                }
            }
            for (j = 0; j < 4; ++j) {
                const int32_t *c = rec + 4 + 3 * j;
                word |= requantize_k(a[j], c[0], c[1], c[2]) << (8 * j);
            }
            word = clamp_k4(word, k->sat4, k->shift4);
            memcpy(out, &word, 4);
        }
    }
}
#endif
#if EK_CONV_DSP_DEPTH16
static void run_groups16(const conv_groups *k) { run_groups_fixed(k, 4); }
#endif
#if EK_CONV_DSP_DEPTH32
static void run_groups32(const conv_groups *k) { run_groups_fixed(k, 8); }
#endif
#else
/* One step of four window values: LDRD of the window's two words, LDM of four weight words per
 * word, eight SMLADs. 40 bytes (the LDMs 16-bit, the others 32-bit): the loop's entry is
 * computed from it. */
#define EK_CONV_STEP EK_CONV_STEP_FROM("ldrd r2, r3, [r0], #8\n\t")
/* The step after the LDRD that loads the window words into r2, r3. */
#define EK_CONV_STEP_FROM(LOAD)               \
    LOAD                                      \
    "ldmia.n r1!, {r4, r5, r6, r7}\n\t"       \
    "smlad r9, r2, r4, r9\n\t"                \
    "smlad r10, r2, r5, r10\n\t"              \
    "smlad r11, r2, r6, r11\n\t"              \
    "smlad r12, r2, r7, r12\n\t"              \
    "ldmia.n r1!, {r4, r5, r6, r7}\n\t"       \
    "smlad r9, r3, r4, r9\n\t"                \
    "smlad r10, r3, r5, r10\n\t"              \
    "smlad r11, r3, r6, r11\n\t"              \
    "smlad r12, r3, r7, r12\n\t"

/* Two channels' requantization from the groups' records at r8 (ek_requant_dsp.h). */
#define EK_CONV_REQUANT2(A0, A1) EK_ASM_REQUANT2("r8", A0, A1)

/* In assembly as a whole: the multiply-accumulate loop needs 13 registers (4 accumulators, 2
 * window words, 4 weight words, the window, weight and end pointers), and inline assembly
 * inside the compiler's pixel loop left it too few to keep the group's state out of memory.
 * Registers: r0 window (walking), r1 weights, r2-r3 window words, r4-r7 weight words, then
 * records, r8 records, r9-r12 accumulators, lr the window's end; the other fields on the stack:
 * [sp] out, [sp, #4] records_end, [sp, #8] sat4, [sp, #12] shift4, [sp, #16] window, [sp, #20] a
 * window's bytes, [sp, #24] the loop's entry, [sp, #28] last_end, [sp, #32] weights, [sp, #36]
 * records. The loop runs eight steps a pass and is entered part-way (steps & 7 steps before its
 * first compare: a 1x1 over 32 channels is one pass), so a group costs 3 instructions before
 * it, 11 per step and 2 per pass, 28 to requantize and store; a pixel after the first 8 to move
 * to its window. */
__attribute__((naked, noinline)) static void run_groups(const conv_groups *k)
{
    (void)k;
    __asm__ volatile(
        "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "ldrd r1, r8, [r0, #32]\n\t" /* weights, records */
        "push {r1, r8}\n\t"
        "ldmia r0, {r2, r3, r4, r5, r6, r7, r9, r10}\n\t"
        "push {r2, r3, r4, r5, r6, r7, r9, r10}\n\t"
        "mov lr, r7\n\t"
        "sub r7, r7, r6\n\t" /* a window's bytes, in place of end */
        "str r7, [sp, #20]\n\t"
        "rsb r9, r9, #8\n\t" /* entry: (8 - steps & 7) & 7 steps into the loop, Thumb bit set */
        "and r9, r9, #7\n\t"
        "movs r5, #40\n\t"
        "adr r2, 4f\n\t"
        "mla r2, r9, r5, r2\n\t"
        "orr r2, r2, #1\n\t"
        "str r2, [sp, #24]\n\t"
        "1:\n\t"
        "ldmia r8!, {r9, r10, r11, r12}\n\t" /* biases (doubled) */
        "ldr r0, [sp, #16]\n\t"
        "ldr pc, [sp, #24]\n\t"
        ".balign 4\n\t"
        "4:\n\t"
        EK_CONV_STEP EK_CONV_STEP EK_CONV_STEP EK_CONV_STEP
        EK_CONV_STEP EK_CONV_STEP EK_CONV_STEP EK_CONV_STEP
        "cmp r0, lr\n\t"
        "bne 4b\n\t"
        EK_CONV_REQUANT2("r9", "r10") EK_CONV_REQUANT2("r11", "r12")
        "orr r9, r9, r10, lsl #8\n\t"
        "orr r9, r9, r11, lsl #16\n\t"
        "orr r9, r9, r12, lsl #24\n\t"
        "ldmia sp, {r2, r3, r4, r5}\n\t" /* out, records_end, sat4, shift4 */
        "uqadd8 r9, r9, r4\n\t" /* the activation clamp and back to int8 (conv_groups) */
        "uadd8 r9, r9, r5\n\t"
        "str r9, [r2], #4\n\t"
        "str r2, [sp]\n\t"
        "cmp r8, r3\n\t"
        "bne 1b\n\t"
        "ldr r2, [sp, #28]\n\t" /* the next pixel: its window starts at this one's end */
        "cmp lr, r2\n\t"
        "beq 9f\n\t"
        "ldr r3, [sp, #20]\n\t"
        "str lr, [sp, #16]\n\t"
        "add lr, lr, r3\n\t"
        "ldrd r1, r8, [sp, #32]\n\t" /* weights, records: the first group's again */
        "b 1b\n\t"
        "9:\n\t"
        "add sp, sp, #40\n\t"
        "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}

#if EK_CONV_DSP_DEPTH16 || EK_CONV_DSP_DEPTH32
/* EK_CONV_STEP with the window word pair at byte offset OFF from r0, which stays put. */
#define EK_CONV_STEP_AT(OFF) EK_CONV_STEP_FROM("ldrd r2, r3, [r0, #" OFF "]\n\t")

/* run_groups for windows of exactly STEPS steps (written out in STEPS_ASM; BYTES = 8 * STEPS,
 * a window's bytes): the window read at fixed offsets from r0 (the pixel's window, moved BYTES
 * a pixel), the output pointer in lr (the window's end is not needed). No entry jump, no loop
 * compare and branch, no window pointer reload or output pointer write-back: a group is
 * 1 (biases) + 11 a step + 18 (requantize) + 3 (pack) + 1 (LDM of records_end, sat4, shift4) +
 * 2 (clamp) + 1 (store) + 2 (group loop) = 28 + 11 * steps instructions, against run_groups'
 * 31 + 11 * steps + 2 a pass: 72 for 64 MACs (depth 16) against 77, 116 for 128 (depth 32)
 * against 121; a pixel after the first 6 more. Registers as run_groups', lr the output; the
 * frame: [sp] records_end, [sp, #4] sat4, [sp, #8] shift4, [sp, #12] last_end, [sp, #16]
 * weights, [sp, #20] records. */
#define EK_CONV_FIXED_GROUPS(STEPS_ASM, BYTES)                                    \
    "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                             \
    "ldmia r0, {r2, r3, r4, r5, r6}\n\t" /* out, records_end, sat4, shift4, window */ \
    "ldr r7, [r0, #28]\n\t"               /* last_end */                          \
    "ldrd r8, r9, [r0, #32]\n\t"          /* weights, records */                  \
    "push {r3, r4, r5, r7, r8, r9}\n\t"                                           \
    "mov lr, r2\n\t"                                                              \
    "mov r0, r6\n\t"                                                              \
    "mov r1, r8\n\t"                                                              \
    "mov r8, r9\n\t"                                                              \
    "1:\n\t"                                                                      \
    "ldmia r8!, {r9, r10, r11, r12}\n\t" /* biases (doubled) */                   \
    STEPS_ASM                                                                     \
    EK_CONV_REQUANT2("r9", "r10") EK_CONV_REQUANT2("r11", "r12")                  \
    "orr r9, r9, r10, lsl #8\n\t"                                                 \
    "orr r9, r9, r11, lsl #16\n\t"                                                \
    "orr r9, r9, r12, lsl #24\n\t"                                                \
    "ldmia sp, {r2, r3, r4}\n\t" /* records_end, sat4, shift4 */                  \
    "uqadd8 r9, r9, r3\n\t" /* the activation clamp and back to int8 */           \
    "uadd8 r9, r9, r4\n\t"                                                        \
    "str r9, [lr], #4\n\t"                                                        \
    "cmp r8, r2\n\t"                                                              \
    "bne 1b\n\t"                                                                  \
    "adds r0, r0, #" BYTES "\n\t" /* the next pixel's window */                   \
    "ldr r2, [sp, #12]\n\t"                                                       \
    "cmp r0, r2\n\t"                                                              \
    "beq 9f\n\t"                                                                  \
    "ldrd r1, r8, [sp, #16]\n\t" /* weights, records: the first group's again */  \
    "b 1b\n\t"                                                                    \
    "9:\n\t"                                                                      \
    "add sp, sp, #24\n\t"                                                         \
    "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"

#define EK_CONV_STEPS4 EK_CONV_STEP_AT("0") EK_CONV_STEP_AT("8") EK_CONV_STEP_AT("16") EK_CONV_STEP_AT("24")
#endif

#if EK_CONV_DSP_DEPTH16
/* Windows of 16 values (a 1x1 over 16 channels): about 250 bytes. */
__attribute__((naked, noinline)) static void run_groups16(const conv_groups *k)
{
    (void)k;
    __asm__ volatile(EK_CONV_FIXED_GROUPS(EK_CONV_STEPS4, "32"));
}
#endif

#if EK_CONV_DSP_DEPTH32
/* Windows of 32 values (a 1x1 over 32 channels): about 410 bytes. */
__attribute__((naked, noinline)) static void run_groups32(const conv_groups *k)
{
    (void)k;
    __asm__ volatile(EK_CONV_FIXED_GROUPS(EK_CONV_STEPS4 EK_CONV_STEP_AT("32") EK_CONV_STEP_AT("40")
                                              EK_CONV_STEP_AT("48") EK_CONV_STEP_AT("56"),
                                          "64"));
}
#endif
#endif

/* run_groups16 (run_groups32) where the windows are four (eight) steps long and the engine
 * carries it (ek_dsp_paths.h), run_groups otherwise. */
static void run_call(const conv_groups *k)
{
#if EK_CONV_DSP_DEPTH16
    if (k->end - k->window == 8) {
        run_groups16(k);
        return;
    }
#endif
#if EK_CONV_DSP_DEPTH32
    if (k->end - k->window == 16) {
        run_groups32(k);
        return;
    }
#endif
    run_groups(k);
}

/* The `n` pixels whose windows were gathered from k->window on: their full groups in one call,
 * then (n = 1) the last 1 to 3 channels, which `last` writes to `tail_word`. Returns the output
 * past them. */
static int8_t *run_pixels(conv_groups *k, const conv_groups *last, const uint32_t *tail_word, int32_t n,
                          int32_t groups, int32_t tail, int8_t *output)
{
    if (groups) {
        k->out = output;
        k->last_end = k->window + n * (k->end - k->window);
        run_call(k);
        output += 4 * groups * n;
    }
    if (tail) {
        run_call(last);
        memcpy(output, tail_word, (size_t)tail);
        output += tail;
    }
    return output;
}

void ek_conv2d_dsp(const ek_conv_dsp_params *p, const int8_t *input, int8_t *output)
{
    uint32_t words[EK_CONV_DSP_MAX_WINDOW / 2]; /* the windows' halfwords, word-aligned */
    const int32_t steps = p->k_h * ((p->k_w * p->in_c + 3) >> 2); /* window rows padded to 4 */
    const int32_t span = 2 * steps;                                  /* words per window */
    const int32_t in_image = p->in_h * p->in_w * p->in_c;
    const int32_t groups = p->out_c >> 2; /* full groups of four */
    const int32_t tail = EK_CONV_DSP_TAIL ? p->out_c & 3 : 0; /* ek_dsp_paths.h */
    /* Pixels per call: as many windows as the buffer holds when every group is full (a tail
     * group's bytes go between two pixels' outputs: one pixel a call then). */
    const int32_t batch = tail ? 1 : (EK_CONV_DSP_MAX_WINDOW / 2) / span;
    conv_groups k, last; /* the full groups; the last 1 to 3 channels (the group's others are zero) */
    uint32_t tail_word[1];
    int32_t b, oy, ox, m, n = 0;
    const uint32_t sat = 255u - (uint32_t)(p->act_max - p->act_min); /* d, see conv_groups */
    k.window = words;
    k.end = words + span;
    k.entry = (uint32_t)(steps & 7);
    k.out = output;
    k.sat4 = sat * 0x01010101u;
    k.shift4 = (((uint32_t)p->act_min - sat) & 0xFFu) * 0x01010101u;
    k.weights = (const uint32_t *)p->weights;
    k.records = p->records;
    k.records_end = p->records + 16 * groups;
    k.last_end = k.end;
    if (tail) {
        last = k;
        last.out = (int8_t *)(void *)tail_word;
        last.weights = k.weights + 8 * steps * groups;
        last.records = k.records_end;
        last.records_end = k.records_end + 16;
    }
    if (p->k_h == 1 && p->k_w == 1 && (p->in_c & 3) == 0 && p->pad_top == 0 && p->pad_left == 0) {
        /* A 1x1 window inside the input in whole steps is the pixel's bytes, widened, with none
         * of gather's bookkeeping; at stride 1 a row's pixels are one run, widened at once. */
        const int32_t off2 = (int32_t)(((uint32_t)p->in_offset & 0xFFFFu) * 0x10001u);
        const int32_t x_step = p->stride_w * p->in_c;
        for (b = 0; b < p->batches; ++b) {
            const int8_t *image = input + b * in_image;
            for (oy = 0; oy < p->out_h; ++oy) {
                const int8_t *px = image + oy * p->stride_h * p->in_w * p->in_c;
                for (ox = 0; ox < p->out_w; ox += m) {
                    const int32_t room = batch - n;
                    m = p->out_w - ox < room ? p->out_w - ox : room;
                    if (x_step == p->in_c) { /* one run */
                        widen_pixels(px, words + n * span, 1, m * x_step, 0, off2);
                    } else {
                        widen_pixels(px, words + n * span, m, p->in_c, x_step, off2);
                    }
                    px += m * x_step;
                    n += m;
                    if (n == batch) {
                        output = run_pixels(&k, &last, tail_word, n, groups, tail, output);
                        n = 0;
                    }
                }
            }
        }
    } else {
        const int32_t pixels = p->batches * p->out_h * p->out_w;
        if (EK_CONV_DSP_UNALIGNED && (p->in_c & 3) != 0) {
            /* positions past a window row (in_c not a multiple of 4) are never written */
            memset(words, 0, (size_t)(pixels < batch ? pixels : batch) * (size_t)span * 4u);
        }
        for (b = 0; b < p->batches; ++b) {
            const int8_t *image = input + b * in_image;
            for (oy = 0; oy < p->out_h; ++oy) {
                for (ox = 0; ox < p->out_w; ++ox) {
                    gather(p, image, oy * p->stride_h - p->pad_top, ox * p->stride_w - p->pad_left,
                           (int16_t *)(void *)(words + n * span));
                    if (++n == batch) {
                        output = run_pixels(&k, &last, tail_word, n, groups, tail, output);
                        n = 0;
                    }
                }
            }
        }
    }
    if (n) {
        run_pixels(&k, &last, tail_word, n, groups, tail, output);
    }
}

/* FULLY_CONNECTED with widened weights (ek_fully_connected_wide_dsp): `rows` rows of `depth`
 * values (a multiple of 16, at most EK_FC_WIDE_MAX_DEPTH) by `units` outputs each, without
 * ek_conv2d_dsp's pixel bookkeeping and without padded or overlapping channel groups.
 *
 * Each row is widened once to halfwords on the stack in the k x k kernel's window order (16
 * bytes by one LDM, eight SXTB16 and one STM: 12 instructions with the loop; LDM needs the
 * word-aligned input the generator passes, an arena buffer; the input offset is folded into the
 * bias by the generator, so no SXTAB16 constant), then the units run over
 * it in quads (ek_conv2d_dsp's step: LDRD, two LDMs of weights, eight SMLADs: 11 instructions
 * for 16 MACs, four steps a loop pass) and the last 1 to 3 units in pairs (LDM of four window
 * words, two of weights, eight SMLADs: 11 instructions for 16 MACs; a pair's second unit is zero
 * when the units are odd and is not stored). A group's biases, weights and requantization
 * records are one run (ek_conv_dsp.h), so one pointer walks them and the output pointer keeps a
 * register. Each group requantizes as requantize_k does and clamps its bytes at once
 * (conv_groups' sat4, shift4). qemu-m4: benchmarks/results/public_layers-qemu-m4.md.
 */
#if defined(EK_ACLE_EMULATION)
/* The assembly's arithmetic in C, for the host tests. */
void ek_fully_connected_wide_dsp(const ek_fc_wide_dsp_params *p, const int8_t *input, int8_t *output)
{
    uint32_t window[EK_FC_WIDE_MAX_DEPTH / 2];
    const int32_t span = p->depth >> 1; /* words per row */
    int32_t r, i;
    for (r = 0; r < p->rows; ++r, input += p->depth) {
        const int32_t *w = p->weights;
        int32_t u = 0;
        for (i = 0; i < p->depth; i += 4) {
            const uint32_t v = ek_load4(input + i);
            window[i >> 1] = (uint32_t)__sxtb16((int32_t)v);    /* (x0, x2) */
            window[(i >> 1) + 1] = (uint32_t)ek_sxtb16_ror8(v); /* (x1, x3) */
        }
        while (u < p->units) {
            const int32_t n = p->units - u >= 4 ? 4 : 2; /* a quad, or a pair */
            const int32_t keep = p->units - u < n ? p->units - u : n;
            int32_t a[4] = {0, 0, 0, 0}, j;
            uint32_t word = 0;
            for (j = 0; j < n; ++j) {
                a[j] = *w++;
            }
            for (i = 0; i < span; i += 2, w += 2 * n) {
                for (j = 0; j < n; ++j) {
                    a[j] = __smlad((int32_t)window[i], w[j], a[j]);
                    a[j] = __smlad((int32_t)window[i + 1], w[n + j], a[j]);
                }
            }
            for (j = 0; j < n; ++j, w += 3) {
                word |= requantize_k(a[j], w[0], w[1], w[2]) << (8 * j);
            }
            word = clamp_k4(word, (uint32_t)p->sat4, (uint32_t)p->shift4);
            memcpy(output, &word, (size_t)keep);
            output += keep;
            u += keep;
        }
    }
}
#else
/* Two steps of eight depth values for a pair: LDM of four window words, then per two of them an
 * LDM of the pair's four weight words ((k, k+2) of units 0 and 1, then (k+1, k+3) of both) and
 * four SMLADs. */
#define EK_FC_PAIR_STEP2                      \
    "ldmia r0!, {r2, r3, r11, r12}\n\t"       \
    "ldmia r1!, {r4, r5, r6, r7}\n\t"         \
    "smlad r9, r2, r4, r9\n\t"                \
    "smlad r10, r2, r5, r10\n\t"              \
    "smlad r9, r3, r6, r9\n\t"                \
    "smlad r10, r3, r7, r10\n\t"              \
    "ldmia r1!, {r4, r5, r6, r7}\n\t"         \
    "smlad r9, r11, r4, r9\n\t"               \
    "smlad r10, r11, r5, r10\n\t"             \
    "smlad r9, r12, r6, r9\n\t"               \
    "smlad r10, r12, r7, r10\n\t"

/* EK_CONV_REQUANT2 with the records read from the weights' run (r1). */
#define EK_FC_REQUANT2(A0, A1) EK_ASM_REQUANT2("r1", A0, A1)

/* Sixteen input bytes in r2, r4, r6, r9 to eight window words in r2-r7, r9, r10 (each word's
 * (x0, x2) below its (x1, x3), the order STM stores them in); r8 (the output) is left alone. */
#define EK_FC_WIDEN16                         \
    "sxtb16 r3, r2, ror #8\n\t"               \
    "sxtb16 r2, r2\n\t"                       \
    "sxtb16 r5, r4, ror #8\n\t"               \
    "sxtb16 r4, r4\n\t"                       \
    "sxtb16 r7, r6, ror #8\n\t"               \
    "sxtb16 r6, r6\n\t"                       \
    "sxtb16 r10, r9, ror #8\n\t"              \
    "sxtb16 r9, r9\n\t"                       \
    "stmia r1!, {r2, r3, r4, r5, r6, r7, r9, r10}\n\t"

/* Registers in the groups: r0 window (walking), r1 the group's run (biases, weights, records),
 * r2-r3 window words (a pair's four: r2, r3, r11, r12), r4-r7 weight words, then records, r8
 * the output, r9-r12 accumulators (a pair's r9-r10), lr the window's end. The frame: [sp, #4]
 * the quads' end, [sp, #8] sat4, [sp, #12] shift4, [sp, #16] units & 3, [sp, #20] rows left,
 * [sp, #24] input, [sp, #28] weights, [sp, #36] units left in pairs, then the window
 * (EK_FC_WIDE_MAX_DEPTH halfwords). A quad costs 2 instructions before its steps, 11 per step
 * and 2 per pass of four, 28 to requantize, clamp, store and loop; a pair 2, 11 per two steps,
 * 2 per pass and 21; a row 11 and 12 per 16 depth values to widen, a call 21 more (qemu-m4 with
 * the call: ResNet-8's 64 -> 10 in 631 instructions, DS-CNN's 64 -> 12 in 725). */
__attribute__((naked, noinline)) void ek_fully_connected_wide_dsp(const ek_fc_wide_dsp_params *p,
                                                                   const int8_t *input, int8_t *output)
{
    (void)p;
    (void)input;
    (void)output;
    __asm__ volatile(
        "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "subw sp, sp, #2344\n\t" /* 40 bytes of frame, 2 * EK_FC_WIDE_MAX_DEPTH of window */
        "ldmia r0, {r4, r5, r6, r7, r10, r11}\n\t" /* rows, depth, units, sat4, shift4, weights */
        "mov r8, r2\n\t"
        "add lr, sp, #40\n\t"
        "add lr, lr, r5, lsl #1\n\t" /* the window's end */
        "strd r7, r10, [sp, #8]\n\t"
        "and r0, r6, #3\n\t"
        "strd r0, r4, [sp, #16]\n\t"
        "strd r1, r11, [sp, #24]\n\t"
        "lsl r0, r5, #3\n\t" /* a quad's run: 8 * depth bytes of weights, 64 of biases and records */
        "add r0, r0, #64\n\t"
        "lsrs r2, r6, #2\n\t"
        "mla r0, r0, r2, r11\n\t"
        "str r0, [sp, #4]\n\t"
        "1:\n\t" /* a row: widened into the window (LDM: the input is word-aligned) */
        "ldr r0, [sp, #24]\n\t"
        "add r1, sp, #40\n\t"
        "2:\n\t"
        "ldmia r0!, {r2, r4, r6, r9}\n\t"
        EK_FC_WIDEN16
        "cmp r1, lr\n\t"
        "bne 2b\n\t"
        "str r0, [sp, #24]\n\t" /* the next row */
        "ldr r1, [sp, #28]\n\t"
        "ldr r2, [sp, #4]\n\t"
        "cmp r1, r2\n\t"
        "beq 7f\n\t"
        "6:\n\t" /* a quad */
        "ldmia r1!, {r9, r10, r11, r12}\n\t" /* biases (folded, doubled) */
        "add r0, sp, #40\n\t"
        "4:\n\t"
        EK_CONV_STEP EK_CONV_STEP EK_CONV_STEP EK_CONV_STEP
        "cmp r0, lr\n\t"
        "bne 4b\n\t"
        EK_FC_REQUANT2("r9", "r10") EK_FC_REQUANT2("r11", "r12")
        "orr r9, r9, r10, lsl #8\n\t"
        "orr r9, r9, r11, lsl #16\n\t"
        "orr r9, r9, r12, lsl #24\n\t"
        "ldrd r2, r3, [sp, #8]\n\t"
        "uqadd8 r9, r9, r2\n\t" /* the activation clamp and back to int8 (conv_groups) */
        "uadd8 r9, r9, r3\n\t"
        "str r9, [r8], #4\n\t"
        "ldr r3, [sp, #4]\n\t"
        "cmp r1, r3\n\t"
        "bne 6b\n\t"
        "7:\n\t" /* the last 1 to 3 units in pairs */
        "ldr r3, [sp, #16]\n\t"
        "cmp r3, #0\n\t"
        "beq 9f\n\t"
        "str r3, [sp, #36]\n\t"
        "8:\n\t"
        "ldmia r1!, {r9, r10}\n\t"
        "add r0, sp, #40\n\t"
        "81:\n\t"
        EK_FC_PAIR_STEP2 EK_FC_PAIR_STEP2
        "cmp r0, lr\n\t"
        "bne 81b\n\t"
        EK_FC_REQUANT2("r9", "r10")
        "orr r9, r9, r10, lsl #8\n\t"
        "ldrd r2, r3, [sp, #8]\n\t"
        "uqadd8 r9, r9, r2\n\t"
        "uadd8 r9, r9, r3\n\t"
        "ldr r3, [sp, #36]\n\t"
        "strb r9, [r8], #1\n\t"
        "subs r3, r3, #2\n\t" /* -1: that was the last unit; 0: the last two; 1: one more */
        "itt pl\n\t"
        "lsrpl r9, r9, #8\n\t"
        "strbpl r9, [r8], #1\n\t"
        "str r3, [sp, #36]\n\t"
        "bgt 8b\n\t"
        "9:\n\t"
        "ldr r3, [sp, #20]\n\t"
        "subs r3, r3, #1\n\t"
        "str r3, [sp, #20]\n\t"
        "bne 1b\n\t"
        "addw sp, sp, #2344\n\t"
        "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}
#endif

/* FULLY_CONNECTED of exactly two units over rows of a depth in blocks of 64
 * (ek_fully_connected_pair_dsp, a binary classifier's last layer): the same struct and weights
 * as ek_fully_connected_wide_dsp's one pair, but the row is not widened on the stack: with two
 * units, widening it once (about 0.75 instructions a depth value) costs more than widening each
 * input word as it is read (two SXTB16 for both units), so per 16 depth values one LDM of the
 * raw input, then per word two SXTB16, one LDM of the pair's four weight words and four SMLADs:
 * 29 instructions for 32 MACs, four such blocks a loop pass. */
#if defined(EK_ACLE_EMULATION)
/* The same integers as the wide kernel's pair (the widening order does not change them). */
void ek_fully_connected_pair_dsp(const ek_fc_wide_dsp_params *p, const int8_t *input, int8_t *output)
{
    ek_fully_connected_wide_dsp(p, input, output);
}
#else
/* One input word X (four depth values) against the pair's next four weight words: SXTB16 into r8
 * gives (x0, x2), X itself becomes (x1, x3). */
#define EK_FC_RAW_WORD(X)                     \
    "sxtb16 r8, " X "\n\t"                    \
    "sxtb16 " X ", " X ", ror #8\n\t"         \
    "ldmia r1!, {r4, r5, r6, r7}\n\t"         \
    "smlad r9, r8, r4, r9\n\t"                \
    "smlad r10, r8, r5, r10\n\t"              \
    "smlad r9, " X ", r6, r9\n\t"             \
    "smlad r10, " X ", r7, r10\n\t"

#define EK_FC_RAW_BLOCK                       \
    "ldmia r0!, {r2, r3, r11, r12}\n\t"       \
    EK_FC_RAW_WORD("r2") EK_FC_RAW_WORD("r3") EK_FC_RAW_WORD("r11") EK_FC_RAW_WORD("r12")

/* Registers: r0 input (walking), r1 the pair's run, r2-r3 and r11-r12 input words, r4-r7
 * weight words, then records, r8 the low halves, r9-r10 accumulators, lr the row's end. The
 * frame: [sp] out, [sp, #4] rows left, [sp, #8] depth, [sp, #12] sat4, [sp, #16] shift4,
 * [sp, #20] weights. Per row 4 instructions before the blocks, 2 per pass of four and 17 after,
 * a call 10 more: qemu-m4's VWW 256 -> 2 in 503 instructions with the call. */
__attribute__((naked, noinline)) void ek_fully_connected_pair_dsp(const ek_fc_wide_dsp_params *p,
                                                                   const int8_t *input, int8_t *output)
{
    (void)p;
    (void)input;
    (void)output;
    __asm__ volatile(
        "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "ldmia r0, {r3, r4, r5, r6, r7, r12}\n\t" /* rows, depth, units, sat4, shift4, weights */
        "push {r2, r3, r4, r6, r7, r12}\n\t"
        "mov r0, r1\n\t"
        "1:\n\t"
        "ldr r3, [sp, #8]\n\t"
        "add lr, r0, r3\n\t"
        "ldr r1, [sp, #20]\n\t"
        "ldmia r1!, {r9, r10}\n\t" /* biases (folded, doubled) */
        "2:\n\t"
        EK_FC_RAW_BLOCK EK_FC_RAW_BLOCK EK_FC_RAW_BLOCK EK_FC_RAW_BLOCK
        "cmp r0, lr\n\t"
        "bne 2b\n\t"
        EK_FC_REQUANT2("r9", "r10")
        "orr r9, r9, r10, lsl #8\n\t"
        "ldmia sp, {r2, r3, r4, r5, r6}\n\t" /* out, rows, depth, sat4, shift4 */
        "uqadd8 r9, r9, r5\n\t" /* the activation clamp and back to int8 (conv_groups) */
        "uadd8 r9, r9, r6\n\t"
        "strh r9, [r2], #2\n\t"
        "subs r3, r3, #1\n\t"
        "strd r2, r3, [sp]\n\t"
        "bne 1b\n\t" /* r0: the next row */
        "add sp, sp, #24\n\t"
        "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}
#endif

#else
typedef int ek_conv_dsp_unused; /* no DSP extension: the plain kernels run (ek_conv.c) */
#endif
