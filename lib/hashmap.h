/* Open-addressing hash map of caller-owned items: the collector's process,
 * object, batch and task tables, the uplink's policy book and symbol-check
 * cache.
 *
 * The map stores (hash, item) pairs; the caller computes the hash from its
 * key and supplies a match function, so one implementation serves integer,
 * (dev, inode) and byte-string keys. Linear probing with backward-shift
 * deletion keeps lookups short without tombstones. */
#ifndef SKYPROF_HASHMAP_H
#define SKYPROF_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"   /* hash_split64, hash_bytes64, hash_fnv1a for keys */

typedef struct hashmap hashmap_t;

/* Non-zero when item has the key. */
typedef int (*hashmap_match_fn)(const void *item, const void *key);

hashmap_t *hashmap_new(hashmap_match_fn match);
void hashmap_destroy(hashmap_t **self_p);

void *hashmap_find(const hashmap_t *self, uint64_t hash, const void *key);
/* The caller makes sure the key is not present yet. 0 ok, -1 no memory. */
int hashmap_insert(hashmap_t *self, uint64_t hash, void *item);
/* Removes and returns the item with the key, NULL when absent. */
void *hashmap_remove(hashmap_t *self, uint64_t hash, const void *key);
size_t hashmap_size(const hashmap_t *self);
/* Forget every item (the items themselves are the caller's). */
void hashmap_clear(hashmap_t *self);

/* Iteration: start with *cursor = 0; returns NULL at the end. The map must
 * not change during an iteration. */
void *hashmap_next(const hashmap_t *self, size_t *cursor);

#endif
