/* DEPTHWISE_CONV_2D (depth multiplier 1) with the DSP extension: four channels at a time.
 *
 * Per output pixel and group of four channels, each tap loads the four input bytes in one
 * 32-bit read and widens them to two pairs of halfwords with SXTAB16, adding the input offset
 * on the way: (x0 + off, x2 + off) and (x1 + off, x3 + off). The tap's four weights come in one
 * word too (laid out group by group at generation time, ek_conv_dsp.h) and widen into the same
 * lanes with SXTB16, so four SMLABB / SMLATT finish the tap: two loads, four extends, four MACs.
 * The pairs hold different channels, so SMLAD (which adds its two products) does not apply.
 * (Weights widened at generation time would save two extends a tap but double the depthwise
 * weights' flash, which tips large models off 1 MB parts: kept as int8.)
 *
 * The accumulator is TFLite Micro's: bias + sum over the taps inside the input of
 * (x + in_offset) * w (x + in_offset fits a halfword: |x + in_offset| <= 255), so the kernel
 * walks only the taps inside the input and the bias is the op's own (not folded). The same
 * integers in another order, modulo 2^32: bit for bit the reference. Requantization takes
 * 2 * acc (ek_requant_dsp.h).
 *
 * Memory: like the plain kernel it reads one output pixel's window and writes that pixel's
 * channels; the in-place variant keeps the plain kernel's row ring (ek_conv.c).
 *
 * A call with at least two 3x3 windows inside the input lays out a table of group records on the
 * stack (biases, requantize_k's multipliers, constants and shifts) and runs those windows through
 * one assembly loop over the groups (window3x3_k), four outputs clamped at once (clamp_k4): on
 * qemu-m4 VWW's 12x12x32 stride 2 4.86 -> 4.25 instructions per MAC.
 *
 * Wide 3x3 / 5x5 maps (stride_w 1 or 2) go to the channel-major path instead, which pairs taps
 * with SMLAD (ek_depthwise_rows_dsp.c; ek_depthwise_rows_width says where).
 */
#include "ek_conv_dsp.h"

#if defined(__ARM_FEATURE_DSP) || defined(EK_ACLE_EMULATION)

#include <string.h>

#if defined(__GNUC__) && !defined(__clang__)
/* gcc's first scheduling pass stretches the tap loops' live ranges until accumulators spill to
 * the stack inside them (measured on Cortex-M4: a 3-tap row of 45 instead of 34 instructions);
 * the second pass alone is enough here. */
#pragma GCC optimize("no-schedule-insns")
#endif

#include "ek_dsp.h"
#include "ek_requant_dsp.h"

/* The weight of channel r (0..3) of a group in a tap's word (byte r). */
static inline int32_t weight_lane(const uint32_t *word, int32_t r)
{
    return (int32_t)(int8_t)(uint8_t)((*word >> (8 * r)) & 0xFFu);
}

/* One tap for four channels: x advances by col_step, w by one word. */
#define EK_DW_TAP()                                                                                        \
    do {                                                                                                   \
        const uint32_t v_ = ek_load4(x);                                                                   \
        const int32_t even_ = __sxtab16(off2, (int32_t)v_); /* (x0, x2) + off */                           \
        const int32_t odd_ = ek_sxtab16_ror8(off2, v_);     /* (x1, x3) + off */                           \
        const int32_t w0_ = __sxtb16((int32_t)*w);          /* (w0, w2) */                                 \
        const int32_t w1_ = ek_sxtb16_ror8(*w);             /* (w1, w3) */                                 \
        x += col_step;                                                                                     \
        w += 1;                                                                                            \
        a0 = __smlabb(even_, w0_, a0);                                                                     \
        a2 = __smlatt(even_, w0_, a2);                                                                     \
        a1 = __smlabb(odd_, w1_, a1);                                                                      \
        a3 = __smlatt(odd_, w1_, a3);                                                                      \
    } while (0)

/* A 3x3 window lying wholly inside the input (dilation 1) for one group of four channels:
 * nine taps straight through, `x` at the window's top-left tap, `col` / `row` bytes between
 * columns / rows; `*w` advances by the group's nine weight words. In assembly on the target
 * (EK_DW3_ROW, inside window3x3_k's loop) because gcc keeps the group's pointers and accumulators
 * in more registers than the core has and spills around every window row (measured: 37
 * instructions a row of three taps instead of 30); the rows need 13 registers. Host builds run
 * the same taps in C (EK_DW3_WINDOW). */
