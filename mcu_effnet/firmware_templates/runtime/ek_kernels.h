/* mcu-effnet int8 engine kernels: the public interface (C99, no heap, no floating point).
 *
 * Every kernel reproduces TensorFlow Lite Micro's reference integer arithmetic bit for bit.
 * Parameters that TFLite Micro computes in Prepare (multipliers, shifts, paddings, clamps)
 * are computed once by the code generator and stored in `const` structs (flash).
 * Activations are int8 NHWC, contiguous. Shifts follow TFLite's convention: a positive
 * shift multiplies by 2^shift before the fixed-point multiply, a negative one divides after.
 */
#ifndef EK_KERNELS_H
#define EK_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EK_MAX_DIMS 4

/* CONV_2D (weights OHWI) and DEPTHWISE_CONV_2D (weights 1HW(C*M)).
 * `bias` (never NULL) holds the op's bias plus in_offset times the sum of the output
 * channel's weights: the kernels add the offset back only for taps in the padding. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dil_h, dil_w;
    int32_t pad_top, pad_left;
    int32_t depth_multiplier; /* depthwise only */
    int32_t in_offset;        /* minus the input zero point */
    int32_t out_offset;       /* the output zero point */
    int32_t act_min, act_max;
    const int8_t *weights;
    const int32_t *bias; /* with the input offset folded in (see above) */
    const int32_t *multiplier; /* one per output channel */
    const int32_t *shift;
} ek_conv_params;

void ek_conv2d(const ek_conv_params *p, const int8_t *input, int8_t *output);
void ek_depthwise_conv2d(const ek_conv_params *p, const int8_t *input, int8_t *output);

/* DEPTHWISE_CONV_2D writing its output over its own input (`data`): stride 1, multiplier 1,
 * one image, output shaped as the input. `scratch` holds (pad_top + 1) * out_w * out_c bytes. */
void ek_depthwise_conv2d_in_place(const ek_conv_params *p, int8_t *data, int8_t *scratch);

/* TRANSPOSE_CONV (weights OHWI, per-channel multipliers): every input value plus in_offset
 * times the weights is scattered into `scratch`, out_h * out_w * out_c int32 accumulators (4-byte
 * aligned, given by the planner), then bias, requantization and clamp. `bias` is never NULL. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t in_offset, out_offset;
    int32_t act_min, act_max;
    const int8_t *weights;
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
} ek_transpose_conv_params;

void ek_transpose_conv(const ek_transpose_conv_params *p, const int8_t *input, int8_t *scratch, int8_t *output);

/* FULLY_CONNECTED: `rows` input rows of `depth` values, weights (units, depth);
 * `bias` (never NULL) has in_offset times the sum of each unit's weights folded in. */
typedef struct {
    int32_t rows, depth, units;
    int32_t in_offset, out_offset;
    int32_t act_min, act_max;
    int32_t per_channel; /* multiplier/shift hold `units` entries, else one */
    const int8_t *weights;
    const int32_t *bias; /* with the input offset folded in */
    const int32_t *multiplier;
    const int32_t *shift;
} ek_fc_params;

void ek_fully_connected(const ek_fc_params *p, const int8_t *input, int8_t *output);

/* ADD and MUL with broadcasting over (up to) four dimensions: strides are 0 along the
 * axes an input is broadcast on. The output may be the same buffer as an input of the
 * output's shape (each element is read before it is written). */
typedef struct {
    int32_t out_dims[EK_MAX_DIMS];
    int32_t in1_strides[EK_MAX_DIMS];
    int32_t in2_strides[EK_MAX_DIMS];
    int32_t in1_offset, in2_offset, out_offset;
    int32_t left_shift; /* ADD only */
    int32_t in1_multiplier, in1_shift; /* ADD only */
    int32_t in2_multiplier, in2_shift; /* ADD only */
    int32_t out_multiplier, out_shift;
    int32_t act_min, act_max;
} ek_binary_params;

void ek_add(const ek_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output);
void ek_mul(const ek_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output);

/* SUB takes ek_binary_params as ADD does (the second input's scaled term is subtracted). */
void ek_sub(const ek_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output);

/* MAXIMUM and MINIMUM with broadcasting: the raw codes compared (TFLite Micro requantizes nothing). */
typedef struct {
    int32_t out_dims[EK_MAX_DIMS];
    int32_t in1_strides[EK_MAX_DIMS];
    int32_t in2_strides[EK_MAX_DIMS];
} ek_broadcast_params;

