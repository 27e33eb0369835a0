/* Frame memo (see framememo.h). */
#include "symbolizer/framememo.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define WAYS 4
/* Slot array sized for names of about this many bytes on average: C++
 * names run long, C names short; the budget left over holds the names. */
#define AVG_ENTRY_BYTES 96u

typedef struct {
    uint64_t serial;      /* 0 = empty (serials start at 1) */
    uint64_t offset;
    uint64_t hash;
    char *name;
    uint32_t stamp;       /* recency, for choosing the way to replace */
    uint16_t name_bytes;  /* allocation charged for name */
    uint8_t type;
} memo_slot_t;

struct framememo {
    memo_slot_t *slots;
    size_t nsets;         /* power of two */
    size_t limit, bytes;
    uint32_t tick;
    uint64_t hits;
};

framememo_t *
framememo_new(size_t limit)
{
    framememo_t *self = NULL;
    size_t nsets = 1;
    while (nsets * 2 * WAYS * AVG_ENTRY_BYTES <= limit)
        nsets *= 2;
    if (nsets * WAYS * sizeof(memo_slot_t) * 2 > limit)
        goto cleanup;            /* not even room for the slots and names */
    self = calloc(1, sizeof(*self));
    if (!self)
        goto cleanup;
    /* calloc: untouched slots cost no resident memory until used. */
    self->slots = calloc(nsets * WAYS, sizeof(*self->slots));
    if (!self->slots) {
        free(self);
        self = NULL;
        goto cleanup;
    }
    self->nsets = nsets;
    self->limit = limit;
    self->bytes = sizeof(*self) + nsets * WAYS * sizeof(*self->slots);
cleanup:
    return self;
}

void
framememo_destroy(framememo_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    framememo_t *self = *self_p;
    for (size_t i = 0; i < self->nsets * WAYS; i++)
        free(self->slots[i].name);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

static memo_slot_t *
s_set(framememo_t *self, uint64_t serial, uint64_t offset)
{
    uint64_t h = hash_mix64(offset ^ hash_mix64(serial));
    return &self->slots[(h & (self->nsets - 1)) * WAYS];
}

static void
s_fill(const memo_slot_t *slot, framememo_hit_t *hit)
{
    hit->name = slot->name;
    hit->hash = slot->hash;
    hit->type = slot->type;
}

int
framememo_get(framememo_t *self, uint64_t serial, uint64_t offset,
              framememo_hit_t *hit)
{
    memo_slot_t *set = s_set(self, serial, offset);
    for (int w = 0; w < WAYS; w++) {
        memo_slot_t *slot = &set[w];
        if (slot->serial == serial && slot->offset == offset && slot->name) {
            slot->stamp = ++self->tick;
            self->hits++;
            s_fill(slot, hit);
            return 0;
        }
    }
    return -1;
}

static void
s_clear(framememo_t *self, memo_slot_t *slot)
{
    if (slot->name) {
        free(slot->name);
        self->bytes -= slot->name_bytes;
    }
    memset(slot, 0, sizeof(*slot));
}

int
framememo_put(framememo_t *self, uint64_t serial, uint64_t offset,
              const char *name, uint8_t type, uint64_t hash,
              framememo_hit_t *hit)
{
    int rc = -1;
    memo_slot_t *set = s_set(self, serial, offset);
    memo_slot_t *victim = &set[0];
    for (int w = 0; w < WAYS; w++) {
        memo_slot_t *slot = &set[w];
        if (!slot->name || (slot->serial == serial && slot->offset == offset)) {
            victim = slot;
            break;
        }
        /* Wrapping unsigned difference: the oldest stamp is the one
         * furthest behind the current tick. */
        if (self->tick - slot->stamp > self->tick - victim->stamp)
            victim = slot;
    }
    s_clear(self, victim);
    size_t len = strlen(name);
    /* Charge what malloc really keeps: 16-byte granules plus a header. */
    size_t charge = ((len + 1 + 8 + 15) & ~(size_t)15);
    if (charge > UINT16_MAX || self->bytes + charge > self->limit)
        goto cleanup;
    char *copy = malloc(len + 1);
    if (!copy)
        goto cleanup;
    memcpy(copy, name, len + 1);
    victim->serial = serial;
    victim->offset = offset;
    victim->hash = hash;
    victim->name = copy;
    victim->name_bytes = (uint16_t)charge;
    victim->type = type;
    victim->stamp = ++self->tick;
    self->bytes += charge;
    if (hit)
        s_fill(victim, hit);
    rc = 0;
cleanup:
    return rc;
}

size_t
framememo_bytes(const framememo_t *self)
{
    return self ? self->bytes : 0;
}

uint64_t
framememo_hits(const framememo_t *self)
{
    return self ? self->hits : 0;
}