#if defined(EK_ACLE_EMULATION)
#define EK_DW3_WINDOW(x_, col_, row_, w_, off2_, a0, a1, a2, a3)                                             \
    do {                                                                                                   \
        const int32_t off2 = (off2_), col_step = (col_);                                                   \
        const uint32_t *w = (w_);                                                                          \
        const int8_t *x;                                                                                   \
        int32_t ky_;                                                                                       \
        for (ky_ = 0; ky_ < 3; ++ky_) {                                                                    \
            x = (x_) + ky_ * (row_);                                                                       \
            EK_DW_TAP();                                                                                   \
            EK_DW_TAP();                                                                                   \
            EK_DW_TAP();                                                                                   \
        }                                                                                                  \
        (w_) = w;                                                                                          \
    } while (0)
#else
#define EK_DW3_TAP(ADDRESS)                                                                                \
    "ldr %[t0], " ADDRESS "\n\t"                                                                           \
    "ldr %[t2], [%[w]], #4\n\t"                                                                            \
    "sxtab16 %[t1], %[off], %[t0], ror #8\n\t"                                                             \
    "sxtab16 %[t0], %[off], %[t0]\n\t"                                                                     \
    "sxtb16 %[t3], %[t2], ror #8\n\t"                                                                      \
    "sxtb16 %[t2], %[t2]\n\t"                                                                              \
    "smlabb %[a0], %[t0], %[t2], %[a0]\n\t"                                                                \
    "smlatt %[a2], %[t0], %[t2], %[a2]\n\t"                                                                \
    "smlabb %[a1], %[t1], %[t3], %[a1]\n\t"                                                                \
    "smlatt %[a3], %[t1], %[t3], %[a3]\n\t"
#define EK_DW3_ROW                                                                                         \
    EK_DW3_TAP("[%[x]]") EK_DW3_TAP("[%[x], %[col]]") EK_DW3_TAP("[%[x], %[col], lsl #1]")
#endif

/* One group of four channels for window3x3_k, laid out once per call on the stack in the order
 * its loop reads them: the biases, then per channel requantize_k's multiplier m and constant
 * k = (1 + 2 * (out_offset - act_min)) << s (ek_requant_dsp.h, one LDRD), then the four shifts s
 * in one word (ASR by a register takes its bottom byte). */
typedef struct {
    int32_t bias[4];
    int32_t mk[8];
    uint32_t s4;
} dw_rec;

/* The groups a call's table holds: 52 B each, 3,328 B of stack (in a frame of its own, never
 * under the plane path's planes). Calls with more channels, or a shift above
 * EK_REQUANTIZE_K_MAX_SHIFT, run every pixel through pixel() (its 3x3 windows straight through in
 * C, requantize_u8's form). */
#define EK_DW_REC_GROUPS 64

/* What every pixel of one call shares (computed once per call). */
typedef struct {
    int32_t channels;
    int32_t row_step, col_step; /* bytes between window rows / columns (dilation included) */
    int32_t k_w, w_group;       /* taps per window row; weight words per group of 4 channels */
    int32_t off2;               /* the input offset in both halfwords */
    const uint32_t *weights;
    const int32_t *bias, *mult, *shift;
    int32_t round_offset; /* 1 + 2 * (out_offset + 128), see requantize_u8 */
    uint32_t lo4, hi4;    /* act_min + 128 and act_max + 128 in four bytes */
    const dw_rec *rec;    /* the groups' records for window3x3_k (NULL: no window3x3_k) */
    uint32_t sat4, shift4; /* clamp_k4's constants */
    /* 3x3, dilation 1, channels a multiple of 4: output columns [ox_lo, ox_hi) have their
     * window inside the input horizontally and take window3x3_k() when their rows are inside too
     * (else ox_lo = ox_hi = 0) */
    int32_t ox_lo, ox_hi;
} dw_call;

/* The groups of four channels of one pixel, with `TAPS_OF_A_ROW` the taps of one window row:
 * `first` is channel 0 of the first tap inside the input, `w_first` group 0's weights there. */
