/* FULLY_CONNECTED, int8, per-tensor or per-channel requantization. */
#include "ek_kernels.h"
#include "ek_fixedpoint.h"

#include <stddef.h>

void ek_fully_connected(const ek_fc_params *p, const int8_t *input, int8_t *output)
{
    int32_t r, u, d;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *row = input + r * p->depth;
        for (u = 0; u < p->units; ++u) {
            const int8_t *w = p->weights + u * p->depth;
            const int32_t k = p->per_channel ? u : 0;
            int32_t acc = 0;
            for (d = 0; d < p->depth; ++d) {
                acc += ((int32_t)row[d] + p->in_offset) * (int32_t)w[d];
            }
            if (p->bias != NULL) {
                acc += p->bias[u];
            }
            acc = ek_mbqm(acc, p->multiplier[k], p->shift[k]) + p->out_offset;
            output[r * p->units + u] = (int8_t)ek_clamp(acc, p->act_min, p->act_max);
        }
    }
}