void ek_maximum(const ek_broadcast_params *p, const int8_t *in1, const int8_t *in2, int8_t *output);
void ek_minimum(const ek_broadcast_params *p, const int8_t *in1, const int8_t *in2, int8_t *output);

/* PRELU with the alpha tensor broadcast: x >= 0 takes the identity multiplier, x < 0 the
 * product x * alpha (both offset) with the alpha multiplier. In place over the input too. */
typedef struct {
    int32_t out_dims[EK_MAX_DIMS];
    int32_t in_strides[EK_MAX_DIMS];
    int32_t alpha_strides[EK_MAX_DIMS];
    int32_t in_offset, alpha_offset, out_offset;
    int32_t identity_multiplier, identity_shift;
    int32_t alpha_multiplier, alpha_shift;
} ek_prelu_params;

void ek_prelu(const ek_prelu_params *p, const int8_t *input, const int8_t *alpha, int8_t *output);

/* AVERAGE_POOL_2D and MAX_POOL_2D (windows clipped to the input). */
typedef struct {
    int32_t batches, in_h, in_w, channels, out_h, out_w;
    int32_t f_h, f_w, stride_h, stride_w, pad_top, pad_left;
    int32_t act_min, act_max;
} ek_pool_params;

void ek_average_pool2d(const ek_pool_params *p, const int8_t *input, int8_t *output);
void ek_max_pool2d(const ek_pool_params *p, const int8_t *input, int8_t *output);

/* MEAN over a contiguous run of axes, viewed as (outer, reduce, inner). The multiplier and
 * shift already carry the division by `reduce` (TFLite Micro's QuantizedMeanOrSum). */
typedef struct {
    int32_t outer, reduce, inner;
    int32_t in_zero_point, out_zero_point;
    int32_t multiplier, shift;
} ek_mean_params;

void ek_mean(const ek_mean_params *p, const int8_t *input, int8_t *output);

/* REDUCE_MAX over a contiguous run of axes, viewed as (outer, reduce, inner): raw codes. */
typedef struct {
    int32_t outer, reduce, inner;
} ek_reduce_params;

void ek_reduce_max(const ek_reduce_params *p, const int8_t *input, int8_t *output);

/* QUANTIZE (int8 -> int8) and RELU: out = clamp(out_zp + MBQM(x - in_zp)). */
typedef struct {
    int32_t size;
    int32_t in_zero_point, out_zero_point;
    int32_t multiplier, shift;
    int32_t act_min, act_max;
} ek_requantize_params;

void ek_requantize(const ek_requantize_params *p, const int8_t *input, int8_t *output);

/* RELU6 on int8: clamps to [lower, upper] in the input's own quantization. */
typedef struct {
    int32_t size;
    int32_t lower, upper;
} ek_clamp_params;

void ek_relu6(const ek_clamp_params *p, const int8_t *input, int8_t *output);

/* LOGISTIC: output scale 1/256, zero point -128. */
typedef struct {
    int32_t size;
    int32_t in_zero_point;
    int32_t in_multiplier, in_left_shift;
    int32_t in_range_radius;
} ek_logistic_params;

void ek_logistic(const ek_logistic_params *p, const int8_t *input, int8_t *output);

/* LEAKY_RELU: a multiplier per side; a negative alpha_multiplier negates the scaled value. */
typedef struct {
    int32_t size;
    int32_t in_zero_point, out_zero_point;
    int32_t identity_multiplier, identity_shift;
    int32_t alpha_multiplier, alpha_shift;
} ek_leaky_relu_params;

void ek_leaky_relu(const ek_leaky_relu_params *p, const int8_t *input, int8_t *output);

/* TANH: LOGISTIC's input rescaling; output scale 1/128, zero point 0. */
void ek_tanh(const ek_logistic_params *p, const int8_t *input, int8_t *output);

/* HARD_SWISH in 16-bit fixed point. */
typedef struct {
    int32_t size;
    int32_t in_zero_point, out_zero_point;
    int32_t out_multiplier, out_exponent;         /* Q0.15 multiplier, exponent <= 0 */
    int32_t reluish_multiplier, reluish_exponent; /* Q0.15 multiplier */
} ek_hard_swish_params;

void ek_hard_swish(const ek_hard_swish_params *p, const int8_t *input, int8_t *output);

/* SOFTMAX along the last axis: output scale 1/256, zero point -128. */
typedef struct {
    int32_t rows, depth;
    int32_t in_multiplier, in_left_shift;
    int32_t diff_min;
} ek_softmax_params;