#define EK_DW_ROWS(TAPS_OF_A_ROW)                                                                          \
    do {                                                                                                   \
        int32_t ky = ny;                                                                                   \
        do {                                                                                               \
            const int8_t *x = row;                                                                         \
            TAPS_OF_A_ROW;                                                                                 \
            row += row_step;                                                                               \
            w += skip_w;                                                                                   \
        } while (--ky > 0);                                                                                \
    } while (0)

/* A whole 3x3 window: no loop at all (the weights run on: no skip between rows). */
#define EK_DW_ROWS_3X3()        \
    do {                        \
        const int8_t *x = row;  \
        EK_DW_TAPS_3();         \
        x = row + row_step;     \
        EK_DW_TAPS_3();         \
        x = row + 2 * row_step; \
        EK_DW_TAPS_3();         \
    } while (0)

#define EK_DW_GROUPS(ROWS)                                                                                 \
    for (c = 0; c + 4 <= channels; c += 4, w_first += k->w_group) {                                      \
        int32_t a0 = bias[c], a1 = bias[c + 1], a2 = bias[c + 2], a3 = bias[c + 3];                        \
        const int8_t *row = first + c;                                                                     \
        const uint32_t *w = w_first;                                                                       \
        ROWS;                                                                                              \
        {                                                                                                  \
            const int32_t *m_ = k->mult + c;                                                               \
            const int32_t *s_ = k->shift + c;                                                              \
            const int32_t r_ = k->round_offset;                                                            \
            store4(out + c,                                                                                \
                   requantize_u8(2 * a0, m_[0], s_[0], r_) |                                               \
                       requantize_u8(2 * a1, m_[1], s_[1], r_) << 8 |                                      \
                       requantize_u8(2 * a2, m_[2], s_[2], r_) << 16 |                                     \
                       requantize_u8(2 * a3, m_[3], s_[3], r_) << 24,                                      \
                   k->lo4, k->hi4);                                                                        \
        }                                                                                                  \
    }

#define EK_DW_TAPS_3() \
    EK_DW_TAP();       \
    EK_DW_TAP();       \
    EK_DW_TAP()
#define EK_DW_TAPS_5() \
    EK_DW_TAPS_3();    \
    EK_DW_TAP();       \
    EK_DW_TAP()
#define EK_DW_TAPS_N()                   \
    int32_t kx;                          \
    for (kx = nx; kx >= 2; kx -= 2) {    \
        EK_DW_TAP();                     \
        EK_DW_TAP();                     \
    }                                    \
    if (kx > 0) {                        \
        EK_DW_TAP();                     \
    }

/* One output pixel over the taps inside the input: `ny` window rows and `nx` columns from
 * `first` (channel 0 of the first such tap), whose weights start at word `w_first`. */
EK_DSP_INLINE void pixel(const dw_call *k, const int8_t *first, const uint32_t *w_first, int32_t ny, int32_t nx,
                         int8_t *out)
{
    const int32_t channels = k->channels;
    const int32_t row_step = k->row_step;
    const int32_t col_step = k->col_step;
    const int32_t skip_w = k->k_w - nx; /* weight words from a row's end to the next row */
    const int32_t off2 = k->off2;
    const int32_t *bias = k->bias;
    int32_t c;
    if (nx == 3 && ny == 3 && k->k_w == 3) {
        EK_DW_GROUPS(EK_DW_ROWS_3X3())
    } else if (nx == 3) {
        EK_DW_GROUPS(EK_DW_ROWS(EK_DW_TAPS_3()))
    } else if (nx == 5) {
        EK_DW_GROUPS(EK_DW_ROWS(EK_DW_TAPS_5()))
    } else {
        EK_DW_GROUPS(EK_DW_ROWS(EK_DW_TAPS_N()))
    }
    /* The last 1 to 3 channels one by one (a 32-bit read could leave the tensor). */
    for (; c < channels; ++c) {
        const int32_t r = c & 3;
        const int32_t off = (int32_t)(int16_t)(uint16_t)((uint32_t)off2 & 0xFFFFu);
        int32_t acc = bias[c];
        const int8_t *row = first + c;
        const uint32_t *w = w_first;
        int32_t ky, kx;
        for (ky = 0; ky < ny; ++ky, row += row_step, w += skip_w) {
            const int8_t *x = row;
            for (kx = 0; kx < nx; ++kx, x += col_step, w += 1) {
                acc += ((int32_t)*x + off) * weight_lane(w, r);
            }
        }
        out[c] = requantize1(2 * acc, k->mult[c], k->shift[c], k->round_offset, k->lo4, k->hi4);
    }
}

