#ifndef ROAS_CRC32C_H
#define ROAS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// Whether this CPU computes CRC-32C in hardware (x86-64 SSE 4.2, checked at run time).
int roas_crc32c_hardware_available(void);

/// Advances the CRC-32C register `crc` (not inverted: callers invert before and after) over
/// `count` bytes at `bytes` with the CPU's CRC32 instruction. Only call it when
/// `roas_crc32c_hardware_available()` is non-zero.
uint32_t roas_crc32c_hardware(uint32_t crc, const void *bytes, size_t count);

#endif
