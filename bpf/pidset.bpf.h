/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The set of processes a probe follows (tgids), tested first on every event
 * so that the threads nobody asked about leave within a few instructions.
 * Filled by user space (collector/pidset.c).
 *
 * Two maps:
 *  - BITS, an array of 64-bit words with a bit per tgid below
 *    64 * max_entries (user space sizes it to the host's pid_max before
 *    load). An array lookup is inlined by the verifier, so the test is a
 *    bounds check, a load and a shift: no helper call, no hash. Exact, no
 *    confirmation needed.
 *  - PIDS, a hash of the tgids past the bitmap (pid_max raised after the
 *    load): consulted only for those. */
#ifndef SKYPROF_BPF_PIDSET_BPF_H
#define SKYPROF_BPF_PIDSET_BPF_H

#include <bpf/bpf_helpers.h>

/* Words of the bitmap until user space sizes it (65536 tgids), and tgids
 * past the bitmap the hash holds. */
#define SKY_PIDSET_DEFAULT_WORDS 1024u
#define SKY_PIDSET_OVERFLOW_PIDS 16384u

#define SKY_PIDSET_MAPS(bits, pids)                                       \
    struct {                                                              \
        __uint(type, BPF_MAP_TYPE_ARRAY);                                 \
        __uint(max_entries, SKY_PIDSET_DEFAULT_WORDS);                    \
        __type(key, __u32);                                               \
        __type(value, __u64);                                             \
    } bits SEC(".maps");                                                  \
    struct {                                                              \
        __uint(type, BPF_MAP_TYPE_HASH);                                  \
        __uint(max_entries, SKY_PIDSET_OVERFLOW_PIDS);                    \
        __type(key, __u32);                                               \
        __type(value, __u32);                                             \
    } pids SEC(".maps")

/* Whether tgid is in the set whose maps are bits and pids. */
static __always_inline int sky_pidset_has(void *bits, void *pids, __u32 tgid)
{
    __u32 word = tgid / 64;
    __u64 *w = bpf_map_lookup_elem(bits, &word);

    if (w)
        return (*w >> (tgid % 64)) & 1;
    return bpf_map_lookup_elem(pids, &tgid) != NULL;
}

#endif
