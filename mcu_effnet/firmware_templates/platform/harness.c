/* The run every firmware image performs, whatever the runtime (native engine or TFLite Micro):
 *
 *   1. the embedded test vector: invoke the model once, print the output, compare it with the
 *      host simulator's expected output, print instructions (QEMU) or cycles (board);
 *   2. under QEMU only: every input in `inputs.bin` (raw int8 or int16 values, MODEL_INPUT_SIZE bytes each)
 *      through the model, outputs appended to `outputs.bin` (MODEL_OUTPUT_SIZE bytes each);
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

/* Element counts; the sizes in model.h are in bytes (2 per value in a 16x8 model). */
#define HARNESS_INPUT_COUNT (MODEL_INPUT_SIZE / sizeof(model_input_t))
#define HARNESS_OUTPUT_COUNT (MODEL_OUTPUT_SIZE / sizeof(model_output_t))

#ifndef MODEL_OUTPUT_FLOAT
#define MODEL_OUTPUT_FLOAT 0
#endif

#if MODEL_OUTPUT_FLOAT
/* A float32 output travels as its bits (exact; the host reads them back as float32). */
static uint32_t harness_value(model_output_t v)
{
    union {
        float f;
        uint32_t u;
    } bits;
    bits.f = v;
    return bits.u;
}
#define HARNESS_PRINT(v) console_u64(harness_value(v))
#define HARNESS_SAME(a, b) (harness_value(a) == harness_value(b))
#else
#define HARNESS_PRINT(v) console_int(v)
#define HARNESS_SAME(a, b) ((a) == (b))
#endif

static model_input_t harness_input[HARNESS_INPUT_COUNT];
static model_output_t harness_output[HARNESS_OUTPUT_COUNT];

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
        if (platform_file_read(in, harness_input, MODEL_INPUT_SIZE) != MODEL_INPUT_SIZE) {
            status = 1;
            break;
        }
        const uint64_t t0 = platform_counter();
        const int rc = model_invoke(harness_input, harness_output);
        ticks += platform_counter() - t0;
        if (rc != 0 || platform_file_write(out, harness_output, MODEL_OUTPUT_SIZE) != MODEL_OUTPUT_SIZE) {
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

    for (size_t i = 0; i < HARNESS_INPUT_COUNT; ++i) {
        harness_input[i] = test_vector_input[i];
    }
    t0 = platform_counter();
    const int rc = model_invoke(harness_input, harness_output);
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

    line_start("OUTPUT");
    for (size_t i = 0; i < HARNESS_OUTPUT_COUNT; ++i) {
        console_char(' ');
        HARNESS_PRINT(harness_output[i]);
    }
    console_endline();

    size_t mismatches = 0;
    size_t first = 0;
    for (size_t i = 0; i < HARNESS_OUTPUT_COUNT; ++i) {
        if (!HARNESS_SAME(harness_output[i], test_vector_expected[i])) {
            if (mismatches == 0) {
                first = i;
            }
            ++mismatches;
        }
    }
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
