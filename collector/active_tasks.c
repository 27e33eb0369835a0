/* Task set reconciliation; see tasks.h. */
#include "collector/active_tasks.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *id;
    uint8_t target;
    uint64_t start_ms;
    uint64_t end_ms;     /* UINT64_MAX: open-ended */
    uint32_t npids;
    uint32_t *pids;
} task_entry_t;

typedef struct {
    uint32_t pid;
    uint32_t task;       /* index into tasks */
} pid_task_t;

/* What is active for one target (ON_CPU, OFF_CPU or NETWORK). */
typedef struct {
    pid_task_t *active;  /* sorted by pid */
    size_t nactive;
    uint32_t *active_pids;
    size_t nactive_pids;
} target_state_t;

#define ACTIVETASKS_TARGETS 3   /* ON_CPU, OFF_CPU, NETWORK (wire_target) */

struct activetasks {
    task_entry_t *tasks;
    uint32_t ntasks;
    bool have_set;
    char sender[64];
    uint64_t seq;
    uint64_t generation;
    target_state_t by_target[ACTIVETASKS_TARGETS];
};

activetasks_t *activetasks_new(void)
{
    return calloc(1, sizeof(activetasks_t));
}

static void s_free_entries(task_entry_t *tasks, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        free(tasks[i].id);
        free(tasks[i].pids);
    }
    free(tasks);
}

void activetasks_destroy(activetasks_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    activetasks_t *self = *self_p;
    s_free_entries(self->tasks, self->ntasks);
    for (int t = 0; t < ACTIVETASKS_TARGETS; t++) {
        free(self->by_target[t].active);
        free(self->by_target[t].active_pids);
    }
    free(self);
    *self_p = NULL;
}

static bool s_is_stale(const activetasks_t *self, const wire_task_set_t *set)
{
    if (!self->have_set)
        return false;
    if (strcmp(self->sender, set->hdr.sender) != 0)
        return false;   /* another publisher (or instance): trust it */
    if (set->hdr.seq <= self->seq)
        return false;   /* the publisher restarted: its counters reset */
    return set->generation < self->generation;
}

int activetasks_apply(activetasks_t *self, const wire_task_set_t *set, uint64_t now_ms)
{
    task_entry_t *fresh = NULL;
    uint32_t n = 0;
    int rc = -1;

    if (s_is_stale(self, set))
        return 1;
    if (set->ntasks) {
        fresh = calloc(set->ntasks, sizeof(*fresh));
        if (!fresh)
            goto cleanup;
    }
    for (; n < set->ntasks; n++) {
        const wire_task_t *t = &set->tasks[n];
        task_entry_t *e = &fresh[n];
        e->id = strdup(t->task_id ? t->task_id : "");
        if (!e->id)
            goto cleanup;
        e->target = t->target;
        e->start_ms = t->start_ms;
        if (e->start_ms == 0) {
            /* "As soon as received": keep the moment we first saw it, so
             * its duration is not restarted by every republication. */
            e->start_ms = now_ms;
            for (uint32_t j = 0; j < self->ntasks; j++)
                if (strcmp(self->tasks[j].id, e->id) == 0) {
                    e->start_ms = self->tasks[j].start_ms;
                    break;
                }
        }
        e->end_ms = t->duration_ms ? e->start_ms + t->duration_ms
                                   : UINT64_MAX;
        if (t->npids) {
            e->pids = malloc(t->npids * sizeof(*e->pids));
            if (!e->pids) {
                free(e->id);
                goto cleanup;
            }
            memcpy(e->pids, t->pids, t->npids * sizeof(*e->pids));
        }
        e->npids = t->npids;
    }
    s_free_entries(self->tasks, self->ntasks);
    self->tasks = fresh;
    self->ntasks = n;
    fresh = NULL;
    self->have_set = true;
    memcpy(self->sender, set->hdr.sender, sizeof(self->sender));
    self->sender[sizeof(self->sender) - 1] = '\0';
    self->seq = set->hdr.seq;
    self->generation = set->generation;
    /* The active tables point into the old entries: rebuild them now. */
    for (int t = 0; t < ACTIVETASKS_TARGETS; t++)
        self->by_target[t].nactive = 0;
    rc = 0;
cleanup:
    if (fresh)
        s_free_entries(fresh, n);
    return rc;
}

