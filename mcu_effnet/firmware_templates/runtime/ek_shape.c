/* Ops that only move int8 values: PAD, CONCATENATION and a plain copy. */
#include "ek_kernels.h"

void ek_pad(const ek_pad_params *p, const int8_t *input, int8_t *output)
{
    int32_t out_dims[EK_MAX_DIMS];
    int32_t i0, i1, i2, i3, k;
    const int8_t fill = (int8_t)p->pad_value;
    for (k = 0; k < EK_MAX_DIMS; ++k) {
        out_dims[k] = p->before[k] + p->in_dims[k] + p->after[k];
    }
    for (i0 = 0; i0 < out_dims[0]; ++i0) {
        const int32_t j0 = i0 - p->before[0];
        for (i1 = 0; i1 < out_dims[1]; ++i1) {
            const int32_t j1 = i1 - p->before[1];
            for (i2 = 0; i2 < out_dims[2]; ++i2) {
                const int32_t j2 = i2 - p->before[2];
                const int inside = j0 >= 0 && j0 < p->in_dims[0] && j1 >= 0 && j1 < p->in_dims[1] && j2 >= 0 &&
                                   j2 < p->in_dims[2];
                for (i3 = 0; i3 < out_dims[3]; ++i3) {
                    const int32_t j3 = i3 - p->before[3];
                    if (inside && j3 >= 0 && j3 < p->in_dims[3]) {
                        *output++ = input[((j0 * p->in_dims[1] + j1) * p->in_dims[2] + j2) * p->in_dims[3] + j3];
                    } else {
                        *output++ = fill;
                    }
                }
            }
        }
    }
}

void ek_concatenation(int32_t outer, int32_t count, const int8_t *const *inputs, const int32_t *sizes,
                      int8_t *output)
{
    int32_t o, i, k;
    for (o = 0; o < outer; ++o) {
        for (i = 0; i < count; ++i) {
            const int8_t *src = inputs[i] + o * sizes[i];
            for (k = 0; k < sizes[i]; ++k) {
                *output++ = src[k];
            }
        }
    }
}

void ek_copy(int32_t size, const int8_t *input, int8_t *output)
{
    int32_t i;
    if (input == output) {
        return;
    }
    for (i = 0; i < size; ++i) {
        output[i] = input[i];
    }
}