/* One output pixel whose 3x3 window lies wholly inside the input, every group of four channels
 * with the call's records (k->rec): the window's nine taps, the requantization in requantize_k's
 * form, the four bytes clamped at once (clamp_k4) and stored as one word. On the target one
 * assembly loop over the groups, 138 instructions a group (the C loop with requantize_u8's form
 * and store4 it replaces: about 170; noinline, as the loop takes every register): the
 * biases 2 (LDRD), the window's 92, the next group's window 2, the requantization 29 (the shift
 * word's LDR and 3 LSR; per channel LDRD of m and k, LSL for the doubled sum, SMMLAR, SUB of the
 * sign, ASR, USAT; the record's last ADD), 3 ORR, the clamp 4 (its constants loaded), the store 3
 * and the loop 3. The loop needs 14 registers (the window's 13 and the records' pointer): the
 * output pointer, its end and clamp_k4's constants stay in memory (stack slots). */
#if defined(EK_ACLE_EMULATION)
__attribute__((noinline)) static void window3x3_k(const dw_call *k, const int8_t *first, int8_t *out)
{
    const dw_rec *r = k->rec;
    const uint32_t *wg = k->weights;
    int8_t *const end = out + k->channels;
    for (; out < end; first += 4, out += 4, ++r) {
        int32_t a0 = r->bias[0], a1 = r->bias[1], a2 = r->bias[2], a3 = r->bias[3];
        uint32_t u;
        EK_DW3_WINDOW(first, k->col_step, k->row_step, wg, k->off2, a0, a1, a2, a3);
        u = requantize_k(2 * a0, r->mk[0], r->mk[1], (int32_t)(r->s4 & 0xFFu)) |
            requantize_k(2 * a1, r->mk[2], r->mk[3], (int32_t)((r->s4 >> 8) & 0xFFu)) << 8 |
            requantize_k(2 * a2, r->mk[4], r->mk[5], (int32_t)((r->s4 >> 16) & 0xFFu)) << 16 |
            requantize_k(2 * a3, r->mk[6], r->mk[7], (int32_t)(r->s4 >> 24)) << 24;
        u = clamp_k4(u, k->sat4, k->shift4);
        memcpy(out, &u, 4);
    }
}
#else
/* Accumulator A to its requantize_k byte with the record's next m, k (t0, t1; t2 the shift word,
 * its bottom byte this channel's s). */
#define EK_DW3_REQUANT(A)                                 \
    "ldrd %[t0], %[t1], [%[r]], #8\n\t"                   \
    "lsl %[" A "], %[" A "], #1\n\t"                      \
    "smmlar %[t0], %[" A "], %[t0], %[t1]\n\t"             \
    "sub %[t0], %[t0], %[" A "], lsr #31\n\t"              \
    "asr %[t0], %[t0], %[t2]\n\t"                         \
    "usat %[" A "], #8, %[t0], asr #1\n\t"