static int s_pid_task_cmp(const void *a, const void *b)
{
    const pid_task_t *x = a, *y = b;

    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return x->task < y->task ? -1 : x->task > y->task;
}

static int s_refresh_target(activetasks_t *self, uint8_t target,
                            uint64_t now_ms)
{
    target_state_t *ts = &self->by_target[target];
    size_t total = 0, n = 0, npids = 0;
    pid_task_t *active = NULL;
    uint32_t *pids = NULL;

    for (uint32_t i = 0; i < self->ntasks; i++)
        total += self->tasks[i].npids;
    if (total) {
        active = malloc(total * sizeof(*active));
        pids = malloc(total * sizeof(*pids));
        if (!active || !pids) {
            free(active);
            free(pids);
            return 0;   /* keep the previous state */
        }
    }
    for (uint32_t i = 0; i < self->ntasks; i++) {
        const task_entry_t *t = &self->tasks[i];
        if (t->target != target || now_ms < t->start_ms ||
            now_ms >= t->end_ms)
            continue;
        for (uint32_t j = 0; j < t->npids; j++) {
            active[n].pid = t->pids[j];
            active[n].task = i;
            n++;
        }
    }
    if (n)
        qsort(active, n, sizeof(*active), s_pid_task_cmp);
    for (size_t i = 0; i < n; i++)
        if (npids == 0 || pids[npids - 1] != active[i].pid)
            pids[npids++] = active[i].pid;
    int changed = npids != ts->nactive_pids ||
                  (npids && memcmp(pids, ts->active_pids,
                                   npids * sizeof(*pids)) != 0);
    free(ts->active);
    free(ts->active_pids);
    ts->active = active;
    ts->nactive = n;
    ts->active_pids = pids;
    ts->nactive_pids = npids;
    return changed;
}

int activetasks_refresh(activetasks_t *self, uint64_t now_ms)
{
    return activetasks_refresh_targets(self, now_ms) &
                   ACTIVETASKS_ON_CPU_CHANGED
               ? 1
               : 0;
}

int activetasks_refresh_targets(activetasks_t *self, uint64_t now_ms)
{
    int changed = 0;

    if (s_refresh_target(self, WIRE_TARGET_ON_CPU, now_ms))
        changed |= ACTIVETASKS_ON_CPU_CHANGED;
    if (s_refresh_target(self, WIRE_TARGET_OFF_CPU, now_ms))
        changed |= ACTIVETASKS_OFF_CPU_CHANGED;
    if (s_refresh_target(self, WIRE_TARGET_NETWORK, now_ms))
        changed |= ACTIVETASKS_NETWORK_CHANGED;
    return changed;
}

size_t activetasks_target_pids(const activetasks_t *self, uint8_t target,
                               const uint32_t **pids)
{
    if (target >= ACTIVETASKS_TARGETS) {
        *pids = NULL;
        return 0;
    }
    *pids = self->by_target[target].active_pids;
    return self->by_target[target].nactive_pids;
}

size_t activetasks_active_pids(const activetasks_t *self, const uint32_t **pids)
{
    return activetasks_target_pids(self, WIRE_TARGET_ON_CPU, pids);
}

uint32_t activetasks_for_pid(const activetasks_t *self, uint32_t pid, const char **ids,
                       uint32_t max)
{
    return activetasks_target_for_pid(self, WIRE_TARGET_ON_CPU, pid, ids,
                                      max);
}

uint32_t activetasks_target_for_pid(const activetasks_t *self, uint8_t target,
                                    uint32_t pid, const char **ids,
                                    uint32_t max)
{
    if (target >= ACTIVETASKS_TARGETS)
        return 0;
    const target_state_t *ts = &self->by_target[target];
    size_t lo = 0, hi = ts->nactive;
    uint32_t count = 0;

    while (lo < hi) {   /* first entry with this pid */
        size_t mid = lo + (hi - lo) / 2;
        if (ts->active[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < ts->nactive && ts->active[i].pid == pid &&
                        count < max; i++) {
        const char *id = self->tasks[ts->active[i].task].id;
        /* A task listing the pid twice counts once. */
        if (count && ids[count - 1] == id)
            continue;
        ids[count++] = id;
    }
    return count;
}

uint64_t activetasks_generation(const activetasks_t *self)
{
    return self->generation;
}
