/* The DSP convolution kernels a few output pixels at a time (ek_chunks_dsp.h, ek_chunks.h). */
#include "ek_chunks_dsp.h"

#include "ek_conv_view.h"

#if defined(__ARM_FEATURE_DSP) || defined(EK_ACLE_EMULATION)

/* ---- the k x k kernel: a view with the output narrowed and the padding shifted ---------- */

void ek_conv2d_dsp_part(const void *params, const int8_t *input, int32_t oy, int32_t ox, int32_t n,
                          int8_t *out)
{
    const ek_conv_dsp_params *p = (const ek_conv_dsp_params *)params;
    ek_conv_dsp_params v = *p;
    EK_VIEW_PART(v, p, input, oy, ox, n);
    ek_conv2d_dsp(&v, input, out);
}

static ek_chunk_shape conv_dsp_shape(const ek_conv_dsp_params *p)
{
    ek_chunk_shape s;
    EK_CHUNK_SHAPE(s, p, EK_VIEW_POINTWISE(p));
    return s;
}

void ek_conv2d_dsp_add(const ek_conv_dsp_params *p, const ek_binary_params *add, int32_t conv_first,
                       int32_t chunk, const int8_t *input, const int8_t *other, int8_t *output, int8_t *scratch)
{
    const ek_chunk_shape s = conv_dsp_shape(p);
    ek_conv_add_chunks(ek_conv2d_dsp_part, p, &s, add, conv_first, chunk, input, other, output, scratch);
}

void ek_conv2d_dsp_in_place(const ek_conv_dsp_params *p, int32_t chunk, int8_t *data, int8_t *scratch)
{
    const ek_chunk_shape s = conv_dsp_shape(p);
    if (s.flat && (p->in_c & 3) == 0) {
        /* The kernel's 1x1 path widens a batch of pixels before writing their outputs, each no
         * longer than its input (out_c <= in_c): no output reaches an input not yet read, so the
         * whole op runs over its own input without the chunks' copies (ek_conv_dsp.h). */
        ek_conv2d_dsp(p, data, data);
        return;
    }
    ek_conv_in_place_chunks(ek_conv2d_dsp_part, p, &s, chunk, data, scratch);
}

/* ---- the 1x1 kernels (no padding): a view starting at the chunk's first input pixel ------ */

static ek_conv1x1_dsp_params view_1x1(const ek_conv1x1_dsp_params *p, const int8_t **input, int32_t oy,
                                      int32_t ox, int32_t n)
{
    ek_conv1x1_dsp_params v = *p;
    v.batches = 1;
    v.in_h = 1;
    v.out_h = 1;
    v.out_w = n;
    v.in_w = (n - 1) * p->stride_w + 1; /* stride 1: n, the kernel's one-run path */
    *input += (oy * p->stride_h * p->in_w + ox * p->stride_w) * p->in_c;
    return v;
}

void ek_conv2d_1x1_dsp_part(const void *params, const int8_t *input, int32_t oy, int32_t ox, int32_t n,
                          int8_t *out)
{
    const ek_conv1x1_dsp_params v = view_1x1((const ek_conv1x1_dsp_params *)params, &input, oy, ox, n);
    ek_conv2d_1x1_dsp(&v, input, out);
}

void ek_conv2d_1x1_dsp_fast_part(const void *params, const int8_t *input, int32_t oy, int32_t ox, int32_t n,
                               int8_t *out)
{
    const ek_conv1x1_dsp_params v = view_1x1((const ek_conv1x1_dsp_params *)params, &input, oy, ox, n);
    ek_conv2d_1x1_dsp_fast(&v, input, out);
}

static ek_chunk_shape conv_1x1_shape(const ek_conv1x1_dsp_params *p)
{
    ek_chunk_shape s;
    EK_CHUNK_SHAPE(s, p, p->stride_h == 1 && p->stride_w == 1);
    return s;
}

void ek_conv2d_1x1_dsp_add(const ek_conv1x1_dsp_params *p, const ek_binary_params *add, int32_t conv_first,
                           int32_t chunk, const int8_t *input, const int8_t *other, int8_t *output,
                           int8_t *scratch)
{
    const ek_chunk_shape s = conv_1x1_shape(p);
    ek_conv_add_chunks(ek_conv2d_1x1_dsp_part, p, &s, add, conv_first, chunk, input, other, output, scratch);
}

