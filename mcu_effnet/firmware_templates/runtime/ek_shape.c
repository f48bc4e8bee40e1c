/* Ops that only move values: PAD (int8 and int16), CONCATENATION and a plain copy. */
#include <string.h>

#include "ek_kernels.h"
#include "ek_int16.h"

/* PAD over elements of `size` bytes (1: int8, 2: int16), filled with pad_value in the same
 * type. Inlined into each kernel with a constant size, so the byte loops unroll. */
static inline void pad_elements(const ek_pad_params *p, const int8_t *input, int8_t *output, int32_t size)
{
    int32_t out_dims[EK_MAX_DIMS];
    int32_t i0, i1, i2, i3, k, byte;
    int8_t fill[2];
    if (size == 1) {
        fill[0] = (int8_t)p->pad_value;
    } else {
        const int16_t value = (int16_t)p->pad_value;
        memcpy(fill, &value, sizeof value);
    }
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
                    const int8_t *src = fill;
                    if (inside && j3 >= 0 && j3 < p->in_dims[3]) {
                        src = input + (((j0 * p->in_dims[1] + j1) * p->in_dims[2] + j2) * p->in_dims[3] + j3) * size;
                    }
                    for (byte = 0; byte < size; ++byte) {
                        *output++ = src[byte];
                    }
                }
            }
        }
    }
}

void ek_pad(const ek_pad_params *p, const int8_t *input, int8_t *output)
{
    pad_elements(p, input, output, 1);
}

void ek_pad_s16(const ek_pad_params *p, const int16_t *input, int16_t *output)
{
    pad_elements(p, (const int8_t *)(const void *)input, (int8_t *)(void *)output, 2);
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
