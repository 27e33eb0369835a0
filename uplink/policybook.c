/* Service -> policy UUID: see policybook.h. */
#include "policybook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "hash.h"
#include "json.h"

/* Each query names every service, so this many fits easily in one
 * request and in the OAP's 4 MiB message limit. */
#define BOOK_DEFAULT_MAX 4096
#define BOOK_EMPTY UINT32_MAX

typedef struct {
    char *service;
    char *uuid;
    uint64_t round;            /* last round the service was wanted in */
} s_entry_t;

struct policy_book {
    size_t max;
    s_entry_t *entries;        /* dense, in insertion order */
    size_t n, cap;
    uint32_t *slots;           /* open addressing: index into entries */
    size_t nslots;             /* power of two, > 2 n */
};

policy_book_t *
policy_book_new(size_t max)
{
    policy_book_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->max = max ? max : BOOK_DEFAULT_MAX;
    return self;
}

void
policy_book_destroy(policy_book_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    policy_book_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++) {
        free(self->entries[i].service);
        free(self->entries[i].uuid);
    }
    free(self->entries);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

/* Slot holding service, or the empty slot where it would go. */
static size_t
s_slot(const policy_book_t *self, const char *service)
{
    size_t mask = self->nslots - 1;
    size_t i = (size_t)hash_fnv1a(service, 0x706f6cu) & mask;
    while (self->slots[i] != BOOK_EMPTY &&
           strcmp(self->entries[self->slots[i]].service, service) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Re-inserts every entry into the current index (after a prune moved
 * entries, or into a fresh larger array). */
static void
s_rebuild(policy_book_t *self)
{
    for (size_t i = 0; i < self->nslots; i++)
        self->slots[i] = BOOK_EMPTY;
    for (size_t e = 0; e < self->n; e++)
        self->slots[s_slot(self, self->entries[e].service)] = (uint32_t)e;
}

static int
s_grow_index(policy_book_t *self)
{
    size_t nslots = self->nslots ? self->nslots * 2 : 32;
    uint32_t *slots = malloc(nslots * sizeof *slots);
    if (!slots)
        return -1;
    free(self->slots);
    self->slots = slots;
    self->nslots = nslots;
    s_rebuild(self);
    return 0;
}

static s_entry_t *
s_find(const policy_book_t *self, const char *service)
{
    if (!self->nslots)
        return NULL;
    uint32_t at = self->slots[s_slot(self, service)];
    return at == BOOK_EMPTY ? NULL : &self->entries[at];
}

int
policy_book_want(policy_book_t *self, const char *service, uint64_t round)
{
    s_entry_t *e = s_find(self, service);
    if (e) {
        e->round = round;
        return 0;
    }
    if (self->n == self->max)
        return -1;
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        s_entry_t *grown = realloc(self->entries, cap * sizeof *grown);
        if (!grown)
            return -1;
        self->entries = grown;
        self->cap = cap;
    }
    /* Keep the index at most half full so probes stay short. */
    if (2 * (self->n + 1) >= self->nslots && s_grow_index(self) != 0)
        return -1;
    char *name = strdup(service);
    char *uuid = strdup("");
    if (!name || !uuid) {
        free(name);
        free(uuid);
        return -1;
    }
    self->entries[self->n] = (s_entry_t){ name, uuid, round };
    self->slots[s_slot(self, service)] = (uint32_t)self->n;
    self->n++;
    return 0;
}

void
policy_book_prune(policy_book_t *self, uint64_t round)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->n; i++) {
        if (self->entries[i].round == round) {
            self->entries[kept++] = self->entries[i];
            continue;
        }
        free(self->entries[i].service);
        free(self->entries[i].uuid);
    }
    if (kept == self->n)
        return;
    self->n = kept;
    s_rebuild(self);
}

size_t
policy_book_count(const policy_book_t *self)
{
    return self->n;
}

const char *
policy_book_uuid(const policy_book_t *self, const char *service)
{
    const s_entry_t *e = s_find(self, service);
    return e ? e->uuid : NULL;
}

bool
policy_book_next(const policy_book_t *self, size_t *cursor,
                 const char **service, const char **uuid)
{
    if (*cursor >= self->n)
        return false;
    *service = self->entries[*cursor].service;
    *uuid = self->entries[*cursor].uuid;
    (*cursor)++;
    return true;
}

void
policy_book_forget_uuids(policy_book_t *self)
{
    for (size_t i = 0; i < self->n; i++)
        self->entries[i].uuid[0] = '\0';
}

static int
s_set_uuid(s_entry_t *e, const char *uuid)
{
    if (!strcmp(e->uuid, uuid))
        return 0;
    char *copy = strdup(uuid);
    if (!copy)
        return -1;
    free(e->uuid);
    e->uuid = copy;
    return 0;
}

int
policy_book_learn(policy_book_t *self, const char *json, size_t len,
                  bool apply, char *err, size_t errlen)
{
    int rc = -1;
    char why[200];
    /* The DOM costs a few times the text; the arena bounds it. */
    arena_t *arena = arena_new(len * 8 + 65536);
    if (!arena) {
        snprintf(err, errlen, "out of memory");
        goto cleanup;
    }
    json_value_t *doc = json_parse(json, len, arena, why, sizeof why);
    if (!doc) {
        snprintf(err, errlen, "ServiceWithPolicyJSON: %s", why);
        goto cleanup;
    }
    if (doc->type != JSON_ARRAY) {
        snprintf(err, errlen, "ServiceWithPolicyJSON: not an array");
        goto cleanup;
    }
    for (size_t i = 0; i < doc->n; i++) {
        const json_value_t *item = doc->items[i];
        const json_value_t *name = json_get(item, "ServiceName");
        const json_value_t *uuid = json_get(item, "UUID");
        if (item->type != JSON_OBJECT || !name || name->type != JSON_STRING ||
            !*name->str || (uuid && uuid->type != JSON_STRING &&
                            uuid->type != JSON_NULL)) {
            snprintf(err, errlen, "ServiceWithPolicyJSON: entry %zu has no "
                     "string ServiceName and UUID", i);
            goto cleanup;
        }
    }
    if (apply) {
        for (size_t i = 0; i < doc->n; i++) {
            const json_value_t *uuid = json_get(doc->items[i], "UUID");
            s_entry_t *e = s_find(self, json_get(doc->items[i],
                                                 "ServiceName")->str);
            if (e && s_set_uuid(e, uuid && uuid->type == JSON_STRING
                                       ? uuid->str : "") != 0) {
                snprintf(err, errlen, "out of memory");
                goto cleanup;
            }
        }
    }
    rc = (int)doc->n;
cleanup:
    arena_destroy(&arena);
    return rc;
}
