/* Kernel symbol addresses from /proc/kallsyms (root, or kptr_restrict
 * off: otherwise every address reads as 0, which these treat as absent). */
#ifndef SKYPROF_LIB_KALLSYMS_H
#define SKYPROF_LIB_KALLSYMS_H

#include <stddef.h>
#include <stdint.h>

/* The address of each of the n names into addrs (0 for a name the file
 * does not have), in one pass. 0, or -1 when the file cannot be read. */
int kallsyms_addrs(const char *const *names, size_t n, uint64_t *addrs);

/* [lo, hi) of a symbol: its address and the lowest address above it. 0,
 * or -1 when the symbol (or an address above it) is not there. */
int kallsyms_range(const char *name, uint64_t *lo, uint64_t *hi);

#endif
