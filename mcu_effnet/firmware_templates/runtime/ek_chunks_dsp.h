/* The DSP kernels a few output pixels at a time (the scheme of ek_chunks.h): the k x k kernel
 * (ek_conv2d_dsp, also widened 1x1 layers) and the 1x1 kernels (ek_conv2d_1x1_dsp and its
 * short requantization, `_fast`). Same arguments as ek_conv2d_add / ek_conv2d_in_place. */
#ifndef EK_CHUNKS_DSP_H
#define EK_CHUNKS_DSP_H

#include <stdint.h>

#include "ek_chunks.h"
#include "ek_conv_dsp.h"
#include "ek_conv_first_dsp.h"
#include "ek_pointwise_dsp.h"

#ifdef __cplusplus
extern "C" {
#endif

void ek_conv2d_dsp_add(const ek_conv_dsp_params *p, const ek_binary_params *add, int32_t conv_first,
                       int32_t chunk, const int8_t *input, const int8_t *other, int8_t *output, int8_t *scratch);
void ek_conv2d_dsp_in_place(const ek_conv_dsp_params *p, int32_t chunk, int8_t *data, int8_t *scratch);

void ek_conv2d_1x1_dsp_add(const ek_conv1x1_dsp_params *p, const ek_binary_params *add, int32_t conv_first,
                           int32_t chunk, const int8_t *input, const int8_t *other, int8_t *output,
                           int8_t *scratch);
void ek_conv2d_1x1_dsp_in_place(const ek_conv1x1_dsp_params *p, int32_t chunk, int8_t *data, int8_t *scratch);
void ek_conv2d_1x1_dsp_fast_add(const ek_conv1x1_dsp_params *p, const ek_binary_params *add, int32_t conv_first,
                                int32_t chunk, const int8_t *input, const int8_t *other, int8_t *output,
                                int8_t *scratch);
void ek_conv2d_1x1_dsp_fast_in_place(const ek_conv1x1_dsp_params *p, int32_t chunk, int8_t *data,
                                     int8_t *scratch);

/* Their views for the loops of ek_chunks.h (ek_expand_depthwise). */
void ek_conv2d_dsp_part(const void *params, const int8_t *input, int32_t oy, int32_t ox, int32_t n, int8_t *out);
void ek_conv2d_1x1_dsp_part(const void *params, const int8_t *input, int32_t oy, int32_t ox, int32_t n,
                            int8_t *out);
void ek_conv2d_1x1_dsp_fast_part(const void *params, const int8_t *input, int32_t oy, int32_t ox, int32_t n,
                                 int8_t *out);
void ek_depthwise_conv2d_dsp_row(const void *params, const int8_t *rows, int32_t base, int32_t count, int32_t oy,
                                 int8_t *out);

/* Their band views for a tiled segment (ek_conv_band, ek_chunks.h): every DSP convolution. */
#define EK_DSP_BAND(kernel)                                                                                  \
    void kernel##_band(const void *params, const int8_t *input, int32_t in_base, int32_t in_count,            \
                       int32_t out_base, int32_t out_count, int8_t *out)
EK_DSP_BAND(ek_conv2d_dsp);
EK_DSP_BAND(ek_conv2d_first_dsp);
EK_DSP_BAND(ek_conv2d_1x1_narrow_dsp);
EK_DSP_BAND(ek_depthwise_conv2d_dsp);
EK_DSP_BAND(ek_conv2d_1x1_dsp);
EK_DSP_BAND(ek_conv2d_1x1_dsp_fast);

#ifdef __cplusplus
}
#endif

#endif /* EK_CHUNKS_DSP_H */
