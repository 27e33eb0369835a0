/* Open-addressing hash map; see hashmap.h. */
#include "hashmap.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;
    void *item;      /* NULL = empty slot */
} hashmap_slot_t;

struct hashmap {
    hashmap_slot_t *slots;
    size_t cap;      /* power of two, 0 before the first insert */
    size_t size;
    hashmap_match_fn match;
};

hashmap_t *hashmap_new(hashmap_match_fn match)
{
    hashmap_t *self = calloc(1, sizeof(*self));

    if (!self)
        return NULL;
    self->match = match;
    return self;
}

void hashmap_destroy(hashmap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

void *hashmap_find(const hashmap_t *self, uint64_t hash, const void *key)
{
    if (self->cap == 0)
        return NULL;
    size_t mask = self->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const hashmap_slot_t *s = &self->slots[i];
        if (!s->item)
            return NULL;
        if (s->hash == hash && self->match(s->item, key))
            return s->item;
    }
}

static void s_place(hashmap_slot_t *slots, size_t cap, uint64_t hash, void *item)
{
    size_t mask = cap - 1;
    size_t i = hash & mask;

    while (slots[i].item)
        i = (i + 1) & mask;
    slots[i].hash = hash;
    slots[i].item = item;
}

static int s_grow(hashmap_t *self)
{
    size_t cap = self->cap ? self->cap * 2 : 16;
    hashmap_slot_t *slots = calloc(cap, sizeof(*slots));

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

int hashmap_insert(hashmap_t *self, uint64_t hash, void *item)
{
    /* Keep the load under 3/4 so probe chains stay short. */
    if ((self->size + 1) * 4 > self->cap * 3 && s_grow(self) < 0)
        return -1;
    s_place(self->slots, self->cap, hash, item);
    self->size++;
    return 0;
}

void *hashmap_remove(hashmap_t *self, uint64_t hash, const void *key)
{
    if (self->cap == 0)
        return NULL;
    size_t mask = self->cap - 1;
    size_t i = hash & mask;
    void *found = NULL;

    for (;; i = (i + 1) & mask) {
        hashmap_slot_t *s = &self->slots[i];
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

size_t hashmap_size(const hashmap_t *self)
{
    return self->size;
}

void hashmap_clear(hashmap_t *self)
{
    if (self->cap)
        memset(self->slots, 0, self->cap * sizeof(*self->slots));
    self->size = 0;
}

void *hashmap_next(const hashmap_t *self, size_t *cursor)
{
    while (*cursor < self->cap) {
        void *item = self->slots[(*cursor)++].item;
        if (item)
            return item;
    }
    return NULL;
}
