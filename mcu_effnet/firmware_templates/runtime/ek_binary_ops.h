/* The per-element arithmetic of ADD, SUB and MUL (TFLite Micro's reference integer kernels),
 * shared by the int8 kernels (ek_elementwise.c, ek_arithmetic.c) and the int16 ones
 * (ek_int16.c): the values arrive widened to int32, the struct carries the type's lift and
 * clamp; and the broadcasting loop they (and MAXIMUM, MINIMUM, PRELU) run in. Internal to the
 * kernels. */
#ifndef EK_BINARY_OPS_H
#define EK_BINARY_OPS_H

#include <stdint.h>

#include "ek_fixedpoint.h"
#include "ek_kernels.h"

/* ADD: both inputs lifted by left_shift bits (20 for int8, 15 for int16) and brought to a
 * common scale, summed, rescaled to the output. */
static inline int32_t ek_add_one(const ek_binary_params *p, int32_t a, int32_t b)
{
    const int32_t shifted1 = ek_shl32(a + p->in1_offset, p->left_shift);
    const int32_t shifted2 = ek_shl32(b + p->in2_offset, p->left_shift);
    const int32_t scaled1 = ek_multiply_by_quantized_multiplier(shifted1, p->in1_multiplier, p->in1_shift);
    const int32_t scaled2 = ek_multiply_by_quantized_multiplier(shifted2, p->in2_multiplier, p->in2_shift);
    const int32_t raw = ek_multiply_by_quantized_multiplier(ek_add32(scaled1, scaled2), p->out_multiplier, p->out_shift) + p->out_offset;
    return ek_clamp(raw, p->act_min, p->act_max);
}

/* SUB: ADD's arithmetic with the scaled second input subtracted. */
static inline int32_t ek_sub_one(const ek_binary_params *p, int32_t a, int32_t b)
{
    const int32_t shifted1 = ek_shl32(a + p->in1_offset, p->left_shift);
    const int32_t shifted2 = ek_shl32(b + p->in2_offset, p->left_shift);
    const int32_t scaled1 = ek_multiply_by_quantized_multiplier(shifted1, p->in1_multiplier, p->in1_shift);
    const int32_t scaled2 = ek_multiply_by_quantized_multiplier(shifted2, p->in2_multiplier, p->in2_shift);
    const int32_t raw = ek_multiply_by_quantized_multiplier(ek_sub32(scaled1, scaled2), p->out_multiplier, p->out_shift) + p->out_offset;
    return ek_clamp(raw, p->act_min, p->act_max);
}

/* MUL: the offset inputs multiplied (|.| <= 2^30 for int16, 2^16 for int8), requantized once. */
static inline int32_t ek_mul_one(const ek_binary_params *p, int32_t a, int32_t b)
{
    const int32_t product = (a + p->in1_offset) * (b + p->in2_offset);
    const int32_t raw = ek_multiply_by_quantized_multiplier(product, p->out_multiplier, p->out_shift) + p->out_offset;
    return ek_clamp(raw, p->act_min, p->act_max);
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

#endif /* EK_BINARY_OPS_H */
