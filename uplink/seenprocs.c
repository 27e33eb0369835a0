/* The facts of the processes proc.events named, by pid over lib/hashmap.
 * See seenprocs.h. */
#include "seenprocs.h"

#include <stdlib.h>
#include <string.h>

#include "hashmap.h"

struct seen_procs {
    hashmap_t *by_pid;         /* pid -> seen_proc_t */
    size_t max;
};

static uint64_t
s_hash(uint32_t pid)
{
    return hash_split64(pid);
}

static int
s_match(const void *item, const void *key)
{
    return ((const seen_proc_t *)item)->pid == *(const uint32_t *)key;
}

static void
s_free(seen_proc_t *p)
{
    if (!p)
        return;
    free(p->exe);
    free(p->cmdline);
    free(p->comm);
    free(p->container_id);
    free(p);
}

seen_procs_t *
seen_procs_new(size_t max)
{
    seen_procs_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->max = max ? max : 65536;
    if (!(self->by_pid = hashmap_new(s_match)))
        seen_procs_destroy(&self);
    return self;
}

void
seen_procs_destroy(seen_procs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    seen_procs_t *self = *self_p;
    size_t cursor = 0;
    seen_proc_t *p;
    while (self->by_pid && (p = hashmap_next(self->by_pid, &cursor)))
        s_free(p);
    hashmap_destroy(&self->by_pid);
    free(self);
    *self_p = NULL;
}

const seen_proc_t *
seen_procs_get(const seen_procs_t *self, uint32_t pid)
{
    return hashmap_find(self->by_pid, s_hash(pid), &pid);
}

void
seen_procs_remove(seen_procs_t *self, uint32_t pid)
{
    s_free(hashmap_remove(self->by_pid, s_hash(pid), &pid));
}

const seen_proc_t *
seen_procs_put(seen_procs_t *self, const wire_proc_event_t *ev,
               uint64_t now_ms)
{
    seen_proc_t *p = NULL;
    seen_procs_remove(self, ev->pid);
    if (hashmap_size(self->by_pid) >= self->max || !ev->cmdline ||
        !*ev->cmdline)
        goto cleanup;
    if (!(p = calloc(1, sizeof *p)))
        goto cleanup;
    p->pid = ev->pid;
    p->exe = strdup(ev->exe ? ev->exe : "");
    p->cmdline = strndup(ev->cmdline, SEEN_MAX_CMDLINE - 1);
    p->comm = strdup(ev->comm ? ev->comm : "");
    p->container_id = strdup(ev->container_id ? ev->container_id : "");
    p->has_symbols = ev->has_symbols != 0;
    p->seen_ms = now_ms;
    if (!p->exe || !p->cmdline || !p->comm || !p->container_id ||
        hashmap_insert(self->by_pid, s_hash(p->pid), p) != 0) {
        s_free(p);
        p = NULL;
    }
cleanup:
    return p;
}

size_t
seen_procs_count(const seen_procs_t *self)
{
    return hashmap_size(self->by_pid);
}

size_t
seen_procs_expire(seen_procs_t *self, uint64_t cutoff_ms)
{
    /* The map must not change while it is walked: collect, then drop. */
    uint32_t gone[256];
    size_t n, total = 0;
    do {
        n = 0;
        size_t cursor = 0;
        const seen_proc_t *p;
        while (n < 256 && (p = hashmap_next(self->by_pid, &cursor)))
            if (p->seen_ms < cutoff_ms)
                gone[n++] = p->pid;
        for (size_t i = 0; i < n; i++)
            seen_procs_remove(self, gone[i]);
        total += n;
    } while (n == 256);
    return total;
}

const seen_proc_t *
seen_procs_next(const seen_procs_t *self, size_t *cursor)
{
    return hashmap_next(self->by_pid, cursor);
}
