/* Per-op profiling: a counter value per mark, printed as
 *
 *   MCU-EFFNET PROFILE marks=<recorded> expected=<PROFILE_MARKS> hz=<counter Hz>
 *   MCU-EFFNET STAMP i=<mark> ticks=<counter value - first mark's>      (one line per mark)
 *   MCU-EFFNET MARKCOST marks=<n> ticks=<n marks back to back> reads_ticks=<the bare readings>
 *
 * A mark costs a few dozen instructions, close to one SysTick tick (40 instructions under QEMU),
 * so its cost is measured here by timing PROFILE_OVERHEAD_MARKS marks back to back: the parser
 * takes the per-mark share off each interval (every interval holds the end of one mark and the
 * start of the next). */
#include "profile.h"

#include "console.h"
#include "platform.h"

#ifndef PROFILE_MARKS
#error "PROFILE_MARKS (marks per inference) comes from the Makefile of a --profile project"
#endif

/* Enough back-to-back marks that the one-tick resolution of the timing is below 0.1 instruction. */
#define PROFILE_OVERHEAD_MARKS 1024u

static uint64_t profile_stamps[PROFILE_MARKS];
static uint32_t profile_count;
static int profile_done;

void profile_mark(void)
{
    const uint64_t now = platform_counter();
    if (profile_count < PROFILE_MARKS) {
        profile_stamps[profile_count] = now;
    }
    ++profile_count;
}

static void field(const char *name, uint64_t value)
{
    console_char(' ');
    console_str(name);
    console_char('=');
    console_u64(value);
}

/* Same code path as during the inference: profile_count is below PROFILE_MARKS for every call
 * (reset per round), so each mark stores its stamp exactly as it did then. `reads` gets the same
 * number of rounds with no mark in between: the two counter readings around each round. */
static uint64_t overhead_ticks(uint64_t *reads)
{
    uint64_t total = 0u;
    *reads = 0u;
    for (uint32_t done = 0u; done < PROFILE_OVERHEAD_MARKS; done += PROFILE_MARKS) {
        profile_count = 0u;
        uint64_t t0 = platform_counter();
        for (uint32_t i = 0; i < PROFILE_MARKS; ++i) {
            profile_mark();
        }
        total += platform_counter() - t0;
        t0 = platform_counter();
        *reads += platform_counter() - t0;
    }
    return total;
}

void profile_print(void)
{
    if (profile_done) {
        return;
    }
    profile_done = 1;
    const uint32_t recorded = profile_count;
    /* Copied before the overhead timing reuses the stamps. */
    const uint64_t first = profile_stamps[0];
    console_str("MCU-EFFNET PROFILE");
    field("marks", recorded);
    field("expected", PROFILE_MARKS);
    field("hz", PLATFORM_COUNTER_HZ);
    console_endline();
    const uint32_t kept = recorded < PROFILE_MARKS ? recorded : PROFILE_MARKS;
    for (uint32_t i = 0; i < kept; ++i) {
        console_str("MCU-EFFNET STAMP");
        field("i", i);
        field("ticks", profile_stamps[i] - first);
        console_endline();
    }
    const uint32_t rounds = (PROFILE_OVERHEAD_MARKS + PROFILE_MARKS - 1u) / PROFILE_MARKS;
    uint64_t reads = 0u;
    const uint64_t ticks = overhead_ticks(&reads);
    console_str("MCU-EFFNET MARKCOST");
    field("marks", (uint64_t)rounds * PROFILE_MARKS);
    field("ticks", ticks);
    field("reads_ticks", reads);
    console_endline();
    profile_count = PROFILE_MARKS; /* later inferences (inputs.bin) are not recorded */
}
