/* RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR (TFLite Micro's integer path). The generator
 * computes which input rows and columns each output row and column reads (and, bilinear, the
 * fraction in 1/1024); the kernels only index and, bilinear, weigh. */
#include "ek_kernels.h"

void ek_resize_nearest(const ek_resize_params *p, const int8_t *input, int8_t *output)
{
    const int32_t pixel = p->depth * p->elem_size;
    int32_t b, y, x, k;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * p->in_w * pixel;
        for (y = 0; y < p->out_h; ++y) {
            const int8_t *row = image + p->rows[y] * p->in_w * pixel;
            for (x = 0; x < p->out_w; ++x) {
                const int8_t *src = row + p->cols[x] * pixel;
                for (k = 0; k < pixel; ++k) {
                    *output++ = src[k];
                }
            }
        }
    }
}

void ek_resize_bilinear(const ek_resize_params *p, const int8_t *input, int8_t *output)
{
    /* rows and cols hold (lower, upper, fraction) triples. With fractions in [-512, 1536] and
     * int8 values the Q20 sum stays below 2^30 in magnitude: int32 is enough. */
    const int32_t one = 1 << 10;
    const int32_t line = p->in_w * p->depth;
    int32_t b, y, x, c;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * line;
        for (y = 0; y < p->out_h; ++y) {
            const int8_t *r0 = image + p->rows[3 * y] * line;
            const int8_t *r1 = image + p->rows[3 * y + 1] * line;
            const int32_t fy = p->rows[3 * y + 2];
            for (x = 0; x < p->out_w; ++x) {
                const int32_t c0 = p->cols[3 * x] * p->depth;
                const int32_t c1 = p->cols[3 * x + 1] * p->depth;
                const int32_t fx = p->cols[3 * x + 2];
                for (c = 0; c < p->depth; ++c) {
                    const int32_t sum = r0[c0 + c] * (one - fy) * (one - fx) + r1[c0 + c] * fy * (one - fx) +
                                        r0[c1 + c] * (one - fy) * fx + r1[c1 + c] * fy * fx;
                    /* half away from zero, then C's division toward zero */
                    *output++ = (int8_t)((sum + (sum > 0 ? (1 << 19) : -(1 << 19))) / (1 << 20));
                }
            }
        }
    }
}
