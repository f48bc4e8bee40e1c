/* Host harness for generated engines (tests only): runs every sample of a binary input file
 * through model_invoke and writes the outputs. Usage: harness INPUTS.bin OUTPUTS.bin */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

int main(int argc, char **argv)
{
    static int8_t input[MODEL_INPUT_SIZE];
    static int8_t output[MODEL_OUTPUT_SIZE];
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
    while (fread(input, 1, MODEL_INPUT_SIZE, in) == MODEL_INPUT_SIZE) {
        if (model_invoke(input, output) != 0) {
            return 1;
        }
        if (fwrite(output, 1, MODEL_OUTPUT_SIZE, out) != MODEL_OUTPUT_SIZE) {
            return 1;
        }
    }
    fclose(in);
    fclose(out);
    return 0;
}
