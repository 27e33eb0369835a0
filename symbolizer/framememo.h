/* A bounded memo of resolved frames that outlives batches:
 * (object serial, offset) -> (name, type, name hash).
 *
 * Real hosts sample the same few thousand functions over and over; without
 * this every batch looks each of them up again (binary search over cold
 * table entries) and rehashes its long demangled name. Serials are never
 * reused: an object evicted from the object cache and loaded again gets a
 * new serial, so memo entries of the old copy simply stop matching and
 * age out. Kernel tables get a new serial on every reload.
 *
 * Set-associative (4 ways, least recently used way replaced), so memory is
 * a fixed slot array plus the names, and the total never exceeds the limit
 * given at creation: a name that does not fit is simply not memoized. */
#ifndef SKYPROF_SYMBOLIZER_FRAMEMEMO_H
#define SKYPROF_SYMBOLIZER_FRAMEMEMO_H

#include <stddef.h>
#include <stdint.h>

typedef struct framememo framememo_t;

typedef struct {
    const char *name;     /* valid until the next put on the memo */
    uint64_t hash;        /* hash_fnv1a(name, type) */
    uint8_t type;
} framememo_hit_t;

/* NULL when limit is too small for a useful memo (or out of memory). */
framememo_t *framememo_new(size_t limit);
void framememo_destroy(framememo_t **self_p);

/* 0 and *hit filled when (serial, offset) is memoized, else -1. */
int framememo_get(framememo_t *self, uint64_t serial, uint64_t offset,
                  framememo_hit_t *hit);

/* Remembers a resolved frame (name copied). Returns the stored copy's
 * hit, or -1 when it was not kept (no room; not an error). */
int framememo_put(framememo_t *self, uint64_t serial, uint64_t offset,
                  const char *name, uint8_t type, uint64_t hash,
                  framememo_hit_t *hit);

/* Heap bytes held (slots + names), never above the limit. */
size_t framememo_bytes(const framememo_t *self);
uint64_t framememo_hits(const framememo_t *self);

#endif
