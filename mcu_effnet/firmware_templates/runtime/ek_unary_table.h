/* Element-wise int8 maps whose output depends on the input value alone (internal to the
 * kernels: LOGISTIC, HARD_SWISH, LEAKY_RELU, TANH). */
#ifndef EK_UNARY_TABLE_H
#define EK_UNARY_TABLE_H

#include <stdint.h>

/* Above this many elements a kernel first evaluates all 256 int8 values into a table on the
 * stack, then looks every element up. */
#define EK_UNARY_TABLE_MIN_SIZE 256

/* `output[i] = ONE(P, input[i])` for i < P->size, through the table when that is cheaper.
 * ONE is the kernel's per-value function, ONE(params, int32 value) -> int8. */
#define EK_UNARY_MAP(ONE, P, INPUT, OUTPUT)                                                                \
    do {                                                                                                   \
        int32_t i_;                                                                                        \
        if ((P)->size > EK_UNARY_TABLE_MIN_SIZE) {                                                         \
            int8_t table_[256];                                                                            \
            for (i_ = 0; i_ < 256; ++i_) {                                                                 \
                table_[i_] = ONE((P), i_ - 128);                                                           \
            }                                                                                              \
            for (i_ = 0; i_ < (P)->size; ++i_) {                                                           \
                (OUTPUT)[i_] = table_[(int32_t)(INPUT)[i_] + 128];                                         \
            }                                                                                              \
        } else {                                                                                           \
            for (i_ = 0; i_ < (P)->size; ++i_) {                                                           \
                (OUTPUT)[i_] = ONE((P), (INPUT)[i_]);                                                      \
            }                                                                                              \
        }                                                                                                  \
    } while (0)

#endif /* EK_UNARY_TABLE_H */
