/* The run every firmware image performs, whatever the runtime (native engine or TFLite Micro):
 *
 *   1. the embedded test vector: invoke the model once, print the output, compare it with the
 *      host simulator's expected output, print instructions (QEMU) or cycles (board);
 *   2. under QEMU only: every sample in `inputs.bin` (MODEL_INPUT_SIZE bytes each: the model's
 *      inputs back to back, each in its own type) through the model, the outputs appended to
 *      `outputs.bin` (MODEL_OUTPUT_SIZE bytes each, packed the same way);
 *   3. a final status line; the return value becomes the emulator's exit status.
 *
 * Output lines start with "MCU-EFFNET " followed by a keyword and space-separated fields; the
 * format is stable and parsed by `mcu-effnet run` (mcu_effnet/codegen/toolchain.py). */
#include "harness.h"

#include "console.h"
#include "model.h"
#include "platform.h"
#include "test_vector.h"
#if defined(MCU_EFFNET_PROFILE) && MCU_EFFNET_PROFILE
#include "profile.h"
#endif

#include <string.h>

/* Each output's element size and float flag, in the packed order (model.h describes them; a
 * model.h without the table has one output of model_output_t). */
#ifndef MODEL_NUM_OUTPUTS
#ifndef MODEL_OUTPUT_FLOAT
#define MODEL_OUTPUT_FLOAT 0
#endif
#define MODEL_NUM_OUTPUTS 1
#define MODEL_OUTPUT_SIZES { MODEL_OUTPUT_SIZE }
#define MODEL_OUTPUT_ELEMENT_BYTES { sizeof(model_output_t) }
#define MODEL_OUTPUT_FLOATS { MODEL_OUTPUT_FLOAT }
#endif

static const uint32_t harness_output_sizes[MODEL_NUM_OUTPUTS] = MODEL_OUTPUT_SIZES;
static const uint8_t harness_element_bytes[MODEL_NUM_OUTPUTS] = MODEL_OUTPUT_ELEMENT_BYTES;
static const uint8_t harness_floats[MODEL_NUM_OUTPUTS] = MODEL_OUTPUT_FLOATS;

/* The inputs and outputs packed back to back as bytes (model_invoke's form); aligned for any
 * element type, though a later input or output may start at any byte. */
static union {
    uint64_t align;
    uint8_t bytes[MODEL_INPUT_SIZE];
} harness_input;
static union {
    uint64_t align;
    uint8_t bytes[MODEL_OUTPUT_SIZE];
} harness_output;

/* One value of `bytes` bytes at `at`, sign-extended; a float32 as its bits (exact, the host
 * reads them back as float32). memcpy: the packed form is not aligned per element. */
static void print_value(const uint8_t *at, uint8_t bytes, int is_float)
{
    if (is_float) {
        uint32_t bits;
        memcpy(&bits, at, sizeof bits);
        console_u64(bits);
    } else if (bytes == 1u) {
        console_int((int8_t)at[0]);
    } else if (bytes == 2u) {
        int16_t v;
        memcpy(&v, at, sizeof v);
        console_int(v);
    } else if (bytes == 4u) {
        int32_t v;
        memcpy(&v, at, sizeof v);
        console_int(v);
    } else {
        int64_t v;
        memcpy(&v, at, sizeof v);
        if (v < 0) {
            console_char('-');
            console_u64(0u - (uint64_t)v);
        } else {
            console_u64((uint64_t)v);
        }
    }
}

static void line_start(const char *keyword)
{
    console_str("MCU-EFFNET ");
    console_str(keyword);
}

static void field_u64(const char *name, uint64_t value)
{
    console_char(' ');
    console_str(name);
    console_char('=');
    console_u64(value);
}

static void field_str(const char *name, const char *value)
{
    console_char(' ');
    console_str(name);
    console_char('=');
    console_str(value);
}

