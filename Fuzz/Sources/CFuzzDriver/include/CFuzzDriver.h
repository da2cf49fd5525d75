#ifndef ROAS_FUZZ_DRIVER_H
#define ROAS_FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's entry for programs with their own `main` (compiler-rt's FuzzerInterface.h).
/// SwiftPM renames an executable's `main`, so each fuzz target starts libFuzzer through this.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
