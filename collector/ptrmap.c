/* Open-addressing hash map; see ptrmap.h. */
#include "collector/ptrmap.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;
    void *item;      /* NULL = empty slot */
} ptrmap_slot_t;

struct ptrmap {
    ptrmap_slot_t *slots;
    size_t cap;      /* power of two, 0 before the first insert */
    size_t size;
    ptrmap_match_fn match;
};

ptrmap_t *ptrmap_new(ptrmap_match_fn match)
{
    ptrmap_t *self = calloc(1, sizeof(*self));

    if (!self)
        return NULL;
    self->match = match;
    return self;
}

void ptrmap_destroy(ptrmap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

void *ptrmap_find(const ptrmap_t *self, uint64_t hash, const void *key)
{
    if (self->cap == 0)
        return NULL;
    size_t mask = self->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const ptrmap_slot_t *s = &self->slots[i];
        if (!s->item)
            return NULL;
        if (s->hash == hash && self->match(s->item, key))
            return s->item;
    }
}

static void s_place(ptrmap_slot_t *slots, size_t cap, uint64_t hash, void *item)
{
    size_t mask = cap - 1;
    size_t i = hash & mask;

    while (slots[i].item)
        i = (i + 1) & mask;
    slots[i].hash = hash;
    slots[i].item = item;
}

static int s_grow(ptrmap_t *self)
{
    size_t cap = self->cap ? self->cap * 2 : 16;
    ptrmap_slot_t *slots = calloc(cap, sizeof(*slots));

    if (!slots)
        return -1;
    for (size_t i = 0; i < self->cap; i++)
        if (self->slots[i].item)
            s_place(slots, cap, self->slots[i].hash, self->slots[i].item);
    free(self->slots);
    self->slots = slots;
    self->cap = cap;
    return 0;
}

int ptrmap_insert(ptrmap_t *self, uint64_t hash, void *item)
{
    /* Keep the load under 3/4 so probe chains stay short. */
    if ((self->size + 1) * 4 > self->cap * 3 && s_grow(self) < 0)
        return -1;
    s_place(self->slots, self->cap, hash, item);
    self->size++;
    return 0;
}

void *ptrmap_remove(ptrmap_t *self, uint64_t hash, const void *key)
{
    if (self->cap == 0)
        return NULL;
    size_t mask = self->cap - 1;
    size_t i = hash & mask;
    void *found = NULL;

    for (;; i = (i + 1) & mask) {
        ptrmap_slot_t *s = &self->slots[i];
        if (!s->item)
            return NULL;
        if (s->hash == hash && self->match(s->item, key)) {
            found = s->item;
            break;
        }
    }
    /* Backward shift: pull later members of the probe chain into the hole
     * when their home slot is not between the hole and where they sit. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; self->slots[j].item; j = (j + 1) & mask) {
        size_t home = self->slots[j].hash & mask;
        int movable = (hole <= j) ? (home <= hole || home > j)
                                  : (home <= hole && home > j);
        if (movable) {
            self->slots[hole] = self->slots[j];
            hole = j;
        }
    }
    self->slots[hole].item = NULL;
    self->slots[hole].hash = 0;
    self->size--;
    return found;
}

size_t ptrmap_size(const ptrmap_t *self)
{
    return self->size;
}

void ptrmap_clear(ptrmap_t *self)
{
    if (self->cap)
        memset(self->slots, 0, self->cap * sizeof(*self->slots));
    self->size = 0;
}

void *ptrmap_next(const ptrmap_t *self, size_t *cursor)
{
    while (*cursor < self->cap) {
        void *item = self->slots[(*cursor)++].item;
        if (item)
            return item;
    }
    return NULL;
}

uint64_t ptrmap_hash_u64(uint64_t x)
{
    /* splitmix64 finalizer: every input bit affects every output bit. */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint64_t ptrmap_hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = ptrmap_hash_u64(seed ^ len);

    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = ptrmap_hash_u64(h ^ w);
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h = ptrmap_hash_u64(h ^ w ^ 0x9e3779b97f4a7c15ull);
    }
    return h;
}
