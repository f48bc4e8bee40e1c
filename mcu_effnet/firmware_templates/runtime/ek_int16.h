/* mcu-effnet engine kernels for TFLite's 16x8 scheme: int16 activations (zero point 0), int8
 * weights, int64 (or int32) biases. C99, no heap, no floating point.
 *
 * Each kernel reproduces TensorFlow Lite Micro's reference int16 kernel bit for bit. The
 * structs of the int8 kernels are reused where the arithmetic is the same (ADD, MUL, PAD,
 * QUANTIZE); the weighted ops have their own, with the int64 bias and no offsets (every int16
 * zero point is 0). CONCATENATION and RESHAPE copies are the int8 kernels over bytes.
 * Most kernels are in ek_int16.c; LEAKY_RELU, TRANSPOSE_CONV and PAD sit beside their int8
 * forms, whose per-element arithmetic (or loop) they share; ADD, SUB and MUL share theirs
 * through ek_binary_ops.h.
 */
#ifndef EK_INT16_H
#define EK_INT16_H

#include <stdint.h>

#include "ek_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CONV_2D (weights OHWI) and DEPTHWISE_CONV_2D (weights 1HW(C*M)) on int16.
 * `wide_accumulator`: 1 accumulates in int64 and requantizes with the int64
 * MultiplyByQuantizedMultiplier (an int64 bias; always for DEPTHWISE_CONV_2D); 0 accumulates
 * in int32 with the double-rounding one (an int32 bias, widened into `bias`). */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dil_h, dil_w;
    int32_t pad_top, pad_left;
    int32_t depth_multiplier; /* depthwise only */
    int32_t act_min, act_max;
    int32_t wide_accumulator;
    const int8_t *weights;
    const int64_t *bias;       /* one per output channel (zeros when the op has none) */
    const int32_t *multiplier; /* one per output channel */
    const int32_t *shift;
} ek_conv16_params;

void ek_conv2d_s16(const ek_conv16_params *p, const int16_t *input, int16_t *output);
void ek_depthwise_conv2d_s16(const ek_conv16_params *p, const int16_t *input, int16_t *output);

/* FULLY_CONNECTED on int16: `rows` input rows of `depth` values, weights (units, depth). */
typedef struct {
    int32_t rows, depth, units;
    int32_t act_min, act_max;
    int32_t per_channel; /* multiplier/shift hold `units` entries, else one */
    int32_t wide_accumulator;
    const int8_t *weights;
    const int64_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
} ek_fc16_params;

void ek_fully_connected_s16(const ek_fc16_params *p, const int16_t *input, int16_t *output);

/* TRANSPOSE_CONV on int16 (weights OHWI, per-channel multipliers, zero points 0): every input
 * value times the weights is scattered into int64 accumulators, then the int64 bias, the
 * int64 requantization and the clamp. `scratch` holds out_h * out_w * out_c int64 values plus
 * 4 bytes (the planner aligns to 4; the kernel starts at the next 8-byte boundary). */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t act_min, act_max;
    const int8_t *weights;
    const int64_t *bias; /* one per output channel (zeros when the op has none) */
    const int32_t *multiplier;
    const int32_t *shift;
} ek_transpose_conv16_params;

void ek_transpose_conv_s16(const ek_transpose_conv16_params *p, const int16_t *input, int8_t *scratch,
                           int16_t *output);

/* LEAKY_RELU on int16 (ek_unary_math.c). */
void ek_leaky_relu_s16(const ek_leaky_relu_params *p, const int16_t *input, int16_t *output);

/* ADD, SUB (left_shift 15) and MUL on int16, broadcasting as ek_add / ek_sub / ek_mul; in place
 * allowed. */
void ek_add_s16(const ek_binary_params *p, const int16_t *in1, const int16_t *in2, int16_t *output);
void ek_sub_s16(const ek_binary_params *p, const int16_t *in1, const int16_t *in2, int16_t *output);
void ek_mul_s16(const ek_binary_params *p, const int16_t *in1, const int16_t *in2, int16_t *output);

/* QUANTIZE between int8 and int16: out = clamp(out_zp + MBQM(x - in_zp)) to the output type. */
void ek_requantize_s8_s16(const ek_requantize_params *p, const int8_t *input, int16_t *output);
void ek_requantize_s16_s8(const ek_requantize_params *p, const int16_t *input, int8_t *output);
void ek_requantize_s16_s16(const ek_requantize_params *p, const int16_t *input, int16_t *output);

/* MEAN on int16, as ek_mean (int32 sums, the multiplier folded with 1 / reduce). */
void ek_mean_s16(const ek_mean_params *p, const int16_t *input, int16_t *output);

/* SOFTMAX on int16 along the last axis: output scale 1/32768, zero point 0. The two tables
 * (513 entries each: exp on [-10, 0], 1 / (1 + x) on [0, 1]) are TFLite Micro's Prepare
 * results, computed by the generator. */
typedef struct {
    int32_t rows, depth;
    int32_t in_multiplier, in_left_shift;
    const int16_t *exp_lut;
    const int16_t *one_over_one_plus_x_lut;
} ek_softmax16_params;

void ek_softmax_s16(const ek_softmax16_params *p, const int16_t *input, int16_t *output);

/* LOGISTIC on int16: output scale 2^-15, zero point 0. `in_multiplier` 0 means a
 * power-of-two input scale (multiplied by 3 << in_left_shift); `table` is sigmoid(i / 24) in
 * unsigned 0.16 (256 entries), written by the generator. */
typedef struct {
    int32_t size;
    int32_t in_multiplier, in_left_shift;
    const uint16_t *table;
} ek_logistic16_params;

void ek_logistic_s16(const ek_logistic16_params *p, const int16_t *input, int16_t *output);

/* TANH on int16: LOGISTIC's table and input scaling (tanh(x) = 2 sigmoid(2x) - 1), output
 * scale 2^-15, zero point 0. */
void ek_tanh_s16(const ek_logistic16_params *p, const int16_t *input, int16_t *output);

/* PAD on int16, filled with `pad_value` (the output zero point, 0); ek_shape.c, ek_pad's body. */
void ek_pad_s16(const ek_pad_params *p, const int16_t *input, int16_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EK_INT16_H */
