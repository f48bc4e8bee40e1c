/* Internal to ek_chunks.c and ek_chunks_dsp.c: views of a convolution's parameters, for the
 * plain and DSP parameter structs alike (ek_conv_params, ek_conv_dsp_params,
 * ek_depthwise_dsp_params: any struct with the geometry fields by these names).
 *
 * A view is a copy of the op's parameters describing part of its output over part of its
 * input; the kernel run on it computes each output value from its window alone, so every value
 * is the whole op's, bit for bit. Padding is where the view's input ends: shifting pad_top and
 * pad_left moves the window's origin, and rows or columns past the view's input are skipped as
 * the whole op skips those past the map. */
#ifndef EK_CONV_VIEW_H
#define EK_CONV_VIEW_H

/* 1x1, stride 1, no padding: output pixel q reads input pixel q alone. */
#define EK_VIEW_POINTWISE(p)                                                                          \
    ((p)->k_h == 1 && (p)->k_w == 1 && (p)->stride_h == 1 && (p)->stride_w == 1 && (p)->pad_top == 0 && \
     (p)->pad_left == 0)

/* `v` (a copy of `*p`) computes output pixels (oy, ox .. ox + n - 1) of one image; `input` moves
 * to the chunk's first pixel for a pointwise op (the kernel's one-run path). */
#define EK_VIEW_PART(v, p, input, oy, ox, n)                       \
    do {                                                           \
        (v).batches = 1;                                           \
        (v).out_h = 1;                                             \
        (v).out_w = (n);                                           \
        if (EK_VIEW_POINTWISE(p)) {                                \
            (v).in_h = 1;                                          \
            (v).in_w = (n);                                        \
            (input) += ((oy) * (p)->in_w + (ox)) * (p)->in_c;      \
        } else {                                                   \
            (v).pad_top = (p)->pad_top - (oy) * (p)->stride_h;     \
            (v).pad_left = (p)->pad_left - (ox) * (p)->stride_w;   \
        }                                                          \
    } while (0)

/* `v` (a copy of `*p`) computes output rows out_base .. out_base + out_count - 1 of one image
 * from input rows in_base .. in_base + in_count - 1 held from the view's input pointer on. */
#define EK_VIEW_BAND(v, p, in_base, in_count, out_base, out_count)                \
    do {                                                                          \
        (v).batches = 1;                                                          \
        (v).in_h = (in_count);                                                    \
        (v).out_h = (out_count);                                                  \
        (v).pad_top = (p)->pad_top - (out_base) * (p)->stride_h + (in_base);      \
    } while (0)

/* The chunk loops' view of a convolution (ek_chunk_shape): its output and input geometry, and
 * whether chunks may run across rows (`flat`). */
#define EK_CHUNK_SHAPE(s, p, flat_)  \
    do {                             \
        (s).out_h = (p)->out_h;      \
        (s).out_w = (p)->out_w;      \
        (s).out_c = (p)->out_c;      \
        (s).in_c = (p)->in_c;        \
        (s).flat = (flat_);          \
    } while (0)

#endif /* EK_CONV_VIEW_H */