__attribute__((noinline)) static void window3x3_k(const dw_call *k, const int8_t *first, int8_t *out)
{
    const dw_rec *r = k->rec;
    const uint32_t *w = k->weights;
    const int32_t col = k->col_step, row = k->row_step, off = k->off2;
    int8_t *end = out + k->channels;
    uint32_t sat4 = k->sat4, shift4 = k->shift4;
    const int8_t *x = first;
    int32_t a0, a1, a2, a3, t0, t1, t2, t3;
    __asm__ volatile("1:\n\t"
                     "ldrd %[a0], %[a1], [%[r]], #8\n\t"
                     "ldrd %[a2], %[a3], [%[r]], #8\n\t" EK_DW3_ROW "add %[x], %[x], %[row]\n\t" EK_DW3_ROW
                     "add %[x], %[x], %[row]\n\t" EK_DW3_ROW
                     "sub %[x], %[x], %[row], lsl #1\n\t"
                     "add %[x], %[x], #4\n\t"
                     "ldr %[t2], [%[r], #32]\n\t" EK_DW3_REQUANT("a0") "lsr %[t2], %[t2], #8\n\t" EK_DW3_REQUANT("a1")
                     "lsr %[t2], %[t2], #8\n\t" EK_DW3_REQUANT("a2") "lsr %[t2], %[t2], #8\n\t" EK_DW3_REQUANT("a3")
                     "add %[r], %[r], #4\n\t"
                     "orr %[a0], %[a0], %[a1], lsl #8\n\t"
                     "orr %[a0], %[a0], %[a2], lsl #16\n\t"
                     "orr %[a0], %[a0], %[a3], lsl #24\n\t"
                     "ldr %[t0], %[sat4]\n\t"
                     "uqadd8 %[a0], %[a0], %[t0]\n\t"
                     "ldr %[t0], %[shift4]\n\t"
                     "uadd8 %[a0], %[a0], %[t0]\n\t"
                     "ldr %[t0], %[out]\n\t"
                     "str %[a0], [%[t0]], #4\n\t"
                     "str %[t0], %[out]\n\t"
                     "ldr %[t1], %[end]\n\t"
                     "cmp %[t0], %[t1]\n\t"
                     "bne 1b\n\t"
                     : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [x] "+r"(x), [w] "+r"(w),
                       [r] "+r"(r), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [out] "+m"(out)
                     : [col] "r"(col), [row] "r"(row), [off] "r"(off), [end] "m"(end), [sat4] "m"(sat4),
                       [shift4] "m"(shift4)
                     : "cc", "memory");
}
#endif

/* The window taps [*k0, k0 + n) along one axis that fall inside [0, size), for a window
 * starting at `start` with `taps` taps `dilation` apart. */
static int32_t clip(int32_t start, int32_t taps, int32_t dilation, int32_t size, int32_t *k0)
{
    int32_t lo = 0, hi = taps;
    while (lo < hi && start + lo * dilation < 0) {
        ++lo;
    }
    while (hi > lo && start + (hi - 1) * dilation >= size) {
        --hi;
    }
    *k0 = lo;
    return hi - lo;
}

/* One output row: window rows start at input row y0; `out` receives out_w pixels. */
static void output_row(const ek_depthwise_dsp_params *p, const dw_call *k, const int8_t *image, int32_t y0, int8_t *out)
{
    const int32_t channels = k->channels;
    const int32_t in_row = p->in_w * channels;
    const int32_t last = (p->k_w - 1) * p->dil_w;
    int32_t ky0, kx0, ox;
    const int32_t ny = clip(y0, p->k_h, p->dil_h, p->in_h, &ky0);
    const int8_t *row = ny > 0 ? image + (y0 + ky0 * p->dil_h) * in_row : image;
    const uint32_t *w_row = k->weights + ky0 * p->k_w;
    /* All three window rows inside: the columns in [ox_lo, ox_hi) take the straight-line path. */
    const int32_t fast_lo = ny == 3 ? k->ox_lo : 0, fast_hi = ny == 3 ? k->ox_hi : 0;
    if (fast_hi > fast_lo) {
        const int8_t *fast = row + (fast_lo * p->stride_w - p->pad_left) * channels;
        for (ox = fast_lo; ox < fast_hi; ++ox, fast += p->stride_w * channels) {
            window3x3_k(k, fast, out + ox * channels);
        }
    }
    for (ox = 0; ox < p->out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_left;
        if (ox == fast_lo && fast_hi > fast_lo) { /* done above */
            ox = fast_hi - 1;
            continue;
        }
        /* One call site, so pixel() inlines: the taps of this window inside the input. */
        const int8_t *first = row;
        const uint32_t *w_first = w_row;
        int32_t nx = 0;
        if (ny <= 0) { /* no window row inside the input: the bias alone */
        } else if (x0 >= 0 && x0 + last < p->in_w) { /* the whole window row inside */
            first += x0 * channels;
            nx = p->k_w;
        } else {
            nx = clip(x0, p->k_w, p->dil_w, p->in_w, &kx0);
            if (nx > 0) {
                first += (x0 + kx0 * p->dil_w) * channels;
                w_first += kx0;
            }
        }
        pixel(k, first, w_first, nx > 0 ? ny : 0, nx, out + ox * channels);
    }
}

/* How many of `out` output positions along one axis (windows starting at o * stride - pad) have
 * their 3-tap window inside [0, size). */