void ek_softmax(const ek_softmax_params *p, const int8_t *input, int8_t *output);

/* An element-wise map given as a table: output[i] = table[input[i] + 128]. The generator
 * fuses LOGISTIC -> MUL(x, sigmoid(x)) (SiLU) into one (mcu_effnet.graph.fuse); in place too. */
typedef struct {
    int32_t size;
    const int8_t *table; /* 256 entries, for input values -128..127 */
} ek_lookup_params;

void ek_lookup(const ek_lookup_params *p, const int8_t *input, int8_t *output);

/* PAD (up to four dimensions), filled with the output zero point. */
typedef struct {
    int32_t in_dims[EK_MAX_DIMS];
    int32_t before[EK_MAX_DIMS];
    int32_t after[EK_MAX_DIMS];
    int32_t pad_value;
} ek_pad_params;

void ek_pad(const ek_pad_params *p, const int8_t *input, int8_t *output);

/* CONCATENATION: `outer` blocks; block k of input i has `sizes[i]` bytes. */
void ek_concatenation(int32_t outer, int32_t count, const int8_t *const *inputs, const int32_t *sizes,
                      int8_t *output);

/* A plain copy (a RESHAPE the planner could not alias). */
void ek_copy(int32_t size, const int8_t *input, int8_t *output);

/* TRANSPOSE, SLICE, STRIDED_SLICE: output element (i_0, ..., i_5), in row-major order, is
 * input element start + sum(i_k * strides[k]) (in elements; strides may be negative). Ranks
 * below six are padded in front with dims 1. `elem_size` bytes per element. */
#define EK_GATHER_DIMS 6
typedef struct {
    int32_t dims[EK_GATHER_DIMS];
    int32_t strides[EK_GATHER_DIMS];
    int32_t start;
    int32_t elem_size;
} ek_gather_params;

void ek_gather(const ek_gather_params *p, const int8_t *input, int8_t *output);

/* SPLIT, SPLIT_V, UNPACK: the input is `outer` rows; each row holds one block of `sizes[i]`
 * bytes per output i, back to back (the inverse of ek_concatenation). */
void ek_split(int32_t outer, int32_t count, const int8_t *input, const int32_t *sizes, int8_t *const *outputs);

/* RESIZE_NEAREST_NEIGHBOR (`rows[y]`, `cols[x]`: the input row and column read; any element
 * size) and RESIZE_BILINEAR (int8; `rows`, `cols`: lower, upper, fraction in 1/1024 per output
 * row and column). NHWC. */
typedef struct {
    int32_t batches, in_h, in_w, depth, out_h, out_w;
    const int32_t *rows;
    const int32_t *cols;
    int32_t elem_size;
} ek_resize_params;

void ek_resize_nearest(const ek_resize_params *p, const int8_t *input, int8_t *output);
void ek_resize_bilinear(const ek_resize_params *p, const int8_t *input, int8_t *output);

/* DEQUANTIZE int8 -> float32: out = scale * (x - zero_point), one float32 rounding (with
 * ek_quantize_f32, the runtime's only floating point; see ek_dequantize.c). */
typedef struct {
    int32_t size;
    float scale;
    int32_t zero_point;
} ek_dequantize_params;

void ek_dequantize(const ek_dequantize_params *p, const int8_t *input, float *output);

/* QUANTIZE float32 -> int8 / int16 (a float model input): clamp(roundf(x / scale) + zero_point),
 * the division in single precision, halves away from zero, as TFLite Micro's AffineQuantize.
 * NaN gives the zero point; infinities and quotients beyond int32 (undefined in TFLite Micro)
 * saturate. See ek_dequantize.c. */
typedef struct {
    int32_t size;
    float scale;
    int32_t zero_point;
    int32_t out_min, out_max;
} ek_quantize_f32_params;

void ek_quantize_f32(const ek_quantize_f32_params *p, const float *input, int8_t *output);
void ek_quantize_f32_s16(const ek_quantize_f32_params *p, const float *input, int16_t *output);

/* ARG_MAX over one axis of an int8 tensor seen as [outer, axis_size, inner]: int32 indices (or
 * int64, TFLite's default output type), the first of equal maxima (TFLite Micro's strict ">"). */
typedef struct {
    int32_t outer, axis_size, inner;
} ek_argmax_params;

void ek_argmax(const ek_argmax_params *p, const int8_t *input, int32_t *output);
void ek_argmax64(const ek_argmax_params *p, const int8_t *input, int64_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EK_KERNELS_H */
