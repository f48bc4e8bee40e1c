/* REDUCE_MAX on int8 (TFLite Micro's ReduceGeneric with the max reducer, from -128). SUM runs
 * on ek_mean with its own multiplier. */
#include "ek_kernels.h"

void ek_reduce_max(const ek_reduce_params *p, const int8_t *input, int8_t *output)
{
    int32_t o, i, r;
    for (o = 0; o < p->outer; ++o) {
        const int8_t *block = input + o * p->reduce * p->inner;
        for (i = 0; i < p->inner; ++i) {
            int8_t best = -128;
            for (r = 0; r < p->reduce; ++r) {
                const int8_t value = block[r * p->inner + i];
                best = value > best ? value : best;
            }
            output[o * p->inner + i] = best;
        }
    }
}