static int32_t inside3(int32_t out, int32_t stride, int32_t pad, int32_t size)
{
    const int32_t lo = (pad + stride - 1) / stride;
    int32_t hi = size - 3 + pad >= 0 ? (size - 3 + pad) / stride + 1 : 0;
    hi = hi < out ? hi : out;
    return hi > lo ? hi - lo : 0;
}

/* The call's group records for window3x3_k in `rec` (k->rec), where at least two 3x3 windows lie
 * inside the input (the table costs about 55 instructions a group, more than window3x3_k saves on
 * one window: measured on VWW's 3x3x256, one window of nine, 5.13 instructions per MAC through
 * pixel() and 5.32 with the table), the groups fit EK_DW_REC_GROUPS and every shift is at most
 * EK_REQUANTIZE_K_MAX_SHIFT; else k->rec = NULL and no pixel takes window3x3_k (k->ox_lo = ox_hi
 * = 0): pixel() runs them all. */
static void prepare_records(const ek_depthwise_dsp_params *p, dw_call *k, dw_rec *rec)
{
    const int32_t groups = p->in_c >> 2;
    const uint32_t out_k = (uint32_t)(1 + 2 * (p->out_offset - p->act_min));
    int32_t g, j;
    k->rec = NULL;
    k->sat4 = (255u - (uint32_t)(p->act_max - p->act_min)) * 0x01010101u;
    k->shift4 = (((uint32_t)p->act_min - (k->sat4 & 0xFFu)) & 0xFFu) * 0x01010101u;
    if (groups > EK_DW_REC_GROUPS ||
        (k->ox_hi - k->ox_lo) * inside3(p->out_h, p->stride_h, p->pad_top, p->in_h) * p->batches < 2) {
        k->ox_lo = k->ox_hi = 0;
        return;
    }
    for (g = 0; g < groups; ++g) {
        rec[g].s4 = 0;
        for (j = 0; j < 4; ++j) {
            const int32_t s = p->right_shift[4 * g + j];
            if (s > EK_REQUANTIZE_K_MAX_SHIFT) {
                k->ox_lo = k->ox_hi = 0;
                return;
            }
            rec[g].bias[j] = p->bias[4 * g + j];
            rec[g].mk[2 * j] = p->multiplier[4 * g + j];
            rec[g].mk[2 * j + 1] = (int32_t)(out_k << s);
            rec[g].s4 |= (uint32_t)s << (8 * j);
        }
    }
    k->rec = rec;
}

static void prepare(const ek_depthwise_dsp_params *p, dw_call *k, dw_rec *rec)
{
    k->channels = p->in_c;
    k->row_step = p->dil_h * p->in_w * p->in_c;
    k->col_step = p->dil_w * p->in_c;
    k->k_w = p->k_w;
    k->w_group = p->k_h * p->k_w;
    k->off2 = (int32_t)(((uint32_t)p->in_offset & 0xFFFFu) * 0x10001u);
    k->weights = (const uint32_t *)p->weights;
    k->bias = p->bias;
    k->mult = p->multiplier;
    k->shift = p->right_shift;
    k->round_offset = 1 + 2 * (p->out_offset + 128);
    k->lo4 = (uint32_t)(p->act_min + 128) * 0x01010101u;
    k->hi4 = (uint32_t)(p->act_max + 128) * 0x01010101u;
    k->ox_lo = k->ox_hi = 0;
    if (p->k_h == 3 && p->k_w == 3 && p->dil_h == 1 && p->dil_w == 1 && p->in_c % 4 == 0) {
        /* first column whose window starts inside: ox * stride >= pad_left; last one whose
         * window ends inside: ox * stride - pad_left + 2 < in_w */
        const int32_t lo = (p->pad_left + p->stride_w - 1) / p->stride_w;
        const int32_t hi = p->in_w - 3 + p->pad_left >= 0 ? (p->in_w - 3 + p->pad_left) / p->stride_w + 1 : 0;
        k->ox_lo = lo;
        k->ox_hi = hi < p->out_w ? hi : p->out_w;
        if (k->ox_hi < k->ox_lo) {
            k->ox_hi = k->ox_lo;
        }
    }
    prepare_records(p, k, rec);
}

static void four_channels(const ek_depthwise_dsp_params *p, const int8_t *input, int8_t *output);
static void four_channels_in_place(const ek_depthwise_dsp_params *p, int8_t *data, int8_t *scratch);

