/* Convolutions run a few output pixels at a time, so a large tensor never exists whole:
 *
 * - CONV_2D with its residual ADD fused (`*_add`): output = ADD(conv(input), other) (or
 *   ADD(other, conv(input)) when the convolution is the ADD's second operand), computed `chunk`
 *   output pixels at a time into `scratch` (chunk * out_c bytes) and added at once. `output` may
 *   be `other`: the sum is written over the other operand, which each element is read before.
 *   Chunks run along one output row, or along the whole map for a 1x1 stride-1 convolution.
 * - a 1x1 stride-1 CONV_2D with out_c <= in_c over its own input (`*_in_place`): the inputs of
 *   `chunk` pixels are copied to `scratch` (chunk * in_c bytes), then their outputs written at
 *   the start of `data`; output pixel q ends before input pixel q + 1 starts.
 *
 * - a 1x1 stride-1 CONV_2D feeding a DEPTHWISE_CONV_2D (`ek_expand_depthwise`): the 1x1's output
 *   (an MBConv's expansion, the widest map) is computed one row at a time into `lines`, which
 *   holds the rows one depthwise output row reads (its window's span, (k_h - 1) * dil_h + 1 rows),
 *   and each depthwise output row is computed from them. Rows move down as the window slides;
 *   no row is computed twice.
 *
 * Each chunk calls the op's own kernel on a view of the op: its parameters copied with the
 * output narrowed to the chunk (one row, `n` pixels) and the padding shifted by the chunk's
 * origin, or, for 1x1 stride-1, the input pointer moved to the chunk's first pixel. The kernels
 * compute each output pixel from its window alone, so every value is the whole op's, bit for
 * bit. One image (batches == 1).
 */
#ifndef EK_CHUNKS_H
#define EK_CHUNKS_H

#include <stdint.h>

#include "ek_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Computes output pixels (oy, ox) .. (oy, ox + n - 1) of the op `params` into `out`. */
typedef void (*ek_conv_part)(const void *params, const int8_t *input, int32_t oy, int32_t ox, int32_t n,
                             int8_t *out);

/* The geometry the chunk loops need, read from any of the kernels' parameter structs. */
typedef struct {
    int32_t out_h, out_w, out_c, in_c;
    int32_t flat; /* 1x1, stride 1: chunks run across rows (a map of one row of out_h * out_w) */
} ek_chunk_shape;

void ek_conv_add_chunks(ek_conv_part part, const void *params, const ek_chunk_shape *shape,
                        const ek_binary_params *add, int32_t conv_first, int32_t chunk, const int8_t *input,
                        const int8_t *other, int8_t *output, int8_t *scratch);
void ek_conv_in_place_chunks(ek_conv_part part, const void *params, const ek_chunk_shape *shape, int32_t chunk,
                             int8_t *data, int8_t *scratch);

/* Computes depthwise output row `oy` of `params` into `out`, from the `count` input rows
 * starting at input row `base` held contiguously in `rows`. */
typedef void (*ek_depthwise_row)(const void *params, const int8_t *rows, int32_t base, int32_t count, int32_t oy,
                                 int8_t *out);

typedef struct {
    int32_t in_h, in_w, mid_c;      /* the 1x1's output (the depthwise's input) */
    int32_t span;                   /* (k_h - 1) * dil_h + 1: rows one output row reads */
    int32_t stride_h, pad_top;      /* the depthwise's */
    int32_t out_h, out_row;         /* the depthwise's rows and bytes per row */
} ek_line_shape;

void ek_expand_depthwise(ek_conv_part expand, const void *expand_params, ek_depthwise_row depthwise,
                         const void *depthwise_params, const ek_line_shape *shape, const int8_t *input,
                         int8_t *output, int8_t *lines);

/* Computes output rows out_base .. out_base + out_count - 1 of the op `params` (one image) into
 * `out` from input rows in_base .. in_base + in_count - 1 held contiguously in `input`: a band
 * of a tiled segment (mcu_effnet.graph.tiling), whose rows are the ones its windows read, so the
 * view's padding falls where the whole map's does. */
typedef void (*ek_conv_band)(const void *params, const int8_t *input, int32_t in_base, int32_t in_count,
                             int32_t out_base, int32_t out_count, int8_t *out);

/* The plain kernels' views (ek_conv2d, ek_depthwise_conv2d) for the loops above. */
void ek_conv2d_part(const void *params, const int8_t *input, int32_t oy, int32_t ox, int32_t n, int8_t *out);
void ek_depthwise_conv2d_row(const void *params, const int8_t *rows, int32_t base, int32_t count, int32_t oy,
                             int8_t *out);
void ek_conv2d_band(const void *params, const int8_t *input, int32_t in_base, int32_t in_count, int32_t out_base,
                    int32_t out_count, int8_t *out);
void ek_depthwise_conv2d_band(const void *params, const int8_t *input, int32_t in_base, int32_t in_count,
                              int32_t out_base, int32_t out_count, int8_t *out);

/* The plain kernel (ek_conv2d). */
void ek_conv2d_add(const ek_conv_params *p, const ek_binary_params *add, int32_t conv_first, int32_t chunk,
                   const int8_t *input, const int8_t *other, int8_t *output, int8_t *scratch);
void ek_conv2d_in_place(const ek_conv_params *p, int32_t chunk, int8_t *data, int8_t *scratch);

#ifdef __cplusplus
}
#endif

#endif /* EK_CHUNKS_H */
