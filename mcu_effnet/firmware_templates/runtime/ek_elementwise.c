/* ADD and MUL on int8 with broadcasting (TFLite Micro's reference integer kernels).
 *
 * ADD brings both inputs to a common scale with `left_shift` bits of headroom, sums them
 * and rescales to the output; MUL multiplies the offset inputs and requantizes once. */
#include "ek_kernels.h"
#include "ek_fixedpoint.h"

static inline int32_t add_one(const ek_binary_params *p, int32_t a, int32_t b)
{
    const int32_t shifted1 = ek_shl32(a + p->in1_offset, p->left_shift);
    const int32_t shifted2 = ek_shl32(b + p->in2_offset, p->left_shift);
    const int32_t scaled1 = ek_multiply_by_quantized_multiplier(shifted1, p->in1_multiplier, p->in1_shift);
    const int32_t scaled2 = ek_multiply_by_quantized_multiplier(shifted2, p->in2_multiplier, p->in2_shift);
    const int32_t raw = ek_multiply_by_quantized_multiplier(ek_add32(scaled1, scaled2), p->out_multiplier, p->out_shift) + p->out_offset;
    return ek_clamp(raw, p->act_min, p->act_max);
}

static inline int32_t mul_one(const ek_binary_params *p, int32_t a, int32_t b)
{
    const int32_t product = (a + p->in1_offset) * (b + p->in2_offset);
    const int32_t raw = ek_multiply_by_quantized_multiplier(product, p->out_multiplier, p->out_shift) + p->out_offset;
    return ek_clamp(raw, p->act_min, p->act_max);
}

/* Both kernels walk the output in order; each input advances by its own (possibly zero)
 * strides. The loop nest is written out twice so the per-element arithmetic inlines. */
void ek_add(const ek_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output)
{
    const int32_t *d = p->out_dims;
    const int32_t *s1 = p->in1_strides;
    const int32_t *s2 = p->in2_strides;
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < d[0]; ++i0) {
        for (i1 = 0; i1 < d[1]; ++i1) {
            for (i2 = 0; i2 < d[2]; ++i2) {
                const int8_t *a = in1 + i0 * s1[0] + i1 * s1[1] + i2 * s1[2];
                const int8_t *b = in2 + i0 * s2[0] + i1 * s2[1] + i2 * s2[2];
                for (i3 = 0; i3 < d[3]; ++i3) {
                    *output++ = (int8_t)add_one(p, a[i3 * s1[3]], b[i3 * s2[3]]);
                }
            }
        }
    }
}

void ek_mul(const ek_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output)
{
    const int32_t *d = p->out_dims;
    const int32_t *s1 = p->in1_strides;
    const int32_t *s2 = p->in2_strides;
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < d[0]; ++i0) {
        for (i1 = 0; i1 < d[1]; ++i1) {
            for (i2 = 0; i2 < d[2]; ++i2) {
                const int8_t *a = in1 + i0 * s1[0] + i1 * s1[1] + i2 * s1[2];
                const int8_t *b = in2 + i0 * s2[0] + i1 * s2[1] + i2 * s2[2];
                for (i3 = 0; i3 < d[3]; ++i3) {
                    *output++ = (int8_t)mul_one(p, a[i3 * s1[3]], b[i3 * s2[3]]);
                }
            }
        }
    }
}
