/* Byte-bounded LRU cache of per-object symbol data, keyed by opaque byte
 * strings (build-id, dev+inode, ...). The cache owns its values and frees
 * them with the callback given at creation when they are evicted, so the
 * total of the sizes it was told never exceeds its limit. */
#ifndef SKYPROF_SYMBOLIZER_OBJCACHE_H
#define SKYPROF_SYMBOLIZER_OBJCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct objcache objcache_t;
typedef struct objcache_entry objcache_entry_t;
typedef void (objcache_free_fn)(void *value);

objcache_t *objcache_new(size_t limit, objcache_free_fn *free_fn);
void objcache_destroy(objcache_t **self_p);

/* The entry for key, made most recently used; NULL when absent. */
objcache_entry_t *objcache_find(objcache_t *self, const void *key,
                                size_t keylen);
void *objcache_value(const objcache_entry_t *entry);

/* Inserts (key must be absent), evicting least recently used entries
 * until it fits. Returns the entry, or NULL when bytes alone exceed the
 * limit or memory runs out: the value is then NOT taken (caller frees). */
objcache_entry_t *objcache_insert(objcache_t *self, const void *key,
                                  size_t keylen, void *value, size_t bytes);

/* The value of entry grew or shrank to bytes: evicts other entries to stay
 * within the limit. Returns 0, or -1 when the entry alone no longer fits:
 * it has then been removed and freed and must not be used. */
int objcache_resize(objcache_t *self, objcache_entry_t *entry, size_t bytes);

/* Removes and frees one entry. */
void objcache_remove(objcache_t *self, objcache_entry_t *entry);

/* Changes whenever an entry is removed or evicted: an entry pointer kept
 * since the same generation is still valid. */
uint64_t objcache_generation(const objcache_t *self);

size_t objcache_bytes(const objcache_t *self);
size_t objcache_count(const objcache_t *self);
size_t objcache_limit(const objcache_t *self);
uint64_t objcache_evictions(const objcache_t *self);

#endif
