/* DEPTHWISE_CONV_2D and k x k CONV_2D with the DSP extension's 16-bit multiply-accumulates
 * (Cortex-M4, M7, M33). The generator (mcu_effnet/codegen/dsp_layout.py) picks these kernels
 * for cores with the DSP extension and lays their weights out for them; the plain C kernels
 * (ek_conv.c) stay the portable path. Same arithmetic as TFLite Micro's reference, bit for bit.
 *
 * Parameters are the plain kernels' `ek_conv_params`, with three differences the generator makes:
 * - `weights` points at 32-bit words (an int32 array cast to const int8_t *; layouts below);
 * - `bias` is the op's own bias (zero without one; doubled for k x k, whose weights are doubled
 *   halfwords): the input offset is NOT folded in. The
 *   kernels add in_offset to every input value as they widen it to 16 bits (SXTAB16), so taps
 *   in the padding are simply skipped, exactly as TFLite Micro's reference skips them;
 * - `shift` holds -shift - 1 (>= 0) per channel: the generator picks these kernels only when
 *   every TFLite shift is <= -1 and every accumulator stays below 2^30 in magnitude, where
 *   their shorter requantization is exact (ek_requant_dsp.h) on the doubled accumulator.
 */
#ifndef EK_CONV_DSP_H
#define EK_CONV_DSP_H

#include "ek_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Depthwise, depth multiplier 1. Weights: for each group of 4 channels (the last one padded
 * with zeros), for each tap (ky, kx) in row-major order, one word: the four int8 weights,
 * channel c0 in the low byte. */
void ek_depthwise_conv2d_dsp(const ek_conv_params *p, const int8_t *input, int8_t *output);

/* The in-place variant: the same contract as ek_depthwise_conv2d_in_place. */
void ek_depthwise_conv2d_in_place_dsp(const ek_conv_params *p, int8_t *data, int8_t *scratch);

/* CONV_2D with a window of at most EK_CONV_DSP_MAX_WINDOW values (k_h * k_w * in_c rounded up
 * to even; the window buffer is on the stack). Weights: for each group of 4 output channels
 * (the last one padded with zeros), for each pair of window positions (k, k + 1) in OHWI order
 * within the window (the last pair padded with a zero), four words: output channels 0..3 of
 * the group, each (2 w[k], 2 w[k + 1]) as (low, high) signed halfwords. */
#define EK_CONV_DSP_MAX_WINDOW 288
void ek_conv2d_dsp(const ek_conv_params *p, const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EK_CONV_DSP_H */
