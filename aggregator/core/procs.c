/* Process registry (see procs.h). */
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/procs.h"

struct agg_procs {
    /* Open addressing by pid alone (the same pid on two nodes is rare, and
     * a probe then compares the node); pid 0 = empty. */
    agg_proc_t *procs;
    size_t cap, count, max;
};

static size_t
s_slot(uint32_t pid, size_t cap)
{
    return ((uint64_t)pid * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
}

agg_procs_t *
agg_procs_new(size_t max)
{
    agg_procs_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->max = max ? max : AGG_PROCS_MAX;
    /* Load factor stays at or below one half. */
    self->cap = 64;
    while (self->cap < self->max * 2)
        self->cap *= 2;
    self->procs = calloc(self->cap, sizeof(*self->procs));
    if (!self->procs)
        agg_procs_destroy(&self);
    return self;
}

static void
s_clear(agg_proc_t *p)
{
    free(p->node);
    free(p->name);
    free(p->cmdline);
    free(p->exe);
    memset(p, 0, sizeof(*p));
}

void
agg_procs_destroy(agg_procs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    agg_procs_t *self = *self_p;
    for (size_t i = 0; self->procs && i < self->cap; i++)
        s_clear(&self->procs[i]);
    free(self->procs);
    free(self);
    *self_p = NULL;
}

static agg_proc_t *
s_find(const agg_procs_t *self, const char *node, uint32_t pid)
{
    for (size_t i = s_slot(pid, self->cap);; i = (i + 1) & (self->cap - 1)) {
        if (!self->procs[i].pid)
            return NULL;
        if (self->procs[i].pid == pid
            && strcmp(self->procs[i].node, node) == 0)
            return &self->procs[i];
    }
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void
s_remove(agg_procs_t *self, agg_proc_t *p)
{
    size_t mask = self->cap - 1;
    size_t i = (size_t)(p - self->procs);
    s_clear(p);
    self->count--;
    for (size_t j = (i + 1) & mask; self->procs[j].pid; j = (j + 1) & mask) {
        size_t home = s_slot(self->procs[j].pid, self->cap);
        /* Move j into the hole when its home is not in (i, j]. */
        if ((j > i && (home <= i || home > j))
            || (j < i && (home <= i && home > j))) {
            self->procs[i] = self->procs[j];
            memset(&self->procs[j], 0, sizeof(self->procs[j]));
            i = j;
        }
    }
}

static void
s_evict_one(agg_procs_t *self)
{
    agg_proc_t *victim = NULL;
    for (size_t i = 0; i < self->cap; i++) {
        agg_proc_t *p = &self->procs[i];
        if (!p->pid)
            continue;
        /* Exited ones go first, then the least recently seen. */
        if (!victim || (p->exit_ms && !victim->exit_ms)
            || (!!p->exit_ms == !!victim->exit_ms
                && p->seen_ms < victim->seen_ms))
            victim = p;
    }
    if (victim)
        s_remove(self, victim);
}

static agg_proc_t *
s_get(agg_procs_t *self, const char *node, uint32_t pid)
{
    if (!pid)
        return NULL;
    agg_proc_t *p = s_find(self, node, pid);
    if (p)
        return p;
    char *node_copy = strndup(node, WIRE_MAX_NODE);
    if (!node_copy)
        return NULL;
    if (self->count >= self->max)
        s_evict_one(self);
    size_t i = s_slot(pid, self->cap);
    while (self->procs[i].pid)
        i = (i + 1) & (self->cap - 1);
    self->procs[i].pid = pid;
    self->procs[i].node = node_copy;
    self->count++;
    return &self->procs[i];
}

static void
s_set(char **field, const char *value, size_t max)
{
    if (!value || !*value)
        return;
    size_t n = strnlen(value, max);
    if (*field && strlen(*field) == n && memcmp(*field, value, n) == 0)
        return;
    char *copy = strndup(value, n);
    if (!copy)
        return;
    free(*field);
    *field = copy;
}

void
agg_procs_event(agg_procs_t *self, const char *node,
                const wire_proc_event_t *ev, uint64_t now_ms)
{
    agg_proc_t *p = s_get(self, node ? node : "", ev->pid);
    if (!p)
        return;
    p->seen_ms = now_ms;
    s_set(&p->name, ev->comm, WIRE_COMM_LEN);
    s_set(&p->cmdline, ev->cmdline, AGG_PROCS_CMDLINE_MAX);
    s_set(&p->exe, ev->exe, AGG_PROCS_CMDLINE_MAX);
    switch (ev->type) {
    case WIRE_PROC_START:
    case WIRE_PROC_EXEC:
        p->exit_ms = 0;
        if (!p->start_ms || ev->type == WIRE_PROC_START)
            p->start_ms = ev->ts_ns / 1000000u;
        break;
    case WIRE_PROC_EXIT:
        p->exit_ms = ev->ts_ns ? ev->ts_ns / 1000000u : now_ms;
        break;
    default:
        break;
    }
}

void
agg_procs_seen(agg_procs_t *self, const char *node, uint32_t pid,
               const char *name, uint64_t now_ms)
{
    agg_proc_t *p = s_get(self, node ? node : "", pid);
    if (!p)
        return;
    p->seen_ms = now_ms;
    if (!p->name)
        s_set(&p->name, name, WIRE_MAX_STR);
}

const agg_proc_t *
agg_procs_get(const agg_procs_t *self, const char *node, uint32_t pid)
{
    return pid ? s_find(self, node ? node : "", pid) : NULL;
}

void
agg_procs_expire(agg_procs_t *self, uint64_t cutoff_ms)
{
    /* Removal shifts entries backwards, so rescan a slot after a removal. */
    for (size_t i = 0; i < self->cap;) {
        agg_proc_t *p = &self->procs[i];
        if (p->pid && p->exit_ms && p->exit_ms < cutoff_ms) {
            s_remove(self, p);
            continue;
        }
        i++;
    }
}

size_t
agg_procs_count(const agg_procs_t *self)
{
    return self->count;
}
