/* Open-addressing hash map of caller-owned items, used by the collector's
 * process, object, batch and task tables.
 *
 * The map stores (hash, item) pairs; the caller computes the hash from its
 * key and supplies a match function, so one implementation serves integer,
 * (dev, inode) and byte-string keys. Linear probing with backward-shift
 * deletion keeps lookups short without tombstones. */
#ifndef SKYPROF_COLLECTOR_PTRMAP_H
#define SKYPROF_COLLECTOR_PTRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct ptrmap ptrmap_t;

/* Non-zero when item has the key. */
typedef int (*ptrmap_match_fn)(const void *item, const void *key);

ptrmap_t *ptrmap_new(ptrmap_match_fn match);
void ptrmap_destroy(ptrmap_t **self_p);

void *ptrmap_find(const ptrmap_t *self, uint64_t hash, const void *key);
/* The caller makes sure the key is not present yet. 0 ok, -1 no memory. */
int ptrmap_insert(ptrmap_t *self, uint64_t hash, void *item);
/* Removes and returns the item with the key, NULL when absent. */
void *ptrmap_remove(ptrmap_t *self, uint64_t hash, const void *key);
size_t ptrmap_size(const ptrmap_t *self);
/* Forget every item (the items themselves are the caller's). */
void ptrmap_clear(ptrmap_t *self);

/* Iteration: start with *cursor = 0; returns NULL at the end. The map must
 * not change during an iteration. */
void *ptrmap_next(const ptrmap_t *self, size_t *cursor);

uint64_t ptrmap_hash_u64(uint64_t x);
uint64_t ptrmap_hash_bytes(const void *data, size_t len, uint64_t seed);

#endif
