/* SUB, MAXIMUM, MINIMUM and PRELU on int8 with broadcasting, and SUB on int16 (16x8)
 * (TFLite Micro's reference kernels).
 *
 * SUB is ADD's arithmetic with the scaled second input subtracted; MAXIMUM and MINIMUM compare
 * raw codes; PRELU rescales x >= 0 with one multiplier and x * alpha with another. */
#include "ek_kernels.h"
#include "ek_fixedpoint.h"
#include "ek_int16.h"

static inline int32_t sub_one(const ek_binary_params *p, int32_t a, int32_t b)
{
    const int32_t shifted1 = ek_shl32(a + p->in1_offset, p->left_shift);
    const int32_t shifted2 = ek_shl32(b + p->in2_offset, p->left_shift);
    const int32_t scaled1 = ek_multiply_by_quantized_multiplier(shifted1, p->in1_multiplier, p->in1_shift);
    const int32_t scaled2 = ek_multiply_by_quantized_multiplier(shifted2, p->in2_multiplier, p->in2_shift);
    const int32_t raw = ek_multiply_by_quantized_multiplier(ek_sub32(scaled1, scaled2), p->out_multiplier, p->out_shift) + p->out_offset;
    return ek_clamp(raw, p->act_min, p->act_max);
}

static inline int32_t prelu_one(const ek_prelu_params *p, int32_t x, int32_t alpha)
{
    const int32_t value = x + p->in_offset;
    const int32_t scaled = value >= 0
        ? ek_multiply_by_quantized_multiplier(value, p->identity_multiplier, p->identity_shift)
        : ek_multiply_by_quantized_multiplier(value * (alpha + p->alpha_offset), p->alpha_multiplier, p->alpha_shift);
    return ek_clamp(scaled + p->out_offset, -128, 127);
}

/* The output walked in order over four dimensions; each input advances by its own (possibly
 * zero) strides. A macro so that each kernel's per-element expression inlines; T is the
 * element type. */
#define EK_BROADCAST_LOOP(T, dims, s1, s2, in1, in2, output, EXPR)                    \
    do {                                                                              \
        int32_t i0, i1, i2, i3;                                                       \
        for (i0 = 0; i0 < (dims)[0]; ++i0) {                                          \
            for (i1 = 0; i1 < (dims)[1]; ++i1) {                                      \
                for (i2 = 0; i2 < (dims)[2]; ++i2) {                                  \
                    const T *a = (in1) + i0 * (s1)[0] + i1 * (s1)[1] + i2 * (s1)[2];  \
                    const T *b = (in2) + i0 * (s2)[0] + i1 * (s2)[1] + i2 * (s2)[2];  \
                    for (i3 = 0; i3 < (dims)[3]; ++i3) {                              \
                        const int32_t va = a[i3 * (s1)[3]];                           \
                        const int32_t vb = b[i3 * (s2)[3]];                           \
                        *(output)++ = (T)(EXPR);                                      \
                    }                                                                 \
                }                                                                     \
            }                                                                         \
        }                                                                             \
    } while (0)

void ek_sub(const ek_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output)
{
    EK_BROADCAST_LOOP(int8_t, p->out_dims, p->in1_strides, p->in2_strides, in1, in2, output, sub_one(p, va, vb));
}

void ek_maximum(const ek_broadcast_params *p, const int8_t *in1, const int8_t *in2, int8_t *output)
{
    EK_BROADCAST_LOOP(int8_t, p->out_dims, p->in1_strides, p->in2_strides, in1, in2, output, va > vb ? va : vb);
}

void ek_minimum(const ek_broadcast_params *p, const int8_t *in1, const int8_t *in2, int8_t *output)
{
    EK_BROADCAST_LOOP(int8_t, p->out_dims, p->in1_strides, p->in2_strides, in1, in2, output, va < vb ? va : vb);
}

void ek_prelu(const ek_prelu_params *p, const int8_t *input, const int8_t *alpha, int8_t *output)
{
    EK_BROADCAST_LOOP(int8_t, p->out_dims, p->in_strides, p->alpha_strides, input, alpha, output, prelu_one(p, va, vb));
}

/* 16x8 SUB: the same arithmetic with the 2^15 lift Prepare chose (left_shift) and the int16
 * clamp in act_min / act_max; |x| * 2^15 < 2^31, so no int32 step overflows. */
void ek_sub_s16(const ek_binary_params *p, const int16_t *in1, const int16_t *in2, int16_t *output)
{
    EK_BROADCAST_LOOP(int16_t, p->out_dims, p->in1_strides, p->in2_strides, in1, in2, output, sub_one(p, va, vb));
}
