/* 1x1 CONV_2D over a shallow input (in_c 4, 8 or 12) with the DSP extension.
 *
 * A narrow layer (a MobileNet's 8 -> 16 or 8 -> 48 expansion) does few MACs per output pixel, so
 * the k x k kernel's per-pixel gather and call overhead outweighs its multiply-accumulates
 * (measured on qemu-m4: 4 instructions per MAC at 8 -> 16). Here a pixel's in_c inputs are
 * widened once, input offset added (SXTAB16, as the k x k kernel's gather does), into at most
 * six registers of halfword pairs, and every group of four output channels runs over them
 * with the k x k kernel's weight words and records (ek_conv_dsp.h; dsp_layout.conv_layout with a
 * 1x1 window): per step of four inputs, eight SMLADs against eight weight words. The same
 * integers as the reference in another order, bit for bit; 2 * acc into the requantization.
 */
#include "ek_conv_dsp.h"

#if defined(__ARM_FEATURE_DSP) || defined(EK_ACLE_EMULATION)

#include "ek_dsp.h"
#include "ek_requant_dsp.h"

typedef struct {
    const uint32_t *weights;
    const int32_t *records;
    int32_t groups, tail; /* full groups of four output channels; channels past them */
    int32_t off2;         /* the input offset in both halfwords */
    int32_t round_offset; /* 1 + 2 * (out_offset + 128), see requantize_u8 */
    uint32_t lo4, hi4;    /* act_min + 128 and act_max + 128 in four bytes */
} narrow_call;

/* Input pairs V0 (x[k], x[k+2]) and V1 (x[k+1], x[k+3]) of one step against its eight weight words. */
#define EK_NARROW_STEP(V0, V1)                                                                             \
    do {                                                                                                   \
        a0 = __smlad(V0, (int32_t)w[0], a0);                                                               \
        a1 = __smlad(V0, (int32_t)w[1], a1);                                                               \
        a2 = __smlad(V0, (int32_t)w[2], a2);                                                               \
        a3 = __smlad(V0, (int32_t)w[3], a3);                                                               \
        a0 = __smlad(V1, (int32_t)w[4], a0);                                                               \
        a1 = __smlad(V1, (int32_t)w[5], a1);                                                               \
        a2 = __smlad(V1, (int32_t)w[6], a2);                                                               \
        a3 = __smlad(V1, (int32_t)w[7], a3);                                                               \
        w += 8;                                                                                            \
    } while (0)

/* One output pixel from its input `x`, `steps` (1..3, a constant after inlining) steps of four:
 * the widened inputs are scalars written out step by step so that they stay in registers. */
EK_DSP_INLINE void narrow_pixel(const narrow_call *k, const int8_t *x, int8_t *out, int32_t steps)
{
    const int32_t off2 = k->off2;
    const uint32_t u0 = ek_load4(x);
    const uint32_t u1 = steps > 1 ? ek_load4(x + 4) : 0u;
    const uint32_t u2 = steps > 2 ? ek_load4(x + 8) : 0u;
    const int32_t v0 = __sxtab16(off2, (int32_t)u0), v1 = ek_sxtab16_ror8(off2, u0);
    const int32_t v2 = __sxtab16(off2, (int32_t)u1), v3 = ek_sxtab16_ror8(off2, u1);
    const int32_t v4 = __sxtab16(off2, (int32_t)u2), v5 = ek_sxtab16_ror8(off2, u2);
    const uint32_t *w = k->weights;
    const int32_t *rec = k->records;
    int32_t g, j;
    for (g = k->groups + (k->tail > 0); g > 0; --g, rec += 12) {
        int32_t a0 = rec[0], a1 = rec[1], a2 = rec[2], a3 = rec[3];
        EK_NARROW_STEP(v0, v1);
        if (steps > 1) {
            EK_NARROW_STEP(v2, v3);
        }
        if (steps > 2) {
            EK_NARROW_STEP(v4, v5);
        }
        if (g > 1 || k->tail == 0) {
            store4(out,
                   requantize_u8(a0, rec[4], rec[8], k->round_offset) |
                       requantize_u8(a1, rec[5], rec[9], k->round_offset) << 8 |
                       requantize_u8(a2, rec[6], rec[10], k->round_offset) << 16 |
                       requantize_u8(a3, rec[7], rec[11], k->round_offset) << 24,
                   k->lo4, k->hi4);
            out += 4;
        } else { /* the last 1 to 3 channels (their group's other weights are zero) */
            const int32_t acc[3] = {a0, a1, a2};
            for (j = 0; j < k->tail; ++j) {
                out[j] = requantize1(acc[j], rec[4 + j], rec[8 + j], k->round_offset, k->lo4, k->hi4);
            }
        }
    }
}

/* The pixel loop, one instance per depth so that the inputs stay in registers. */
#define EK_NARROW_ROWS(STEPS)                                                                              \
    for (b = 0; b < p->batches; ++b) {                                                                     \
        for (oy = 0; oy < p->out_h; ++oy) {                                                                \
            const int8_t *x = input + ((b * p->in_h + oy * p->stride_h) * p->in_w) * p->in_c;              \
            for (ox = 0; ox < p->out_w; ++ox, x += x_step, output += p->out_c) {                           \
                narrow_pixel(&k, x, output, STEPS);                                                        \
            }                                                                                              \
        }                                                                                                  \
    }

void ek_conv2d_1x1_narrow_dsp(const ek_conv_dsp_params *p, const int8_t *input, int8_t *output)
{
    narrow_call k;
    const int32_t x_step = p->stride_w * p->in_c;
    int32_t b, oy, ox;
    k.weights = (const uint32_t *)p->weights;
    k.records = p->records;
    k.groups = p->out_c >> 2;
    k.tail = p->out_c & 3;
    k.off2 = (int32_t)(((uint32_t)p->in_offset & 0xFFFFu) * 0x10001u);
    k.round_offset = 1 + 2 * (p->out_offset + 128);
    k.lo4 = (uint32_t)(p->act_min + 128) * 0x01010101u;
    k.hi4 = (uint32_t)(p->act_max + 128) * 0x01010101u;
    switch (p->in_c >> 2) {
    case 1:
        EK_NARROW_ROWS(1)
        break;
    case 2:
        EK_NARROW_ROWS(2)
        break;
    default:
        EK_NARROW_ROWS(3)
        break;
    }
}

#else
typedef int ek_conv_narrow_dsp_unused; /* no DSP extension: the plain kernels run (ek_conv.c) */
#endif
