/* SUB, MAXIMUM, MINIMUM and PRELU on int8 with broadcasting (TFLite Micro's reference kernels).
 *
 * SUB is ADD's arithmetic with the scaled second input subtracted; MAXIMUM and MINIMUM compare
 * raw codes; PRELU rescales x >= 0 with one multiplier and x * alpha with another. */
#include "ek_kernels.h"
#include "ek_binary_ops.h"
#include "ek_fixedpoint.h"

static inline int32_t prelu_one(const ek_prelu_params *p, int32_t x, int32_t alpha)
{
    const int32_t value = x + p->in_offset;
    const int32_t scaled = value >= 0
        ? ek_multiply_by_quantized_multiplier(value, p->identity_multiplier, p->identity_shift)
        : ek_multiply_by_quantized_multiplier(value * (alpha + p->alpha_offset), p->alpha_multiplier, p->alpha_shift);
    return ek_clamp(scaled + p->out_offset, -128, 127);
}

void ek_sub(const ek_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output)
{
    EK_BROADCAST_LOOP(int8_t, p->out_dims, p->in1_strides, p->in2_strides, in1, in2, output, ek_sub_one(p, va, vb));
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
