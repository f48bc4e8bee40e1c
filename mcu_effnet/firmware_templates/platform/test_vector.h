/* The test vector embedded at generation time: one sample of the model's inputs and the host
 * simulator's outputs, packed as bytes (model_invoke's form: each input or output in its own
 * type, back to back in the model's order). */
#ifndef MCU_EFFNET_TEST_VECTOR_H
#define MCU_EFFNET_TEST_VECTOR_H

#include <stdint.h>

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const uint8_t test_vector_input[MODEL_INPUT_SIZE];
extern const uint8_t test_vector_expected[MODEL_OUTPUT_SIZE];

#ifdef __cplusplus
}
#endif

#endif /* MCU_EFFNET_TEST_VECTOR_H */
