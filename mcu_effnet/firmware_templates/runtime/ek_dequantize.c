/* DEQUANTIZE int8 -> float32, as TFLite Micro's dequantize.cc.
 *
 * TFLite Micro computes (float)((double)scale * (x - zero_point)). The exact product of a float32
 * scale (24-bit mantissa) and an integer below 2^9 fits in a double, so its float32 rounding is
 * the correctly rounded product, which is what one float32 multiplication gives: the same bits,
 * without double arithmetic (soft-float on every Cortex-M without a double FPU). */
#include "ek_kernels.h"

void ek_dequantize(const ek_dequantize_params *p, const int8_t *input, float *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        output[i] = p->scale * (float)((int32_t)input[i] - p->zero_point);
    }
}
