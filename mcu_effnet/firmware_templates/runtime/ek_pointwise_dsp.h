/* 1x1 CONV_2D and FULLY_CONNECTED with the DSP extension's dual 16-bit multiply-accumulate
 * (SMLAD; Cortex-M4, M7, M33). The generator (mcu_effnet/codegen/dsp_pointwise.py) picks these
 * kernels for cores with the DSP extension and lays their weights out for them; the plain C
 * kernels stay the portable path. Same arithmetic as TFLite Micro's reference, bit for bit.
 *
 * Their parameter structs (below) differ from the plain kernels':
 * - `weights` are 32-bit words: output channels in pairs (the last pair of an odd count padded
 *   with a zero channel), each pair's weights over the input depth padded with zeros to a
 *   multiple of 4, and for every 4 depth values k..k+3 two words holding the bytes
 *       (w0[k],   w1[k],   w0[k+2], w1[k+2])   and   (w0[k+1], w1[k+1], w0[k+3], w1[k+3])
 *   (w0, w1: the pair's two channels). SXTB16 of the first gives channel 0's (k, k+2)
 *   halfwords and SXTB16 of its rotation by 8 channel 1's: the lanes SXTB16 / SXTB16-ROR8
 *   give an input word, (x[k], x[k+2]) and (x[k+1], x[k+3]). One weight stream serves two
 *   channels.
 * - `records` holds six int32 per channel pair: bias0, bias1, multiplier0, multiplier1, shift0,
 *   shift1 (the bias with the input offset folded in, as the plain kernels take it; zeros for
 *   the zero channel).
 * - `_fast` kernels requantize in a short exact form (SMMULR, SSAT; ek_pointwise_dsp.c): the
 *   generator picks them only when every shift is <= -1 and >= -21 and every accumulator is
 *   below 2^30 in magnitude, and stores s = -shift - 1 as the records' shifts; the others use
 *   ek_multiply_by_quantized_multiplier on TFLite's shifts.
 */
#ifndef EK_POINTWISE_DSP_H
#define EK_POINTWISE_DSP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CONV_2D with a 1x1 filter, any stride (no padding: a 1x1 window is always inside). */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t stride_h, stride_w;
    int32_t out_offset; /* the output zero point */
    int32_t act_min, act_max;
    const int32_t *weights; /* channel pairs, see above */
    const int32_t *records; /* per channel pair, see above */
} ek_conv1x1_dsp_params;

void ek_conv2d_1x1_dsp(const ek_conv1x1_dsp_params *p, const int8_t *input, int8_t *output);
void ek_conv2d_1x1_dsp_fast(const ek_conv1x1_dsp_params *p, const int8_t *input, int8_t *output);

/* FULLY_CONNECTED: `rows` input rows of `depth` values, `units` outputs each. */
typedef struct {
    int32_t rows, depth, units;
    int32_t out_offset; /* the output zero point */
    int32_t act_min, act_max;
    const int32_t *weights; /* channel pairs, see above */
    const int32_t *records; /* per channel pair, see above */
} ek_fc_dsp_params;

void ek_fully_connected_dsp(const ek_fc_dsp_params *p, const int8_t *input, int8_t *output);
void ek_fully_connected_dsp_fast(const ek_fc_dsp_params *p, const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EK_POINTWISE_DSP_H */
