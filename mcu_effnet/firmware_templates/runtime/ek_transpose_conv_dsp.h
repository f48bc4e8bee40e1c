/* TRANSPOSE_CONV on int8 with the DSP extension (Cortex-M4, M7, M33): ek_transpose_conv_dsp.c.
 * Same parameters and arithmetic as the plain ek_transpose_conv (ek_kernels.h), bit for bit. */
#ifndef EK_TRANSPOSE_CONV_DSP_H
#define EK_TRANSPOSE_CONV_DSP_H

#include <stdint.h>

#include "ek_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* `scratch` is the planner's buffer of the plain kernel; this one keeps its sums in registers
 * and does not touch it. */
void ek_transpose_conv_dsp(const ek_transpose_conv_params *p, const int8_t *input, int8_t *scratch,
                           int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EK_TRANSPOSE_CONV_DSP_H */
