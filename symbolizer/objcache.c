/* LRU cache: chained hash table + doubly linked recency list. Each entry's
 * accounted bytes include the entry itself and its key, so even a cache of
 * tiny negative entries stays within the limit. */
#include "symbolizer/objcache.h"

#include <stdlib.h>
#include <string.h>

struct objcache_entry {
    objcache_entry_t *hnext;          /* hash chain */
    objcache_entry_t *prev, *next;    /* recency list, head = newest */
    uint64_t hash;
    void *value;
    size_t bytes;                     /* value + overhead */
    size_t keylen;
    unsigned char key[];
};

struct objcache {
    objcache_entry_t **buckets;
    size_t nbuckets;                  /* power of two */
    size_t count;
    size_t bytes;
    size_t limit;
    uint64_t evictions;
    uint64_t generation;
    objcache_entry_t *head, *tail;
    objcache_free_fn *free_fn;
};

/* Eight bytes per step: keys are build-ids and paths, hashed on every
 * frame lookup, so a byte-at-a-time hash shows up in profiles. */
static uint64_t
s_hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, len);
    h = (h ^ tail) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return h;
}

objcache_t *
objcache_new(size_t limit, objcache_free_fn *free_fn)
{
    objcache_t *self = calloc(1, sizeof(*self));
    if (!self)
        goto cleanup;
    self->nbuckets = 256;
    self->buckets = calloc(self->nbuckets, sizeof(*self->buckets));
    if (!self->buckets) {
        free(self);
        self = NULL;
        goto cleanup;
    }
    self->limit = limit;
    self->free_fn = free_fn;
cleanup:
    return self;
}

static void
s_unlink_lru(objcache_t *self, objcache_entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        self->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        self->tail = e->prev;
    e->prev = e->next = NULL;
}

static void
s_push_front(objcache_t *self, objcache_entry_t *e)
{
    e->prev = NULL;
    e->next = self->head;
    if (self->head)
        self->head->prev = e;
    self->head = e;
    if (!self->tail)
        self->tail = e;
}

void
objcache_remove(objcache_t *self, objcache_entry_t *entry)
{
    objcache_entry_t **pp = &self->buckets[entry->hash & (self->nbuckets - 1)];
    while (*pp && *pp != entry)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = entry->hnext;
    s_unlink_lru(self, entry);
    self->generation++;
    self->count--;
    self->bytes -= entry->bytes;
    if (self->free_fn && entry->value)
        self->free_fn(entry->value);
    free(entry);
}

void
objcache_destroy(objcache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    objcache_t *self = *self_p;
    while (self->head)
        objcache_remove(self, self->head);
    free(self->buckets);
    free(self);
    *self_p = NULL;
}

objcache_entry_t *
objcache_find(objcache_t *self, const void *key, size_t keylen)
{
    uint64_t h = s_hash(key, keylen);
    objcache_entry_t *e = self->buckets[h & (self->nbuckets - 1)];
    while (e && !(e->hash == h && e->keylen == keylen &&
                  memcmp(e->key, key, keylen) == 0))
        e = e->hnext;
    if (e && e != self->head) {
        s_unlink_lru(self, e);
        s_push_front(self, e);
    }
    return e;
}

void *
objcache_value(const objcache_entry_t *entry)
{
    return entry->value;
}

/* Evicts from the old end, sparing `keep`, until `need` more bytes fit. */
static void
s_make_room(objcache_t *self, size_t need, const objcache_entry_t *keep)
{
    objcache_entry_t *e = self->tail;
    while (e && self->bytes + need > self->limit) {
        objcache_entry_t *prev = e->prev;
        if (e != keep) {
            objcache_remove(self, e);
            self->evictions++;
        }
        e = prev;
    }
}

static void
s_grow_buckets(objcache_t *self)
{
    size_t n = self->nbuckets * 2;
    objcache_entry_t **b = calloc(n, sizeof(*b));
    if (!b)
        return;   /* longer chains, still correct */
    for (size_t i = 0; i < self->nbuckets; i++) {
        objcache_entry_t *e = self->buckets[i];
        while (e) {
            objcache_entry_t *next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(self->buckets);
    self->buckets = b;
    self->nbuckets = n;
}

objcache_entry_t *
objcache_insert(objcache_t *self, const void *key, size_t keylen, void *value,
                size_t bytes)
{
    objcache_entry_t *e = NULL;
    size_t total = bytes + sizeof(*e) + keylen;
    if (total > self->limit)
        goto cleanup;
    e = malloc(sizeof(*e) + keylen);
    if (!e)
        goto cleanup;
    s_make_room(self, total, NULL);
    if (self->count + 1 > self->nbuckets)
        s_grow_buckets(self);
    e->hash = s_hash(key, keylen);
    e->value = value;
    e->bytes = total;
    e->keylen = keylen;
    memcpy(e->key, key, keylen);
    size_t slot = e->hash & (self->nbuckets - 1);
    e->hnext = self->buckets[slot];
    self->buckets[slot] = e;
    s_push_front(self, e);
    self->count++;
    self->bytes += total;
cleanup:
    return e;
}

int
objcache_resize(objcache_t *self, objcache_entry_t *entry, size_t bytes)
{
    int rc = -1;
    size_t total = bytes + sizeof(*entry) + entry->keylen;
    if (total > self->limit) {
        objcache_remove(self, entry);
        self->evictions++;
        goto cleanup;
    }
    self->bytes -= entry->bytes;
    entry->bytes = 0;
    s_make_room(self, total, entry);
    entry->bytes = total;
    self->bytes += total;
    rc = 0;
cleanup:
    return rc;
}

uint64_t objcache_generation(const objcache_t *self) { return self->generation; }
size_t objcache_bytes(const objcache_t *self) { return self->bytes; }
size_t objcache_count(const objcache_t *self) { return self->count; }
size_t objcache_limit(const objcache_t *self) { return self->limit; }
uint64_t objcache_evictions(const objcache_t *self) { return self->evictions; }
