/* Per-op profiling (a project generated with --profile): the runtime calls profile_mark() at
 * fixed points of one inference (native engine: entry, after the input copy, after every op,
 * exit; TFLite Micro: entry, the start and end of every kernel, exit). The harness prints the
 * recorded counter values once the test vector has run. */
#ifndef MCU_EFFNET_PROFILE_H
#define MCU_EFFNET_PROFILE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Records the counter; only the first PROFILE_MARKS marks (one inference) are kept. */
void profile_mark(void);

/* Prints the recorded marks and the measured cost of one mark, then stops recording. */
void profile_print(void);

#ifdef __cplusplus
}
#endif

#endif /* MCU_EFFNET_PROFILE_H */