void ek_depthwise_conv2d_dsp(const ek_depthwise_dsp_params *p, const int8_t *input, int8_t *output)
{
    const int32_t width = EK_DEPTHWISE_ROWS_PATH ? ek_depthwise_rows_width(p) : 0;
    /* 3x3 stride 1 (some stride 2) maps whose padded channel plane fits the stack buffer: a channel's whole
     * plane at a time (measured on qemu-m4 24x24 3.8 instructions per MAC, the rows path 4.4) */
    if (EK_DEPTHWISE_PLANE_PATH && ek_depthwise_plane_fits(p)) {
        ek_depthwise_plane_dsp(p, input, output);
        return;
    }
    if (width > 0) { /* a channel at a time, taps paired along the rows (ek_depthwise_rows_dsp.c) */
        ek_depthwise_rows_dsp(p, width, input, output);
        return;
    }
    four_channels(p, input, output);
}

/* The four-channel kernel's call in a frame of its own: its records' table is on the stack only
 * while it runs (not under the plane path's planes). */
__attribute__((noinline)) static void four_channels(const ek_depthwise_dsp_params *p, const int8_t *input,
                                                    int8_t *output)
{
    const int32_t in_image = p->in_h * p->in_w * p->in_c;
    const int32_t out_row = p->out_w * p->out_c;
    dw_rec rec[EK_DW_REC_GROUPS];
    dw_call k;
    int32_t b, oy;
    prepare(p, &k, rec);
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy, output += out_row) {
            output_row(p, &k, input + b * in_image, oy * p->stride_h - p->pad_top, output);
        }
    }
}

void ek_depthwise_conv2d_in_place_dsp(const ek_depthwise_dsp_params *p, int8_t *data, int8_t *scratch)
{
    const int32_t width = EK_DEPTHWISE_ROWS_PATH ? ek_depthwise_rows_width(p) : 0;
    /* The whole-plane path copies a channel's plane before writing its outputs, which land on
     * that channel's own input bytes only. */
    if (EK_DEPTHWISE_PLANE_PATH && p->batches == 1 && p->out_h * p->out_w <= p->in_h * p->in_w &&
        ek_depthwise_plane_fits(p)) {
        ek_depthwise_plane_dsp(p, data, data);
        return;
    }
    /* The channel-major path needs no ring of output rows: a channel's input rows are in its own
     * ring before output rows overwrite them (ek_depthwise_rows_in_place). */
    if (width > 0 && ek_depthwise_rows_in_place(p)) {
        ek_depthwise_rows_dsp(p, width, data, data);
        return;
    }
    four_channels_in_place(p, data, scratch);
}

/* ek_depthwise_conv2d_in_place_dsp's four-channel kernel (a frame of its own, see four_channels):
 * the plain kernel's scheme (ek_depthwise_conv2d_in_place): output row r reads input rows from
 * r - pad_top on, so once it is computed into the ring, input row r - pad_top is dead and output
 * row r - pad_top moves from the ring into its place. */
__attribute__((noinline)) static void four_channels_in_place(const ek_depthwise_dsp_params *p, int8_t *data,
                                                             int8_t *scratch)
{
    const int32_t keep = p->pad_top + 1;
    const size_t row_bytes = (size_t)p->out_w * (size_t)p->out_c;
    dw_rec rec[EK_DW_REC_GROUPS];
    dw_call k;
    int32_t oy, r;
    prepare(p, &k, rec);
    for (oy = 0; oy < p->out_h; ++oy) {
        output_row(p, &k, data, oy - p->pad_top, scratch + (size_t)(oy % keep) * row_bytes);
        r = oy - p->pad_top;
        if (r >= 0) {
            memcpy(data + (size_t)r * row_bytes, scratch + (size_t)(r % keep) * row_bytes, row_bytes);
        }
    }
    for (r = p->out_h - p->pad_top; r < p->out_h; ++r) {
        if (r >= 0) {
            memcpy(data + (size_t)r * row_bytes, scratch + (size_t)(r % keep) * row_bytes, row_bytes);
        }
    }
}

#else
typedef int ek_depthwise_dsp_unused; /* no DSP extension: the plain kernels run (ek_conv.c) */
#endif