#if PLATFORM_SEMIHOSTING
/* Returns 0 when there is no inputs.bin or all of it ran, 1 on an error. */
static int run_files(void)
{
    const int in = platform_file_open("inputs.bin", PLATFORM_FILE_READ);
    if (in < 0) {
        line_start("FILES");
        field_u64("samples", 0u);
        console_endline();
        return 0;
    }
    const long length = platform_file_length(in);
    if (length < 0 || (unsigned long)length % MODEL_INPUT_SIZE != 0u) {
        line_start("ERROR");
        field_str("what", "inputs.bin-size");
        console_endline();
        platform_file_close(in);
        return 1;
    }
    const int out = platform_file_open("outputs.bin", PLATFORM_FILE_WRITE);
    if (out < 0) {
        line_start("ERROR");
        field_str("what", "outputs.bin-open");
        console_endline();
        platform_file_close(in);
        return 1;
    }
    const unsigned long samples = (unsigned long)length / MODEL_INPUT_SIZE;
    int status = 0;
    uint64_t ticks = 0u;
    for (unsigned long i = 0; i < samples && status == 0; ++i) {
        if (platform_file_read(in, harness_input.bytes, MODEL_INPUT_SIZE) != MODEL_INPUT_SIZE) {
            status = 1;
            break;
        }
        const uint64_t t0 = platform_counter();
        const int rc = model_invoke((const void *)harness_input.bytes, (void *)harness_output.bytes);
        ticks += platform_counter() - t0;
        if (rc != 0 || platform_file_write(out, harness_output.bytes, MODEL_OUTPUT_SIZE) != MODEL_OUTPUT_SIZE) {
            status = 1;
        }
    }
    platform_file_close(out);
    platform_file_close(in);
    line_start(status == 0 ? "FILES" : "ERROR");
    if (status != 0) {
        field_str("what", "file-io-or-invoke");
    }
    field_u64("samples", samples);
    field_u64("ticks", ticks);
    console_endline();
    return status;
}
#endif

int harness_run(const char *runtime)
{
    line_start("BOARD");
    field_str("name", BOARD_NAME);
    field_str("machine", PLATFORM_MACHINE);
    field_str("runtime", runtime);
    console_endline();
    line_start("MODEL");
    field_u64("input", MODEL_INPUT_SIZE);
    field_u64("output", MODEL_OUTPUT_SIZE);
    field_u64("arena", MODEL_ARENA_SIZE);
    console_endline();

    /* The cost of reading the counter twice, taken off the measurement. */
    uint64_t t0 = platform_counter();
    const uint64_t overhead = platform_counter() - t0;

    memcpy(harness_input.bytes, test_vector_input, MODEL_INPUT_SIZE);
    t0 = platform_counter();
    const int rc = model_invoke((const void *)harness_input.bytes, (void *)harness_output.bytes);
    const uint64_t t1 = platform_counter();
    uint64_t ticks = t1 - t0;
    ticks = ticks > overhead ? ticks - overhead : 0u;
    if (rc != 0) {
        line_start("ERROR");
        field_str("what", "model_invoke");
        field_u64("code", (uint64_t)(uint32_t)rc);
        console_endline();
        return 1;
    }

    /* Every output's values on one line, in order; elements are compared as bytes (a float's
     * bits), counted across the outputs. */
    size_t mismatches = 0;
    size_t first = 0;
    size_t element = 0;
    uint32_t at = 0;
    line_start("OUTPUT");
    for (int k = 0; k < MODEL_NUM_OUTPUTS; ++k) {
        const uint8_t bytes = harness_element_bytes[k];
        for (uint32_t end = at + harness_output_sizes[k]; at < end; at += bytes, ++element) {
            console_char(' ');
            print_value(harness_output.bytes + at, bytes, harness_floats[k]);
            if (memcmp(harness_output.bytes + at, test_vector_expected + at, bytes) != 0) {
                if (mismatches == 0) {
                    first = element;
                }
                ++mismatches;
            }
        }
    }
    console_endline();
    line_start("CHECK");
    console_str(mismatches == 0 ? " ok" : " fail");
    field_u64("mismatches", mismatches);
    if (mismatches != 0) {
        field_u64("first", first);
    }
    console_endline();

    line_start("TICKS");
    field_u64("ticks", ticks);
    field_u64("hz", PLATFORM_COUNTER_HZ);
    console_endline();
#if PLATFORM_COUNTS_INSTRUCTIONS
    /* -icount shift=0: 1 ns of virtual time per instruction. */
    line_start("INSTRUCTIONS");
    field_u64("per_inference", (ticks * 1000000000u + PLATFORM_COUNTER_HZ / 2u) / PLATFORM_COUNTER_HZ);
#else
    line_start("CYCLES");
    field_u64("per_inference", ticks);
#endif
    console_endline();
#if defined(MCU_EFFNET_PROFILE) && MCU_EFFNET_PROFILE
    profile_print(); /* the test vector's per-op marks (a --profile project) */
#endif

    int status = mismatches == 0 ? 0 : 1;
#if PLATFORM_SEMIHOSTING
    if (run_files() != 0) {
        status = 1;
    }
#endif
    line_start("STACK");
    field_u64("used", platform_stack_used());
    field_u64("size", PLATFORM_STACK_SIZE);
    console_endline();
    line_start("DONE");
    field_u64("status", (uint64_t)status);
    console_endline();
    return status;
}
