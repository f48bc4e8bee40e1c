/* 1x1 CONV_2D and FULLY_CONNECTED with SMLAD: a matrix product of pixels (rows of `depth`
 * int8 values) by output channels, two pixels by two channels at a time.
 *
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

/* One matrix product: the weights, biases and requantization of `channels` output channels. */
typedef struct {
    const int32_t *weights; /* channel pairs, see ek_pointwise_dsp.h */
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t q_step; /* 1: a multiplier and shift per channel; 0: one for all */
    int32_t depth, channels;
    int32_t out_offset, act_min, act_max;
} ek_mm;

EK_DSP_INLINE int8_t out_value(const ek_mm *m, int32_t acc, int32_t c, int fast)
{
    const int32_t multiplier = m->multiplier[c * m->q_step];
    const int32_t shift = m->shift[c * m->q_step];
    if (fast) {
        return ek_dsp_requantize(acc, multiplier, shift, m->out_offset, m->act_min, m->act_max);
    }
    acc = ek_mbqm(acc, multiplier, shift) + m->out_offset;
    return (int8_t)ek_clamp(acc, m->act_min, m->act_max);
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

EK_DSP_INLINE void two_pixels(const ek_mm *m, const int8_t *x0, const int8_t *x1, int8_t *o0, int8_t *o1,
                              int fast)
{
    const int32_t blocks = m->depth >> 2;
    const int32_t tail = m->depth & 3;
    const int32_t *w = m->weights;
    int32_t c;
    for (c = 0; c < m->channels; c += 2) {
        const int second = c + 1 < m->channels;
        int32_t a00 = m->bias[c];
        int32_t a01 = second ? m->bias[c + 1] : 0;
        int32_t a10 = a00;
        int32_t a11 = a01;
        const int8_t *p0 = x0;
        const int8_t *p1 = x1;
        {
            const int32_t *const end = w + 2 * blocks;
            while (w != end) {
                const uint32_t u0 = ek_load4(p0);
                const uint32_t u1 = ek_load4(p1);
                p0 += 4;
                p1 += 4;
                EK_PW_STEP2(u0, u1);
            }
        }
        if (tail) {
            const uint32_t u0 = load_tail(p0, tail);
            const uint32_t u1 = load_tail(p1, tail);
            EK_PW_STEP2(u0, u1);
        }
        o0[c] = out_value(m, a00, c, fast);
        o1[c] = out_value(m, a10, c, fast);
        if (second) {
            o0[c + 1] = out_value(m, a01, c + 1, fast);
            o1[c + 1] = out_value(m, a11, c + 1, fast);
        }
    }
}

EK_DSP_INLINE void one_pixel(const ek_mm *m, const int8_t *x0, int8_t *o0, int fast)
{
    const int32_t blocks = m->depth >> 2;
    const int32_t tail = m->depth & 3;
    const int32_t *w = m->weights;
    int32_t c, j;
    for (c = 0; c < m->channels; c += 2) {
        const int second = c + 1 < m->channels;
        int32_t a00 = m->bias[c];
        int32_t a01 = second ? m->bias[c + 1] : 0;
        const int8_t *p0 = x0;
        for (j = blocks; j > 0; --j) {
            const uint32_t u0 = ek_load4(p0);
            p0 += 4;
            EK_PW_STEP1(u0);
        }
        if (tail) {
            const uint32_t u0 = load_tail(p0, tail);
            EK_PW_STEP1(u0);
        }
        o0[c] = out_value(m, a00, c, fast);
        if (second) {
            o0[c + 1] = out_value(m, a01, c + 1, fast);
        }
    }
}

/* `n` pixels `x_step` bytes apart, their outputs contiguous. */
EK_DSP_INLINE void pixels(const ek_mm *m, const int8_t *x, int32_t x_step, int8_t *o, int32_t n, int fast)
{
    for (; n >= 2; n -= 2) {
        two_pixels(m, x, x + x_step, o, o + m->channels, fast);
        x += 2 * x_step;
        o += 2 * m->channels;
    }
    if (n > 0) {
        one_pixel(m, x, o, fast);
    }
}

EK_DSP_INLINE void conv_1x1(const ek_conv_params *p, const int8_t *input, int8_t *output, int fast)
{
    const ek_mm m = {(const int32_t *)(const void *)p->weights, p->bias, p->multiplier, p->shift, 1,
                     p->in_c, p->out_c, p->out_offset, p->act_min, p->act_max};
    const int32_t in_row = p->in_w * p->in_c;
    int32_t b, oy;
    if (p->stride_h == 1 && p->stride_w == 1 && p->out_h == p->in_h && p->out_w == p->in_w) {
        /* every input pixel, in order: one matrix of batches * h * w rows */
        pixels(&m, input, p->in_c, output, p->batches * p->in_h * p->in_w, fast);
        return;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            pixels(&m, image + oy * p->stride_h * in_row, p->stride_w * p->in_c, output, p->out_w, fast);
            output += p->out_w * p->out_c;
        }
    }
}

EK_DSP_INLINE void fully_connected(const ek_fc_params *p, const int8_t *input, int8_t *output, int fast)
{
    const ek_mm m = {(const int32_t *)(const void *)p->weights, p->bias, p->multiplier, p->shift,
                     p->per_channel ? 1 : 0, p->depth, p->units, p->out_offset, p->act_min, p->act_max};
    pixels(&m, input, p->depth, output, p->rows, fast);
}

void ek_conv2d_1x1_dsp(const ek_conv_params *p, const int8_t *input, int8_t *output)
{
    conv_1x1(p, input, output, 0);
}

void ek_conv2d_1x1_dsp_fast(const ek_conv_params *p, const int8_t *input, int8_t *output)
{
    conv_1x1(p, input, output, 1);
}

void ek_fully_connected_dsp(const ek_fc_params *p, const int8_t *input, int8_t *output)
{
    fully_connected(p, input, output, 0);
}

void ek_fully_connected_dsp_fast(const ek_fc_params *p, const int8_t *input, int8_t *output)
{
    fully_connected(p, input, output, 1);
}
