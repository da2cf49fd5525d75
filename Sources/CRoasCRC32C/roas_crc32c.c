#include "roas_crc32c.h"

#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>

int roas_crc32c_hardware_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

// Compiled for SSE 4.2 whatever the target's baseline; reached only after the run-time check.
__attribute__((target("sse4.2")))
uint32_t roas_crc32c_hardware(uint32_t crc, const void *bytes, size_t count) {
    const uint8_t *pointer = bytes;
    uint64_t register64 = crc;
    while (count >= 8) {
        uint64_t word;
        memcpy(&word, pointer, 8);  // unaligned, little-endian: the first byte is the low one
        register64 = _mm_crc32_u64(register64, word);
        pointer += 8;
        count -= 8;
    }
    uint32_t register32 = (uint32_t)register64;
    while (count > 0) {
        register32 = _mm_crc32_u8(register32, *pointer);
        pointer += 1;
        count -= 1;
    }
    return register32;
}

#else

int roas_crc32c_hardware_available(void) { return 0; }

uint32_t roas_crc32c_hardware(uint32_t crc, const void *bytes, size_t count) {
    (void)bytes;
    (void)count;
    return crc;
}

#endif
