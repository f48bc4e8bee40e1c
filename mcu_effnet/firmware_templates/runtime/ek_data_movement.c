/* Ops that move values without arithmetic, over any element size: TRANSPOSE, SLICE and
 * STRIDED_SLICE as one gather, SPLIT / SPLIT_V / UNPACK as one block split. */
#include "ek_kernels.h"

static void copy_element(int32_t size, const int8_t *from, int8_t *to)
{
    int32_t b;
    for (b = 0; b < size; ++b) {
        to[b] = from[b];
    }
}

void ek_gather(const ek_gather_params *p, const int8_t *input, int8_t *output)
{
    /* An odometer over the output's dims: `offset` follows the input element (in elements,
     * strides may be negative), the output is written in order. */
    int32_t index[EK_GATHER_DIMS] = {0};
    int32_t total = 1, n, k;
    int32_t offset = p->start;
    const int32_t last = EK_GATHER_DIMS - 1;
    const int32_t elem = p->elem_size;
    for (k = 0; k < EK_GATHER_DIMS; ++k) {
        total *= p->dims[k];
    }
    for (n = 0; n < total; ++n) {
        copy_element(elem, input + offset * elem, output);
        output += elem;
        offset += p->strides[last];
        for (k = last; k > 0 && ++index[k] == p->dims[k]; --k) {
            index[k] = 0;
            /* back to the start of axis k, one step on axis k - 1 */
            offset += p->strides[k - 1] - p->dims[k] * p->strides[k];
        }
        if (k == 0) {
            ++index[0];
        }
    }
}

void ek_split(int32_t outer, int32_t count, const int8_t *input, const int32_t *sizes, int8_t *const *outputs)
{
    int32_t o, i, k;
    for (o = 0; o < outer; ++o) {
        for (i = 0; i < count; ++i) {
            int8_t *dst = outputs[i] + o * sizes[i];
            for (k = 0; k < sizes[i]; ++k) {
                dst[k] = *input++;
            }
        }
    }
}
