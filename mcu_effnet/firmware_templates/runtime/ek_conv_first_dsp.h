/* CONV_2D over 1 to 3 input channels (a first layer) with the DSP extension
 * (ek_conv_first_dsp.c). Same arithmetic as TFLite Micro's reference, bit for bit. */
#ifndef EK_CONV_FIRST_DSP_H
#define EK_CONV_FIRST_DSP_H

#include "ek_conv_dsp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Takes the k x k kernel's parameters (ek_conv_dsp_params) with in_c of 1 to 3 and a window of
 * K = k_h * k_w * in_c values, at most EK_CONV_FIRST_MAX_WINDOW. `weights` holds one run per
 * group of four output channels (the last padded with zeros): its four biases, FOLDED unlike
 * the k x k kernel's, 2 * (bias + in_offset * sum(w)); its weight words, the k x k kernel's
 * layout of a 1 x 1 x K window (OHWI order) padded once to a multiple of 4 values; then per
 * channel the multiplier, the constant (1 + 2 * (out_offset - act_min)) << s and s = -shift - 1
 * (ek_conv_dsp.c requantize_k). `records` points at the same runs. */
#define EK_CONV_FIRST_MAX_WINDOW 256
void ek_conv2d_first_dsp(const ek_conv_dsp_params *p, const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EK_CONV_FIRST_DSP_H */
