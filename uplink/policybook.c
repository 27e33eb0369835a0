/* Service -> policy UUID: see policybook.h. */
#include "policybook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "hashmap.h"
#include "json.h"

/* Each query names every service, so this many fits easily in one
 * request and in the OAP's 4 MiB message limit. */
#define BOOK_DEFAULT_MAX 4096
#define BOOK_HASH_SEED 0x706f6cu

typedef struct {
    char *service;
    char *uuid;
    uint64_t round;            /* last round the service was wanted in */
} s_entry_t;

struct policy_book {
    size_t max;
    s_entry_t **entries;       /* dense, in insertion order */
    size_t n, cap;
    hashmap_t *by_service;     /* service -> entry */
};

static int
s_is_service(const void *item, const void *key)
{
    return strcmp(((const s_entry_t *)item)->service, key) == 0;
}

static void
s_entry_free(s_entry_t *e)
{
    free(e->service);
    free(e->uuid);
    free(e);
}

policy_book_t *
policy_book_new(size_t max)
{
    policy_book_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->max = max ? max : BOOK_DEFAULT_MAX;
    self->by_service = hashmap_new(s_is_service);
    if (!self->by_service)
        policy_book_destroy(&self);
    return self;
}

void
policy_book_destroy(policy_book_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    policy_book_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        s_entry_free(self->entries[i]);
    free(self->entries);
    hashmap_destroy(&self->by_service);
    free(self);
    *self_p = NULL;
}

static s_entry_t *
s_find(const policy_book_t *self, const char *service)
{
    return hashmap_find(self->by_service,
                        hash_fnv1a(service, BOOK_HASH_SEED), service);
}

int
policy_book_want(policy_book_t *self, const char *service, uint64_t round)
{
    int rc = -1;
    s_entry_t *e = s_find(self, service);
    if (e) {
        e->round = round;
        return 0;
    }
    if (self->n == self->max)
        goto cleanup;
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        s_entry_t **grown = realloc(self->entries, cap * sizeof *grown);
        if (!grown)
            goto cleanup;
        self->entries = grown;
        self->cap = cap;
    }
    e = calloc(1, sizeof *e);
    if (!e || !(e->service = strdup(service)) || !(e->uuid = strdup("")) ||
        hashmap_insert(self->by_service, hash_fnv1a(service, BOOK_HASH_SEED),
                       e) != 0)
        goto cleanup;
    e->round = round;
    self->entries[self->n++] = e;
    e = NULL;
    rc = 0;
cleanup:
    if (e)
        s_entry_free(e);
    return rc;
}

void
policy_book_prune(policy_book_t *self, uint64_t round)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->n; i++) {
        s_entry_t *e = self->entries[i];
        if (e->round == round) {
            self->entries[kept++] = e;
            continue;
        }
        hashmap_remove(self->by_service,
                       hash_fnv1a(e->service, BOOK_HASH_SEED), e->service);
        s_entry_free(e);
    }
    self->n = kept;
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
    *service = self->entries[*cursor]->service;
    *uuid = self->entries[*cursor]->uuid;
    (*cursor)++;
    return true;
}

void
policy_book_forget_uuids(policy_book_t *self)
{
    for (size_t i = 0; i < self->n; i++)
        self->entries[i]->uuid[0] = '\0';
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
