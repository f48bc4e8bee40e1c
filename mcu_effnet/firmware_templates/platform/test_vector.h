/* The test vector embedded at generation time: one input and the host simulator's output. */
#ifndef MCU_EFFNET_TEST_VECTOR_H
#define MCU_EFFNET_TEST_VECTOR_H

#include <stdint.h>

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const model_input_t test_vector_input[MODEL_INPUT_SIZE / sizeof(model_input_t)];
extern const model_output_t test_vector_expected[MODEL_OUTPUT_SIZE / sizeof(model_output_t)];

#ifdef __cplusplus
}
#endif

#endif /* MCU_EFFNET_TEST_VECTOR_H */
