/* Host harness for generated engines (tests only): runs every sample of a binary input file
 * (model_invoke's packed form: the inputs back to back, each in its own type) through
 * model_invoke and writes the outputs, packed the same way.
 * Usage: harness INPUTS.bin OUTPUTS.bin
 * Built with -DHARNESS_IN_PLACE it reads each input straight into its arena place and passes the
 * arena's own output places (no copies): model_input_buffer() / model_output_buffer() for one
 * input and output, model_input_buffer_n(k) / model_output_buffer_n(k) through model_invoke_n
 * for several. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

#if MODEL_NUM_INPUTS > 1 || MODEL_NUM_OUTPUTS > 1
#define HARNESS_SEVERAL 1
#else
#define HARNESS_SEVERAL 0
#endif

int main(int argc, char **argv)
{
    static union {
        uint64_t align;
        uint8_t bytes[MODEL_INPUT_SIZE];
    } input;
    static union {
        uint64_t align;
        uint8_t bytes[MODEL_OUTPUT_SIZE];
    } output;
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
#if defined(HARNESS_IN_PLACE) && HARNESS_SEVERAL
    /* Each input read into its own arena place, each output left in its own. */
    for (;;) {
        static const unsigned in_sizes[MODEL_NUM_INPUTS] = MODEL_INPUT_SIZES;
        const void *places[MODEL_NUM_INPUTS];
        void *outs[MODEL_NUM_OUTPUTS];
        int k;
        for (k = 0; k < MODEL_NUM_INPUTS; ++k) {
            places[k] = model_input_buffer_n(k);
            if (fread(model_input_buffer_n(k), 1, in_sizes[k], in) != in_sizes[k]) {
                goto done;
            }
        }
        for (k = 0; k < MODEL_NUM_OUTPUTS; ++k) {
            outs[k] = model_output_buffer_n(k);
        }
        if (model_input_buffer_n(MODEL_NUM_INPUTS) != NULL || model_output_buffer_n(MODEL_NUM_OUTPUTS) != NULL ||
            model_invoke_n(places, outs) != 0) {
            return 1;
        }
        for (k = 0; k < MODEL_NUM_OUTPUTS; ++k) {
            static const unsigned out_sizes[MODEL_NUM_OUTPUTS] = MODEL_OUTPUT_SIZES;
            if (fwrite(outs[k], 1, out_sizes[k], out) != out_sizes[k]) {
                return 1;
            }
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
    while (fread(input.bytes, 1, MODEL_INPUT_SIZE, in) == MODEL_INPUT_SIZE) {
        if (model_invoke((const void *)input.bytes, (void *)output.bytes) != 0) {
            return 1;
        }
        if (fwrite(output.bytes, 1, MODEL_OUTPUT_SIZE, out) != MODEL_OUTPUT_SIZE) {
            return 1;
        }
    }
#endif
    fclose(in);
    fclose(out);
    return 0;
}
