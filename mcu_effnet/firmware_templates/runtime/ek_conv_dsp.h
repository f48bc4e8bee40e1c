/* DEPTHWISE_CONV_2D and k x k CONV_2D with the DSP extension's 16-bit multiply-accumulates
 * (Cortex-M4, M7, M33). The generator (mcu_effnet/codegen/dsp_layout.py) picks these kernels
 * for cores with the DSP extension and lays their weights out for them; the plain C kernels
 * (ek_conv.c) stay the portable path. Same arithmetic as TFLite Micro's reference, bit for bit.
 *
 * Their parameters (ek_depthwise_dsp_params, ek_conv_dsp_params) differ from the plain
 * kernels' in three ways:
 * - `weights` are 32-bit words laid out for the kernel's inner loop (layouts below);
 * - `bias` is the op's own bias (zero without one; doubled for k x k, whose weights are doubled
 *   halfwords): the input offset is NOT folded in. The kernels add in_offset to every input
 *   value as they widen it to 16 bits (SXTAB16), so taps in the padding are simply skipped,
 *   exactly as TFLite Micro's reference skips them;
 * - the right shifts hold -shift - 1 (>= 0) per channel: the generator picks these kernels only
 *   when every TFLite shift is <= -1 and every accumulator stays below 2^30 in magnitude, where
 *   their shorter requantization is exact (ek_requant_dsp.h) on the doubled accumulator.
 */
#ifndef EK_CONV_DSP_H
#define EK_CONV_DSP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The geometry and quantization both kernels share. */
#define EK_CONV_DSP_GEOMETRY         \
    int32_t batches;                 \
    int32_t in_h, in_w, in_c;        \
    int32_t out_h, out_w, out_c;     \
    int32_t k_h, k_w;                \
    int32_t stride_h, stride_w;      \
    int32_t dil_h, dil_w;            \
    int32_t pad_top, pad_left;       \
    int32_t in_offset;  /* minus the input zero point */ \
    int32_t out_offset; /* the output zero point */      \
    int32_t act_min, act_max

typedef struct {
    EK_CONV_DSP_GEOMETRY;
    const int32_t *weights;     /* the kernel's layout */
    const int32_t *bias;        /* the op's own */
    const int32_t *multiplier;  /* one per channel */
    const int32_t *right_shift; /* -shift - 1 per channel */
} ek_depthwise_dsp_params;

typedef struct {
    EK_CONV_DSP_GEOMETRY;
    const int32_t *weights; /* the kernel's layout */
    /* per group of 4 output channels (the last one padded with zeros): 4 biases (the op's own,
     * doubled), 4 multipliers, 4 right shifts (-shift - 1); ek_conv2d_dsp's: 4 biases, then per
     * channel its multiplier, the constant (1 + 2 * (out_offset - act_min)) << s and
     * s = -shift - 1 (16 words, ek_conv_dsp.c requantize_k) */
    const int32_t *records;
} ek_conv_dsp_params;

/* Depthwise, depth multiplier 1. Weights: for each group of 4 channels (the last one padded
 * with zeros), for each tap (ky, kx) in row-major order, one word: the four int8 weights,
 * channel c0 in the low byte. */
void ek_depthwise_conv2d_dsp(const ek_depthwise_dsp_params *p, const int8_t *input, int8_t *output);

/* Its channel-major path (ek_depthwise_rows_dsp.c), which ek_depthwise_conv2d_dsp takes by itself
 * where it applies: 3x3 or 5x5, stride_w 1 or 2, dilation 1, and k rows of `width` halfwords
 * within the ring on its stack. ek_depthwise_rows_width gives that width, or 0 where it does not
 * apply. */
#define EK_DEPTHWISE_ROWS_MAX_HALFWORDS 1152
/* and where the output is at least this wide (3x3, 5x5) and tall */
#define EK_DEPTHWISE_ROWS_MIN_W3 20
#define EK_DEPTHWISE_ROWS_MIN_W5 14
#define EK_DEPTHWISE_ROWS_MIN_H 2
int32_t ek_depthwise_rows_width(const ek_depthwise_dsp_params *p);
void ek_depthwise_rows_dsp(const ek_depthwise_dsp_params *p, int32_t width, const int8_t *input, int8_t *output);
/* Whether it may run with output == input: true where every output row lies in input rows the
 * channel has already read into its ring (one image, out_w <= in_w, pad_top < k_h). */
int32_t ek_depthwise_rows_in_place(const ek_depthwise_dsp_params *p);

/* Its whole-plane path for small 3x3 maps (ek_depthwise_plane_dsp.c), also taken by itself: 3x3,
 * stride 1 (or 2 where four channels' planes fit with rows 16 or 32 halfwords apart), dilation 1,
 * where a channel's padded plane fits
 * EK_DEPTHWISE_PLANE_MAX_HALFWORDS halfwords on the stack (and beside it EK_DEPTHWISE_PLANE_ACC
 * accumulators). It may run with output == input for one image whose output is no larger. */
#define EK_DEPTHWISE_PLANE_MAX_HALFWORDS 896
#define EK_DEPTHWISE_PLANE_ACC 256
/* and where the output has at least this many pixels */
#define EK_DEPTHWISE_PLANE_MIN_PIXELS 16
int32_t ek_depthwise_plane_fits(const ek_depthwise_dsp_params *p);
void ek_depthwise_plane_dsp(const ek_depthwise_dsp_params *p, const int8_t *input, int8_t *output);

