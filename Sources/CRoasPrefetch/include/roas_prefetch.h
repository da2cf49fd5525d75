#ifndef ROAS_PREFETCH_H
#define ROAS_PREFETCH_H

/// Asks the CPU to start loading the cache line at `address` for reading, without waiting for it
/// (a hint: no fault, no effect on results). Inlined into Swift by the Clang importer.
static inline void roas_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