void ek_conv2d_1x1_dsp_in_place(const ek_conv1x1_dsp_params *p, int32_t chunk, int8_t *data, int8_t *scratch)
{
    const ek_chunk_shape s = conv_1x1_shape(p);
    ek_conv_in_place_chunks(ek_conv2d_1x1_dsp_part, p, &s, chunk, data, scratch);
}

void ek_conv2d_1x1_dsp_fast_add(const ek_conv1x1_dsp_params *p, const ek_binary_params *add, int32_t conv_first,
                                int32_t chunk, const int8_t *input, const int8_t *other, int8_t *output,
                                int8_t *scratch)
{
    const ek_chunk_shape s = conv_1x1_shape(p);
    ek_conv_add_chunks(ek_conv2d_1x1_dsp_fast_part, p, &s, add, conv_first, chunk, input, other, output, scratch);
}

void ek_conv2d_1x1_dsp_fast_in_place(const ek_conv1x1_dsp_params *p, int32_t chunk, int8_t *data,
                                     int8_t *scratch)
{
    const ek_chunk_shape s = conv_1x1_shape(p);
    ek_conv_in_place_chunks(ek_conv2d_1x1_dsp_fast_part, p, &s, chunk, data, scratch);
}

void ek_depthwise_conv2d_dsp_row(const void *params, const int8_t *rows, int32_t base, int32_t count, int32_t oy,
                                 int8_t *out)
{
    const ek_depthwise_dsp_params *p = (const ek_depthwise_dsp_params *)params;
    ek_depthwise_dsp_params v = *p;
    EK_VIEW_BAND(v, p, base, count, oy, 1);
    ek_depthwise_conv2d_dsp(&v, rows, out);
}

/* ---- bands of rows (a tiled segment) ----------------------------------------------------- */

#define EK_GEOMETRY_BAND(kernel, type)                                   \
    EK_DSP_BAND(kernel)                                                  \
    {                                                                    \
        const type *p = (const type *)params;                            \
        type v = *p;                                                     \
        EK_VIEW_BAND(v, p, in_base, in_count, out_base, out_count);      \
        kernel(&v, input, out);                                          \
    }

EK_GEOMETRY_BAND(ek_conv2d_dsp, ek_conv_dsp_params)
EK_GEOMETRY_BAND(ek_conv2d_first_dsp, ek_conv_dsp_params)
EK_GEOMETRY_BAND(ek_conv2d_1x1_narrow_dsp, ek_conv_dsp_params)
EK_GEOMETRY_BAND(ek_depthwise_conv2d_dsp, ek_depthwise_dsp_params)

/* The 1x1 kernels have no padding: the view starts at the band's first input row. */
static ek_conv1x1_dsp_params band_1x1(const ek_conv1x1_dsp_params *p, const int8_t **input, int32_t in_base,
                                      int32_t out_base, int32_t out_count)
{
    ek_conv1x1_dsp_params v = *p;
    v.batches = 1;
    v.out_h = out_count;
    v.in_h = (out_count - 1) * p->stride_h + 1;
    *input += (out_base * p->stride_h - in_base) * p->in_w * p->in_c;
    return v;
}

EK_DSP_BAND(ek_conv2d_1x1_dsp)
{
    const ek_conv1x1_dsp_params v = band_1x1((const ek_conv1x1_dsp_params *)params, &input, in_base, out_base,
                                             out_count);
    (void)in_count;
    ek_conv2d_1x1_dsp(&v, input, out);
}

EK_DSP_BAND(ek_conv2d_1x1_dsp_fast)
{
    const ek_conv1x1_dsp_params v = band_1x1((const ek_conv1x1_dsp_params *)params, &input, in_base, out_base,
                                             out_count);
    (void)in_count;
    ek_conv2d_1x1_dsp_fast(&v, input, out);
}

#else
typedef int ek_chunks_dsp_unused; /* no DSP extension: the plain kernels run (ek_chunks.c) */
#endif
