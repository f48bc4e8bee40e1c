/* FULLY_CONNECTED, int8, per-tensor or per-channel requantization.
 *
 * acc = bias[u] + sum((x + in_offset) * w) as in TFLite Micro's reference, with the offset
 * folded into `bias` by the generator (bias + in_offset * sum of the unit's weights). */
#include "ek_kernels.h"
#include "ek_fixedpoint.h"

void ek_fully_connected(const ek_fc_params *p, const int8_t *input, int8_t *output)
{
    int32_t r, u, d;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *row = input + r * p->depth;
        for (u = 0; u < p->units; ++u) {
            const int8_t *w = p->weights + u * p->depth;
            const int32_t k = p->per_channel ? u : 0;
            int32_t acc = p->bias[u];
            d = 0;
            for (; d + 4 <= p->depth; d += 4) {
                acc += (int32_t)row[d] * w[d] + (int32_t)row[d + 1] * w[d + 1] + (int32_t)row[d + 2] * w[d + 2] +
                       (int32_t)row[d + 3] * w[d + 3];
            }
            for (; d < p->depth; ++d) {
                acc += (int32_t)row[d] * w[d];
            }
            acc = ek_multiply_by_quantized_multiplier(acc, p->multiplier[k], p->shift[k]) + p->out_offset;
            output[r * p->units + u] = (int8_t)ek_clamp(acc, p->act_min, p->act_max);
        }
    }
}
