#include "aggregator/core/dedup.h"
#include "hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEDUP_SLOTS (DEDUP_CAPACITY * 2)

typedef struct {
    uint64_t hash;   /* 0 = empty slot */
    uint64_t seq;
    char key[96];    /* "<topic>|<sender>" */
} origin_t;

struct origin_dedup {
    origin_t ring[DEDUP_CAPACITY];
    size_t next;              /* ring position to overwrite */
    uint32_t index[DEDUP_SLOTS]; /* ring position + 1, 0 = empty */
};

static uint64_t
s_hash(const char *key, uint64_t seq)
{
    uint64_t h = hash_mix64(hash_fnv1a(key, seq));
    return h ? h : 1; /* 0 marks an empty slot */
}

origin_dedup_t *
origin_dedup_new(void)
{
    return calloc(1, sizeof(origin_dedup_t));
}

void
origin_dedup_destroy(origin_dedup_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

static size_t
s_find(const origin_dedup_t *self, uint64_t h,
       const char *key, uint64_t seq, int *found)
{
    size_t i = h % DEDUP_SLOTS;
    for (;;) {
        uint32_t pos = self->index[i];
        if (!pos) {
            *found = 0;
            return i;
        }
        const origin_t *o = &self->ring[pos - 1];
        if (o->hash == h && o->seq == seq && strcmp(o->key, key) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) % DEDUP_SLOTS;
    }
}

/* Removes the index entry pointing at ring position pos, re-inserting the
 * entries after it in its probe run (linear-probing deletion). */
static void
s_unindex(origin_dedup_t *self, size_t pos)
{
    const origin_t *o = &self->ring[pos];
    int found;
    size_t i = s_find(self, o->hash, o->key, o->seq, &found);
    if (!found)
        return;
    self->index[i] = 0;
    for (size_t j = (i + 1) % DEDUP_SLOTS; self->index[j];
         j = (j + 1) % DEDUP_SLOTS) {
        uint32_t moved = self->index[j];
        self->index[j] = 0;
        const origin_t *m = &self->ring[moved - 1];
        size_t k = s_find(self, m->hash, m->key, m->seq, &found);
        self->index[k] = moved;
    }
}

int
origin_dedup_check(origin_dedup_t *self, const char *topic,
                   const char *sender, uint64_t seq)
{
    if (!sender || !sender[0])
        return 0;
    char key[96];
    snprintf(key, sizeof key, "%s|%s", topic ? topic : "", sender);
    uint64_t h = s_hash(key, seq);
    int found;
    s_find(self, h, key, seq, &found);
    if (found)
        return 1;
    origin_t *slot = &self->ring[self->next];
    if (slot->hash)
        s_unindex(self, self->next);
    slot->hash = h;
    slot->seq = seq;
    snprintf(slot->key, sizeof slot->key, "%s", key);
    size_t i = s_find(self, h, key, seq, &found);
    self->index[i] = (uint32_t)self->next + 1;
    self->next = (self->next + 1) % DEDUP_CAPACITY;
    return 0;
}
