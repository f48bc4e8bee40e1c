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
 * generation time) and eight SMLADs: 11 instructions for 16 MACs, four steps per loop pass.
 * The accumulators hold 2 * acc, the operand of the requantization's SMMLAR (requantize_k).
 * On the target one assembly routine (run_groups) runs every group of several pixels: loop,
 * requantization and the activation clamp of four bytes at once, about 32 instructions per
 * group besides the steps (the compiler's code around inline assembly spilled the group's
 * state: about 60). The host tests run its C twin. The same integers as the reference in
 * another order, modulo 2^32: bit for bit.
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

/* widen4 out of line for the 1x1 path (one copy of its loop there, not two). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void widen_pixels(const int8_t *px, uint32_t *to, int32_t n, int32_t off2)
{
    widen4(px, to, n, off2);
}

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
 * ky * run4, run4 = k_w * in_c rounded up to a multiple of 4 (ek_conv_dsp.h). */
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
    const int aligned = (in_c & 3) == 0;
    /* With no horizontal dilation and the window's columns inside, a window row is one run. */
    const int columns_inside = p->dil_w == 1 && x0 >= 0 && x0 + p->k_w <= p->in_w;
    int32_t ky, kx, k = 0;
    for (ky = 0; ky < p->k_h; ++ky, k += run4) {
        const int32_t y = y0 + ky * p->dil_h;
        if (y < 0 || y >= p->in_h) {
            memset(window + k, 0, (size_t)run4 * sizeof(int16_t));
        } else if (columns_inside) {
            const int8_t *px = image + y * in_row + x0 * in_c;
            if (aligned) {
                widen4(px, (uint32_t *)(void *)(window + k), run, off2);
            } else {
                widen_row(px, (uint32_t *)(void *)(window + k), run, off2);
            }
        } else {
            for (kx = 0; kx < p->k_w; ++kx) {
                const int32_t x = x0 + kx * p->dil_w;
                const int32_t at = k + kx * in_c;
                if (x < 0 || x >= p->in_w) {
                    if (aligned) {
                        memset(window + at, 0, (size_t)in_c * sizeof(int16_t));
                    } else {
                        zero1(window, at, in_c);
                    }
                } else if (aligned) {
                    widen4(image + y * in_row + x * in_c, (uint32_t *)(void *)(window + at), in_c, off2);
                } else {
                    widen1(image + y * in_row + x * in_c, window, at, in_c, off);
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
 * assembly's (it copies the first eight onto its stack with one LDM and one PUSH, then the
 * last two with another pair). */
typedef struct {
    const uint32_t *window; /* the first pixel's gathered window, word-aligned */
    const uint32_t *end;    /* window + 2 * steps words: the next pixel's window */
    uint32_t entry;         /* steps & 3 (C); the assembly turns it into its loop's entry address */
    int8_t *out;
    const int32_t *records_end;
    /* The activation clamp on four bytes at once: requantize_k gives u = min(max(q - lo, 0), 255)
     * for the biased output q and lo = act_min + 128; UQADD8 of d = 255 - (hi - lo) (hi = act_max +
     * 128) saturates exactly where u passes hi - lo; a wrapping UADD8 of act_min - d then gives
     * min(u, hi - lo) + lo - 128, the int8 output */
    uint32_t sat4, shift4;
    const uint32_t *weights;  /* the first group's */
    const uint32_t *last_end; /* the last pixel's window end */
    const int32_t *records;   /* the first group's (ek_conv_dsp.h) */
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
            word = __uadd8(__uqadd8(word, k->sat4), k->shift4);
            memcpy(out, &word, 4);
        }
    }
}
#else
/* One step of four window values: LDRD of the window's two words, LDM of four weight words per
 * word, eight SMLADs. 44 bytes (every instruction 32-bit): the loop's entry is computed from it. */
#define EK_CONV_STEP                          \
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

/* Two channels' requantization (requantize_k) from accumulators A0, A1 with the record words
 * in r2-r4 (m, k, s of the first) and r5-r7 (the second's), into A0, A1. */
#define EK_CONV_REQUANT2(A0, A1)              \
    "ldmia r8!, {r2, r3, r4, r5, r6, r7}\n\t" \
    "smmlar r2, " A0 ", r2, r3\n\t"           \
    "sub r2, r2, " A0 ", lsr #31\n\t"         \
    "asr r2, r2, r4\n\t"                      \
    "usat " A0 ", #8, r2, asr #1\n\t"         \
    "smmlar r5, " A1 ", r5, r6\n\t"           \
    "sub r5, r5, " A1 ", lsr #31\n\t"         \
    "asr r5, r5, r7\n\t"                      \
    "usat " A1 ", #8, r5, asr #1\n\t"

/* In assembly as a whole: the multiply-accumulate loop needs 13 registers (4 accumulators, 2
 * window words, 4 weight words, the window, weight and end pointers), and inline assembly
 * inside the compiler's pixel loop left it too few to keep the group's state out of memory.
 * Registers: r0 window (walking), r1 weights, r2-r3 window words, r4-r7 weight words, then
 * records, r8 records, r9-r12 accumulators, lr the window's end; the other fields on the stack:
 * [sp] last_end, [sp, #4] records, [sp, #8] window, [sp, #12] end, [sp, #16] the loop's entry,
 * [sp, #20] out, [sp, #24] records_end, [sp, #28] sat4, [sp, #32] shift4, [sp, #36] weights.
 * The loop runs four steps a pass and is entered part-way (steps & 3 steps before its first
 * compare), so a group costs 3 instructions before it, 11 per step and 2 per pass, 29 to
 * requantize and store; a pixel after the first 10 to move to its window. */
__attribute__((naked, noinline)) static void run_groups(const conv_groups *k)
{
    (void)k;
    __asm__ volatile(
        "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "ldmia r0!, {r2, r3, r4, r5, r6, r7, r8, r9}\n\t"
        "push {r2, r3, r4, r5, r6, r7, r8, r9}\n\t"
        "ldmia r0, {r2, r8}\n\t" /* last_end, records */
        "push {r2, r8}\n\t"
        "mov r1, r9\n\t"
        "ldr lr, [sp, #12]\n\t"
        "rsb r4, r4, #4\n\t" /* entry: (4 - steps & 3) & 3 steps into the loop, Thumb bit set */
        "and r4, r4, #3\n\t"
        "movs r5, #44\n\t"
        "adr r2, 4f\n\t"
        "mla r2, r4, r5, r2\n\t"
        "orr r2, r2, #1\n\t"
        "str r2, [sp, #16]\n\t"
        "1:\n\t"
        "ldmia r8!, {r9, r10, r11, r12}\n\t" /* biases (doubled) */
        "ldr r0, [sp, #8]\n\t"
        "ldr pc, [sp, #16]\n\t"
        ".balign 4\n\t"
        "4:\n\t"
        EK_CONV_STEP EK_CONV_STEP EK_CONV_STEP EK_CONV_STEP
        "cmp r0, lr\n\t"
        "bne 4b\n\t"
        EK_CONV_REQUANT2("r9", "r10") EK_CONV_REQUANT2("r11", "r12")
        "orr r9, r9, r10, lsl #8\n\t"
        "orr r9, r9, r11, lsl #16\n\t"
        "orr r9, r9, r12, lsl #24\n\t"
        "ldrd r2, r3, [sp, #28]\n\t"
        "uqadd8 r9, r9, r2\n\t" /* the activation clamp and back to int8 (conv_groups) */
        "uadd8 r9, r9, r3\n\t"
        "ldrd r2, r3, [sp, #20]\n\t" /* out, records_end */
        "str r9, [r2], #4\n\t"
        "str r2, [sp, #20]\n\t"
        "cmp r8, r3\n\t"
        "bne 1b\n\t"
        "ldr r2, [sp]\n\t" /* the next pixel: its window starts at this one's end */
        "cmp lr, r2\n\t"
        "beq 9f\n\t"
        "ldr r3, [sp, #8]\n\t"
        "str lr, [sp, #8]\n\t"
        "sub r3, lr, r3\n\t"
        "add lr, lr, r3\n\t"
        "ldr r1, [sp, #36]\n\t"
        "ldr r8, [sp, #4]\n\t"
        "b 1b\n\t"
        "9:\n\t"
        "add sp, sp, #40\n\t"
        "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}
#endif

/* The `n` pixels whose windows were gathered from k->window on: their full groups in one call,
 * then (n = 1) the last 1 to 3 channels, which `last` writes to `tail_word`. Returns the output
 * past them. */
static int8_t *run_pixels(conv_groups *k, const conv_groups *last, const uint32_t *tail_word, int32_t n,
                          int32_t groups, int32_t tail, int8_t *output)
{
    if (groups) {
        k->out = output;
        k->last_end = k->window + n * (k->end - k->window);
        run_groups(k);
        output += 4 * groups * n;
    }
    if (tail) {
        run_groups(last);
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
    k.entry = (uint32_t)(steps & 3);
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
                    if (x_step == p->in_c) {
                        widen_pixels(px, words + n * span, m * x_step, off2);
                        px += m * x_step;
                    } else {
                        int32_t i;
                        for (i = 0; i < m; ++i, px += x_step) {
                            widen_pixels(px, words + (n + i) * span, p->in_c, off2);
                        }
                    }
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
        /* positions past a window row are never written */
        memset(words, 0, (size_t)(pixels < batch ? pixels : batch) * (size_t)span * 4u);
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

/* FULLY_CONNECTED (depth a multiple of 4, 4 or more units) through the same groups, without
 * ek_conv2d_dsp's pixel bookkeeping (qemu-m4, one row of 64 -> 12: 853 instructions against its
 * 933, of which about 670 in run_groups and 90 widening the row). Rows are contiguous, so a batch of them is widened in one run. A unit count that is not
 * a multiple of 4 ends with a group that overlaps the previous one (units - 4 to units - 1, laid
 * out so by the generator) written straight into the row's output: the overlapped units get the
 * same bytes twice, and there is no tail buffer to copy. One row a call then, since the groups'
 * outputs are no longer 4 * groups apart. */
void ek_fully_connected_wide_dsp(const ek_conv_dsp_params *p, const int8_t *input, int8_t *output)
{
    uint32_t words[EK_CONV_DSP_MAX_WINDOW / 2]; /* the rows' halfwords */
    const int32_t depth = p->in_c;
    const int32_t units = p->out_c;
    const int32_t span = depth >> 1; /* words per row */
    const int32_t full = units >> 2;
    const int32_t overlap = units & 3;
    const int32_t batch = overlap ? 1 : (EK_CONV_DSP_MAX_WINDOW / 2) / span;
    const int32_t off2 = (int32_t)(((uint32_t)p->in_offset & 0xFFFFu) * 0x10001u);
    const uint32_t sat = 255u - (uint32_t)(p->act_max - p->act_min); /* d, see conv_groups */
    int32_t rows = p->in_h;
    conv_groups k;
    k.window = words;
    k.end = words + span;
    k.entry = (uint32_t)((depth >> 2) & 3);
    k.sat4 = sat * 0x01010101u;
    k.shift4 = (((uint32_t)p->act_min - sat) & 0xFFu) * 0x01010101u;
    k.weights = (const uint32_t *)p->weights;
    k.records = p->records;
    k.records_end = p->records + 16 * full;
    while (rows > 0) {
        const int32_t n = rows < batch ? rows : batch;
        widen_pixels(input, words, n * depth, off2);
        input += n * depth;
        k.out = output;
        k.last_end = words + n * span;
        run_groups(&k);
        if (overlap) {
            /* the last group, whose weights and records follow the full groups' (k is set back) */
            const uint32_t *const weights = k.weights;
            k.out = output + units - 4;
            k.weights = weights + 2 * depth * full; /* 8 words a step of 4 */
            k.records = k.records_end;
            k.records_end += 16;
            run_groups(&k);
            k.weights = weights;
            k.records = p->records;
            k.records_end -= 16;
        }
        output += n * units;
        rows -= n;
    }
}

#else
typedef int ek_conv_dsp_unused; /* no DSP extension: the plain kernels run (ek_conv.c) */
#endif
