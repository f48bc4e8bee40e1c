/* The test-vector / file run shared by every runtime (see harness.c). */
#ifndef MCU_EFFNET_HARNESS_H
#define MCU_EFFNET_HARNESS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Runs the embedded test vector (and, under QEMU, inputs.bin); returns the exit status. */
int harness_run(const char *runtime);

#ifdef __cplusplus
}
#endif

#endif /* MCU_EFFNET_HARNESS_H */
