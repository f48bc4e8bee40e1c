/* Host harness for generated engines (tests only): runs every sample of a binary input file
 * (raw int8 or int16 values, as model_input_t) through model_invoke and writes the outputs.
 * Usage: harness INPUTS.bin OUTPUTS.bin
 * Built with -DHARNESS_IN_PLACE it reads each input straight into model_input_buffer() and
 * passes the arena's own input and output places (no copies); a model with several inputs
 * (two here) reads each into model_input_buffer_n(k) and calls model_invoke_n. */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

int main(int argc, char **argv)
{
    static model_input_t input[MODEL_INPUT_SIZE / sizeof(model_input_t)];
    static model_output_t output[MODEL_OUTPUT_SIZE / sizeof(model_output_t)];
    FILE *in;
    FILE *out;
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUTS.bin OUTPUTS.bin\n", argv[0]);
        return 2;
    }
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {
        fprintf(stderr, "cannot open the files\n");
        return 2;
    }
#if defined(HARNESS_IN_PLACE) && defined(MODEL_NUM_INPUTS)
    /* Several inputs: each read into its own arena place, passed through model_invoke_n. */
    for (;;) {
        const model_input_t *places[MODEL_NUM_INPUTS];
        int k;
        for (k = 0; k < MODEL_NUM_INPUTS; ++k) {
            static const unsigned sizes[MODEL_NUM_INPUTS] = { MODEL_INPUT0_SIZE, MODEL_INPUT1_SIZE };
            places[k] = model_input_buffer_n(k);
            if (fread(model_input_buffer_n(k), 1, sizes[k], in) != sizes[k]) {
                goto done;
            }
        }
        if (model_input_buffer_n(MODEL_NUM_INPUTS) != NULL || model_invoke_n(places, model_output_buffer()) != 0) {
            return 1;
        }
        if (fwrite(model_output_buffer(), 1, MODEL_OUTPUT_SIZE, out) != MODEL_OUTPUT_SIZE) {
            return 1;
        }
    }
done:
    (void)input;
    (void)output;
#elif defined(HARNESS_IN_PLACE)
    while (fread(model_input_buffer(), 1, MODEL_INPUT_SIZE, in) == MODEL_INPUT_SIZE) {
        if (model_invoke(model_input_buffer(), model_output_buffer()) != 0) {
            return 1;
        }
        if (fwrite(model_output_buffer(), 1, MODEL_OUTPUT_SIZE, out) != MODEL_OUTPUT_SIZE) {
            return 1;
        }
    }
    (void)input;
    (void)output;
#else
    while (fread(input, 1, MODEL_INPUT_SIZE, in) == MODEL_INPUT_SIZE) {
        if (model_invoke(input, output) != 0) {
            return 1;
        }
        if (fwrite(output, 1, MODEL_OUTPUT_SIZE, out) != MODEL_OUTPUT_SIZE) {
            return 1;
        }
    }
#endif
    fclose(in);
    fclose(out);
    return 0;
}
