/* The facts of the processes proc.events named: a chained hash by pid.
 * See seenprocs.h. */
#include "seenprocs.h"

#include <stdlib.h>
#include <string.h>

#define SEEN_BUCKETS 4096

struct seen_procs {
    seen_proc_t *buckets[SEEN_BUCKETS];
    size_t count;
    size_t max;
};

static size_t
s_bucket(uint32_t pid)
{
    return (pid * 2654435761u) % SEEN_BUCKETS;
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
    if (self)
        self->max = max ? max : 65536;
    return self;
}

void
seen_procs_destroy(seen_procs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    seen_procs_t *self = *self_p;
    for (size_t b = 0; b < SEEN_BUCKETS; b++) {
        seen_proc_t *p = self->buckets[b];
        while (p) {
            seen_proc_t *next = p->next;
            s_free(p);
            p = next;
        }
    }
    free(self);
    *self_p = NULL;
}

const seen_proc_t *
seen_procs_get(const seen_procs_t *self, uint32_t pid)
{
    for (seen_proc_t *p = self->buckets[s_bucket(pid)]; p; p = p->next)
        if (p->pid == pid)
            return p;
    return NULL;
}

void
seen_procs_remove(seen_procs_t *self, uint32_t pid)
{
    seen_proc_t **link = &self->buckets[s_bucket(pid)];
    while (*link) {
        seen_proc_t *p = *link;
        if (p->pid == pid) {
            *link = p->next;
            s_free(p);
            self->count--;
            return;
        }
        link = &p->next;
    }
}

const seen_proc_t *
seen_procs_put(seen_procs_t *self, const wire_proc_event_t *ev,
               uint64_t now_ms)
{
    seen_proc_t *p = NULL;
    seen_procs_remove(self, ev->pid);
    if (self->count >= self->max || !ev->cmdline || !*ev->cmdline)
        goto cleanup;
    if (!(p = calloc(1, sizeof *p)))
        goto cleanup;
    p->pid = ev->pid;
    p->exe = strdup(ev->exe ? ev->exe : "");
    p->cmdline = strndup(ev->cmdline, SEEN_MAX_CMDLINE - 1);
    p->comm = strdup(ev->comm ? ev->comm : "");
    p->container_id = strdup(ev->container_id ? ev->container_id : "");
    if (!p->exe || !p->cmdline || !p->comm || !p->container_id) {
        s_free(p);
        p = NULL;
        goto cleanup;
    }
    p->has_symbols = ev->has_symbols != 0;
    p->seen_ms = now_ms;
    size_t b = s_bucket(p->pid);
    p->next = self->buckets[b];
    self->buckets[b] = p;
    self->count++;
cleanup:
    return p;
}

size_t
seen_procs_count(const seen_procs_t *self)
{
    return self->count;
}

size_t
seen_procs_expire(seen_procs_t *self, uint64_t cutoff_ms)
{
    size_t n = 0;
    for (size_t b = 0; b < SEEN_BUCKETS; b++) {
        seen_proc_t **link = &self->buckets[b];
        while (*link) {
            seen_proc_t *p = *link;
            if (p->seen_ms < cutoff_ms) {
                *link = p->next;
                s_free(p);
                self->count--;
                n++;
            } else {
                link = &p->next;
            }
        }
    }
    return n;
}

const seen_proc_t *
seen_procs_next(const seen_procs_t *self, seen_iter_t *it)
{
    if (it->at && it->at->next) {
        it->at = it->at->next;
        return it->at;
    }
    size_t b = it->at ? it->bucket + 1 : it->bucket;
    for (; b < SEEN_BUCKETS; b++) {
        if (self->buckets[b]) {
            it->bucket = b;
            it->at = self->buckets[b];
            return it->at;
        }
    }
    it->bucket = SEEN_BUCKETS;
    it->at = NULL;
    return NULL;
}
