/* Convolutions a few output pixels at a time (ek_chunks.h). */
#include "ek_chunks.h"

#include "ek_conv_view.h"

#include <string.h> /* memcpy, memmove: word-wise, unlike ek_copy's byte loop */

void ek_conv_add_chunks(ek_conv_part part, const void *params, const ek_chunk_shape *shape,
                        const ek_binary_params *add, int32_t conv_first, int32_t chunk, const int8_t *input,
                        const int8_t *other, int8_t *output, int8_t *scratch)
{
    /* The ADD over one chunk: both operands and the output have the same shape, so a chunk
     * is one contiguous run of n * out_c elements of each. */
    ek_binary_params flat = *add;
    const int32_t rows = shape->flat ? 1 : shape->out_h;
    const int32_t width = shape->flat ? shape->out_h * shape->out_w : shape->out_w;
    const int32_t c = shape->out_c;
    int32_t k, oy, ox, n;
    for (k = 0; k < EK_MAX_DIMS; ++k) {
        flat.out_dims[k] = 1;
        flat.in1_strides[k] = k == EK_MAX_DIMS - 1;
        flat.in2_strides[k] = k == EK_MAX_DIMS - 1;
    }
    for (oy = 0; oy < rows; ++oy) {
        for (ox = 0; ox < width; ox += n) {
            const int32_t at = (oy * width + ox) * c;
            n = width - ox < chunk ? width - ox : chunk;
            part(params, input, oy, ox, n, scratch);
            flat.out_dims[EK_MAX_DIMS - 1] = n * c;
            if (conv_first) {
                ek_add(&flat, scratch, other + at, output + at);
            } else {
                ek_add(&flat, other + at, scratch, output + at);
            }
        }
    }
}

void ek_conv_in_place_chunks(ek_conv_part part, const void *params, const ek_chunk_shape *shape, int32_t chunk,
                             int8_t *data, int8_t *scratch)
{
    const int32_t pixels = shape->out_h * shape->out_w;
    int32_t q, n;
    for (q = 0; q < pixels; q += n) {
        n = pixels - q < chunk ? pixels - q : chunk;
        memcpy(scratch, data + q * shape->in_c, (size_t)(n * shape->in_c));
        /* the chunk's view reads pixel 0 of the copy on */
        part(params, scratch, 0, 0, n, data + q * shape->out_c);
    }
}

void ek_expand_depthwise(ek_conv_part expand, const void *expand_params, ek_depthwise_row depthwise,
                         const void *depthwise_params, const ek_line_shape *shape, const int8_t *input,
                         int8_t *output, int8_t *lines)
{
    const int32_t row_bytes = shape->in_w * shape->mid_c;
    int32_t base = 0, count = 0; /* `lines` holds input rows base .. base + count - 1 */
    int32_t oy;
    for (oy = 0; oy < shape->out_h; ++oy) {
        const int32_t y0 = oy * shape->stride_h - shape->pad_top;
        const int32_t lo = y0 < 0 ? 0 : y0;
        const int32_t end = y0 + shape->span;
        const int32_t hi = end < shape->in_h ? end : shape->in_h;
        if (lo > base) { /* rows above the window are done with: the rest move down */
            const int32_t drop = lo - base < count ? lo - base : count;
            if (drop > 0 && count > drop) {
                memmove(lines, lines + drop * row_bytes, (size_t)((count - drop) * row_bytes));
            }
            count -= drop;
            base = count > 0 ? base + drop : lo;
        }
        while (base + count < hi) { /* the 1x1's rows the window reaches, over the whole row */
            expand(expand_params, input, 0, (base + count) * shape->in_w, shape->in_w, lines + count * row_bytes);
            ++count;
        }
        depthwise(depthwise_params, lines, base, count, oy, output + oy * shape->out_row);
    }
}

void ek_depthwise_conv2d_row(const void *params, const int8_t *rows, int32_t base, int32_t count, int32_t oy,
                             int8_t *out)
{
    const ek_conv_params *p = (const ek_conv_params *)params;
    ek_conv_params v = *p;
    EK_VIEW_BAND(v, p, base, count, oy, 1);
    ek_depthwise_conv2d(&v, rows, out);
}

/* A view of `p` computing output pixels (oy, ox .. ox + n - 1) of one image. */
void ek_conv2d_part(const void *params, const int8_t *input, int32_t oy, int32_t ox, int32_t n, int8_t *out)
{
    const ek_conv_params *p = (const ek_conv_params *)params;
    ek_conv_params v = *p;
    EK_VIEW_PART(v, p, input, oy, ox, n);
    ek_conv2d(&v, input, out);
}

void ek_conv2d_band(const void *params, const int8_t *input, int32_t in_base, int32_t in_count, int32_t out_base,
                    int32_t out_count, int8_t *out)
{
    const ek_conv_params *p = (const ek_conv_params *)params;
    ek_conv_params v = *p;
    EK_VIEW_BAND(v, p, in_base, in_count, out_base, out_count);
    ek_conv2d(&v, input, out);
}

void ek_depthwise_conv2d_band(const void *params, const int8_t *input, int32_t in_base, int32_t in_count,
                              int32_t out_base, int32_t out_count, int8_t *out)
{
    const ek_conv_params *p = (const ek_conv_params *)params;
    ek_conv_params v = *p;
    EK_VIEW_BAND(v, p, in_base, in_count, out_base, out_count);
    ek_depthwise_conv2d(&v, input, out);
}

static ek_chunk_shape conv_shape(const ek_conv_params *p)
{
    ek_chunk_shape s;
    EK_CHUNK_SHAPE(s, p, EK_VIEW_POINTWISE(p));
    return s;
}

void ek_conv2d_add(const ek_conv_params *p, const ek_binary_params *add, int32_t conv_first, int32_t chunk,
                   const int8_t *input, const int8_t *other, int8_t *output, int8_t *scratch)
{
    const ek_chunk_shape s = conv_shape(p);
    ek_conv_add_chunks(ek_conv2d_part, p, &s, add, conv_first, chunk, input, other, output, scratch);
}

void ek_conv2d_in_place(const ek_conv_params *p, int32_t chunk, int8_t *data, int8_t *scratch)
{
    const ek_chunk_shape s = conv_shape(p);
    ek_conv_in_place_chunks(ek_conv2d_part, p, &s, chunk, data, scratch);
}
