/* Open-addressing hash map of caller-owned items, used by the collector's
 * process, object, batch and task tables.
 *
 * The map stores (hash, item) pairs; the caller computes the hash from its
 * key and supplies a match function, so one implementation serves integer,
 * (dev, inode) and byte-string keys. Linear probing with backward-shift
 * deletion keeps lookups short without tombstones. */
#ifndef SKYPROF_COLLECTOR_HMAP_H
#define SKYPROF_COLLECTOR_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hmap hmap_t;

/* Non-zero when item has the key. */
typedef int (*hmap_match_fn)(const void *item, const void *key);

hmap_t *hmap_new(hmap_match_fn match);
void hmap_destroy(hmap_t **self_p);

void *hmap_find(const hmap_t *self, uint64_t hash, const void *key);
/* The caller makes sure the key is not present yet. 0 ok, -1 no memory. */
int hmap_insert(hmap_t *self, uint64_t hash, void *item);
/* Removes and returns the item with the key, NULL when absent. */
void *hmap_remove(hmap_t *self, uint64_t hash, const void *key);
size_t hmap_size(const hmap_t *self);
/* Forget every item (the items themselves are the caller's). */
void hmap_clear(hmap_t *self);

/* Iteration: start with *cursor = 0; returns NULL at the end. The map must
 * not change during an iteration. */
void *hmap_next(const hmap_t *self, size_t *cursor);

uint64_t hmap_hash_u64(uint64_t x);
uint64_t hmap_hash_bytes(const void *data, size_t len, uint64_t seed);

#endif
