/* ADD and MUL on int8 with broadcasting (TFLite Micro's reference integer kernels).
 *
 * ADD brings both inputs to a common scale with `left_shift` bits of headroom, sums them
 * and rescales to the output; MUL multiplies the offset inputs and requantizes once. */
#include "ek_kernels.h"
#include "ek_binary_ops.h"
#include "ek_fixedpoint.h"

/* Whether ek_add keeps its broadcasting path: the generator writes 0 in ek_dsp_paths.h when every
 * ADD of the engine takes add_same_shape (mcu_effnet.codegen.dsp_depthwise_paths), which leaves
 * about 600 bytes of code out; a runtime built on its own keeps it. */
#if defined(__has_include)
#if __has_include("ek_dsp_paths.h")
#include "ek_dsp_paths.h"
#endif
#endif
#ifndef EK_ADD_BROADCAST
#define EK_ADD_BROADCAST 1
#endif

/* Whether both inputs walk the output's elements in order (no broadcasting): the strides the
 * generator writes for an input of the output's shape (0 for dimensions of size 1). */
static int32_t same_shape(const ek_binary_params *p)
{
    int32_t k, step = 1;
    for (k = 3; k >= 0; --k) {
        const int32_t expected = p->out_dims[k] > 1 ? step : 0;
        if (p->in1_strides[k] != expected || p->in2_strides[k] != expected) {
            return 0;
        }
        step *= p->out_dims[k];
    }
    return 1;
}

/* ADD of two inputs of the output's shape, the reference's arithmetic in fewer steps. Each
 * input's (x + offset) << 20 scaled by its multiplier is SRDHM((x + offset) << 20, m) =
 * (((x + offset) << 21) * m + 2^31) >> 32 (|x + offset| <= 255, so the doubled value fits in
 * int32 and the one overflow SRDHM saturates cannot occur): one rounded high multiply on an
 * operand formed by a single shifted add. The sum stays below 2^28 in magnitude, so the
 * output's SRDHM is the rounded high multiply of twice the sum. Valid when every shift is in
 * [-30, 0] (TFLite Micro's multipliers "smaller than one"; the caller checks) and left_shift is 20. */
static void add_same_shape(const ek_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output,
                           int32_t count)
{
    const int32_t base1 = ek_shl32(p->in1_offset, 21), base2 = ek_shl32(p->in2_offset, 21);
    const int32_t m1 = p->in1_multiplier, m2 = p->in2_multiplier, mo = p->out_multiplier;
    const int32_t e1 = -p->in1_shift, e2 = -p->in2_shift, eo = -p->out_shift;
    const int32_t half1 = (1 << e1) >> 1, half2 = (1 << e2) >> 1, half_out = (1 << eo) >> 1;
    const int32_t step1 = e1 > 0, step2 = e2 > 0, step_out = eo > 0;
    const int32_t zero = p->out_offset, lo = p->act_min, hi = p->act_max;
    int32_t i;
    for (i = 0; i < count; ++i) {
        const int32_t a = ek_add32(base1, ek_shl32(in1[i], 21));
        const int32_t b = ek_add32(base2, ek_shl32(in2[i], 21));
        const int32_t sum = ek_divide_by_pot_fixed(ek_mul_high_rounded(a, m1), e1, half1, step1) +
                            ek_divide_by_pot_fixed(ek_mul_high_rounded(b, m2), e2, half2, step2);
        const int32_t raw = ek_divide_by_pot_fixed(ek_mul_high_rounded(2 * sum, mo), eo, half_out, step_out) + zero;
        output[i] = (int8_t)ek_clamp(raw, lo, hi);
    }
}

/* A right shift of 0 to 30 bits: the range add_same_shape's rounding constants cover. */
static inline int32_t shortcut_shift(int32_t shift) { return shift <= 0 && shift >= -30; }

/* Both kernels walk the output in order, each input through its own (possibly zero) strides
 * (EK_BROADCAST_LOOP); a same-shape ADD takes the shortcut above when its shifts allow. */
void ek_add(const ek_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output)
{
    const int32_t *d = p->out_dims;
    if (!EK_ADD_BROADCAST || (p->left_shift == 20 && shortcut_shift(p->in1_shift) && shortcut_shift(p->in2_shift) &&
                              shortcut_shift(p->out_shift) && same_shape(p))) {
        add_same_shape(p, in1, in2, output, d[0] * d[1] * d[2] * d[3]);
        return;
    }
#if EK_ADD_BROADCAST
    EK_BROADCAST_LOOP(int8_t, d, p->in1_strides, p->in2_strides, in1, in2, output, ek_add_one(p, va, vb));
#endif
}

void ek_mul(const ek_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *output)
{
    EK_BROADCAST_LOOP(int8_t, p->out_dims, p->in1_strides, p->in2_strides, in1, in2, output, ek_mul_one(p, va, vb));
}