/* Which of the two optional paths an engine carries: the generator writes ek_dsp_paths.h beside
 * the kernels with the paths its calls take (mcu_effnet.codegen.dsp_depthwise_paths); without
 * it (a runtime built on its own) both. A path compiled out falls through to the next one. */
#if defined(__has_include)
#if __has_include("ek_dsp_paths.h")
#include "ek_dsp_paths.h"
#endif
#endif
#ifndef EK_DEPTHWISE_PLANE_PATH
#define EK_DEPTHWISE_PLANE_PATH 1
#endif
/* the whole-plane path's stride-2 loops (0: stride 2 stays on the four-channel kernel) */
#ifndef EK_DEPTHWISE_PLANE_STRIDE2
#define EK_DEPTHWISE_PLANE_STRIDE2 1
#endif
#ifndef EK_DEPTHWISE_ROWS_PATH
#define EK_DEPTHWISE_ROWS_PATH 1
#endif
/* ek_conv2d_dsp's path for out_c not a multiple of 4 (0 when no call of the engine has one) */
#ifndef EK_CONV_DSP_TAIL
#define EK_CONV_DSP_TAIL 1
#endif
/* ek_conv2d_dsp's groups over windows of exactly 16 (32) values, a 1x1 over 16 (32) channels:
 * run_groups16 (run_groups32); 0 when no call of the engine has such a window, which then runs
 * the general loop */
#ifndef EK_CONV_DSP_DEPTH16
#define EK_CONV_DSP_DEPTH16 1
#endif
#ifndef EK_CONV_DSP_DEPTH32
#define EK_CONV_DSP_DEPTH32 1
#endif
/* ek_conv2d_dsp's gather for in_c not a multiple of 4 (0 when no call of the engine has one) */
#ifndef EK_CONV_DSP_UNALIGNED
#define EK_CONV_DSP_UNALIGNED 1
#endif

/* The in-place variant: the same contract as ek_depthwise_conv2d_in_place (ek_kernels.h). */
void ek_depthwise_conv2d_in_place_dsp(const ek_depthwise_dsp_params *p, int8_t *data, int8_t *scratch);

/* CONV_2D with a window of at most EK_CONV_DSP_MAX_WINDOW values (k_h rows of k_w * in_c values,
 * each row padded to a multiple of 4; the window buffer is on the stack). The window's values,
 * in OHWI order, go in steps of four k..k+3 read as two words of halfwords (x[k], x[k+2]) and
 * (x[k+1], x[k+3]) (what SXTAB16 and SXTAB16-ROR8 give of four input bytes). Weights: for each
 * group of 4 output channels (the last one padded with zeros), for each step, eight words:
 * channels 0..3 of the group as (2 w[k], 2 w[k+2]), then channels 0..3 as (2 w[k+1], 2 w[k+3])
 * (low, high halfwords; the row padding's positions are zero). A 1x1 stride-1 convolution with
 * in_c a multiple of 4 and out_c <= in_c may run with output == input (its pixels are widened a
 * batch at a time before their outputs are written: ek_conv2d_dsp_in_place). */
#define EK_CONV_DSP_MAX_WINDOW 1152
void ek_conv2d_dsp(const ek_conv_dsp_params *p, const int8_t *input, int8_t *output);
/* FULLY_CONNECTED with widened weights (ek_conv_dsp.c): `rows` rows of `depth` values, depth a
 * multiple of 16 up to EK_FC_WIDE_MAX_DEPTH (the row is widened on the stack), by `units`
 * outputs each; `input` word-aligned (an arena buffer). The units go in quads, then the last 1 to 3 in pairs (a zero unit completing
 * an odd count); `weights` holds each group's run: its n biases (the input offset folded in,
 * doubled), per step of 4 depth values k..k+3 its units' (2 w[k], 2 w[k+2]) words then their
 * (2 w[k+1], 2 w[k+3]) words, then per unit the multiplier, the constant
 * (1 + 2 * (out_offset - act_min)) << s and s = -shift - 1. */
#define EK_FC_WIDE_MAX_DEPTH 1152
typedef struct {
    int32_t rows, depth, units;
    /* the activation clamp on four bytes at once (ek_conv_dsp.c conv_groups): 255 - (act_max -
     * act_min) and act_min less that, each byte */
    int32_t sat4, shift4;
    const int32_t *weights; /* the groups' runs */
} ek_fc_wide_dsp_params;
void ek_fully_connected_wide_dsp(const ek_fc_wide_dsp_params *p, const int8_t *input, int8_t *output);
/* Exactly two units and a depth in blocks of 64 (EK_FC_PAIR_DEPTH_STEP): the same struct and
 * weights, the input widened as it is read instead of on the stack (ek_conv_dsp.c). */
#define EK_FC_PAIR_DEPTH_STEP 64
void ek_fully_connected_pair_dsp(const ek_fc_wide_dsp_params *p, const int8_t *input, int8_t *output);

/* A 1x1 CONV_2D (or FULLY_CONNECTED over its rows) of a shallow input, in_c a multiple of 4 up to
 * EK_CONV_NARROW_MAX_DEPTH: the k x k kernel's weights and records (k_h = k_w = 1), the pixel's
 * input held in registers instead of gathered (ek_conv_narrow_dsp.c). */
#define EK_CONV_NARROW_MAX_DEPTH 12
void ek_conv2d_1x1_narrow_dsp(const ek_conv_dsp_params *p, const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EK_CONV_DSP_H */
