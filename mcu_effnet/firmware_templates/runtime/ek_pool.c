/* AVERAGE_POOL_2D, MAX_POOL_2D and MEAN on int8 (TFLite Micro's reference integer kernels). */
#include "ek_kernels.h"
#include "ek_fixedpoint.h"

static int32_t max32(int32_t a, int32_t b) { return a > b ? a : b; }
static int32_t min32(int32_t a, int32_t b) { return a < b ? a : b; }

/* One window clipped to the input: [y_lo, y_hi) x [x_lo, x_hi). */
typedef struct {
    int32_t y_lo, y_hi, x_lo, x_hi;
} window;

static window clip(const ek_pool_params *p, int32_t oy, int32_t ox)
{
    window w;
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t x0 = ox * p->stride_w - p->pad_left;
    w.y_lo = max32(0, y0);
    w.y_hi = min32(p->in_h, y0 + p->f_h);
    w.x_lo = max32(0, x0);
    w.x_hi = min32(p->in_w, x0 + p->f_w);
    return w;
}

void ek_average_pool2d(const ek_pool_params *p, const int8_t *input, int8_t *output)
{
    const int32_t c_n = p->channels;
    const int32_t in_row = p->in_w * c_n;
    int32_t b, oy, ox, c, y, x;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                const window w = clip(p, oy, ox);
                const int32_t count = (w.y_hi - w.y_lo) * (w.x_hi - w.x_lo);
                for (c = 0; c < c_n; ++c) {
                    int32_t acc = 0;
                    int32_t avg = 0;
                    /* pointers walk the window: 5 instructions a value (was 6), less code */
                    const int8_t *row = image + w.y_lo * in_row + w.x_lo * c_n + c;
                    for (y = w.y_hi - w.y_lo; y > 0; --y, row += in_row) {
                        const int8_t *px = row;
                        for (x = w.x_hi - w.x_lo; x > 0; --x, px += c_n) {
                            acc += *px;
                        }
                    }
                    if (count > 0) {
                        /* Halves away from zero; C's division truncates toward zero. */
                        avg = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    *output++ = (int8_t)ek_clamp(avg, p->act_min, p->act_max);
                }
            }
        }
    }
}

void ek_max_pool2d(const ek_pool_params *p, const int8_t *input, int8_t *output)
{
    const int32_t c_n = p->channels;
    int32_t b, oy, ox, c, y, x;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *image = input + b * p->in_h * p->in_w * c_n;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                const window w = clip(p, oy, ox);
                for (c = 0; c < c_n; ++c) {
                    int32_t peak = -128;
                    for (y = w.y_lo; y < w.y_hi; ++y) {
                        for (x = w.x_lo; x < w.x_hi; ++x) {
                            peak = max32(peak, image[(y * p->in_w + x) * c_n + c]);
                        }
                    }
                    *output++ = (int8_t)ek_clamp(peak, p->act_min, p->act_max);
                }
            }
        }
    }
}

void ek_mean(const ek_mean_params *p, const int8_t *input, int8_t *output)
{
    const int32_t zp_total = p->in_zero_point * p->reduce;
    int32_t o, i, r;
    for (o = 0; o < p->outer; ++o) {
        const int8_t *block = input + o * p->reduce * p->inner;
        for (i = 0; i < p->inner; ++i) {
            int32_t sum = 0;
            int32_t value;
            for (r = 0; r < p->reduce; ++r) {
                sum += block[r * p->inner + i];
            }
            value = ek_multiply_by_quantized_multiplier(ek_sub32(sum, zp_total), p->multiplier, p->shift) + p->out_zero_point;
            output[o * p->inner + i] = (int8_t)ek_clamp(value, -128, 127);
        }
    }
}
