/* Task metadata (see tasks.h). */
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/agg.h"
#include "aggregator/core/tasks.h"

typedef struct {
    agg_task_t *v;
    size_t n;
} list_t;

struct agg_tasks {
    list_t active, requested, finished;
};

static const char *s_targets[] = { "ON_CPU", "OFF_CPU", "NETWORK" };
static const char *s_triggers[] = { "FIXED_TIME", "CONTINUOUS_PROFILING" };
static const char *s_sources[] = { "OAP", "LOCAL", "API", "POLICY" };
static const char *s_states[] = { "active", "requested", "finished" };

const char *
agg_target_name(int target)
{
    return target >= 0 && target <= WIRE_TARGET_MAX ? s_targets[target]
                                                    : "UNKNOWN";
}

int
agg_target_parse(const char *name)
{
    for (int i = 0; i <= WIRE_TARGET_MAX; i++)
        if (strcmp(name, s_targets[i]) == 0)
            return i;
    return -1;
}

static void
s_task_free(agg_task_t *t)
{
    free(t->task_id);
    free(t->pids);
    if (t->process_ids)
        for (uint32_t i = 0; i < t->npids; i++)
            free(t->process_ids[i]);
    free(t->process_ids);
    memset(t, 0, sizeof(*t));
}

static void
s_list_clear(list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        s_task_free(&l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

agg_tasks_t *
agg_tasks_new(void)
{
    return calloc(1, sizeof(agg_tasks_t));
}

void
agg_tasks_destroy(agg_tasks_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    agg_tasks_t *self = *self_p;
    s_list_clear(&self->active);
    s_list_clear(&self->requested);
    s_list_clear(&self->finished);
    free(self);
    *self_p = NULL;
}

/* Copies a wire task, keeping at most max_pids pids. -1 on OOM. */
static int
s_copy(agg_task_t *t, const wire_task_t *w, uint32_t max_pids, int state,
       uint64_t now_ms)
{
    memset(t, 0, sizeof(*t));
    t->task_id = strdup(w->task_id ? w->task_id : "");
    if (!t->task_id)
        goto fail;
    t->target = w->target;
    t->trigger = w->trigger;
    t->source = w->source;
    t->start_ms = w->start_ms;
    t->duration_ms = w->duration_ms;
    t->update_ms = w->update_ms;
    t->state = state;
    t->seen_ms = now_ms;
    uint32_t n = w->npids < max_pids ? w->npids : max_pids;
    if (n && w->pids) {
        t->pids = malloc(n * sizeof(*t->pids));
        if (!t->pids)
            goto fail;
        memcpy(t->pids, w->pids, n * sizeof(*t->pids));
        t->npids = n;
        if (w->process_ids) {
            t->process_ids = calloc(n, sizeof(*t->process_ids));
            if (!t->process_ids)
                goto fail;
            for (uint32_t i = 0; i < n; i++)
                if (!(t->process_ids[i] = strdup(w->process_ids[i]
                                                     ? w->process_ids[i]
                                                     : "")))
                    goto fail;
        }
    }
    return 0;
fail:
    s_task_free(t);
    return -1;
}

static agg_task_t *
s_list_find(const list_t *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].task_id, id) == 0)
            return &l->v[i];
    return NULL;
}

static void
s_list_remove(list_t *l, size_t i)
{
    s_task_free(&l->v[i]);
    memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
    l->n--;
}

/* Moves (takes) t into the finished memory, oldest forgotten first. */
static void
s_finish(agg_tasks_t *self, agg_task_t *t, uint64_t now_ms)
{
    list_t *f = &self->finished;
    agg_task_t *dup = s_list_find(f, t->task_id);
    if (dup)
        s_list_remove(f, (size_t)(dup - f->v));
    if (f->n >= AGG_TASKS_FINISHED)
        s_list_remove(f, 0);
    if (!f->v && !(f->v = calloc(AGG_TASKS_FINISHED, sizeof(*f->v)))) {
        s_task_free(t);
        return;
    }
    t->state = AGG_TASK_FINISHED;
    t->seen_ms = now_ms;
    f->v[f->n++] = *t;
    memset(t, 0, sizeof(*t));
}

size_t
agg_tasks_set(agg_tasks_t *self, const wire_task_set_t *set, uint64_t now_ms)
{
    list_t next = { 0 };
    size_t left_out = 0;
    uint32_t budget = AGG_TASKS_MAX_PIDS;

    if (set->ntasks) {
        next.v = calloc(set->ntasks, sizeof(*next.v));
        if (!next.v)
            return 0;       /* keep the old set rather than none */
    }
    for (uint32_t i = 0; i < set->ntasks; i++) {
        const wire_task_t *w = &set->tasks[i];
        if (!w->task_id || !*w->task_id || s_list_find(&next, w->task_id))
            continue;
        if (s_copy(&next.v[next.n], w, budget, AGG_TASK_ACTIVE, now_ms))
            continue;
        left_out += w->npids - next.v[next.n].npids;
        budget -= next.v[next.n].npids;
        next.n++;
    }
    /* Tasks that left the set finished; requested ones that arrived are
     * active now. */
    for (size_t i = 0; i < self->active.n; i++) {
        if (!s_list_find(&next, self->active.v[i].task_id))
            s_finish(self, &self->active.v[i], now_ms);
    }
    s_list_clear(&self->active);
    self->active = next;
    for (size_t i = 0; i < self->requested.n;) {
        agg_task_t *r = &self->requested.v[i];
        if (s_list_find(&self->active, r->task_id)
            || r->seen_ms + AGG_TASKS_REQUEST_TTL_MS < now_ms)
            s_list_remove(&self->requested, i);
        else
            i++;
    }
    return left_out;
}

int
agg_tasks_request(agg_tasks_t *self, const wire_task_t *task, uint64_t now_ms)
{
    list_t *r = &self->requested;
    if (!r->v && !(r->v = calloc(AGG_TASKS_REQUESTED, sizeof(*r->v))))
        return -1;
    if (r->n >= AGG_TASKS_REQUESTED)
        s_list_remove(r, 0);
    if (s_copy(&r->v[r->n], task, AGG_TASKS_MAX_PIDS, AGG_TASK_REQUESTED,
               now_ms))
        return -1;
    r->n++;
    return 0;
}

const agg_task_t *
agg_tasks_find(const agg_tasks_t *self, const char *id)
{
    const agg_task_t *t = s_list_find(&self->active, id);
    if (!t)
        t = s_list_find(&self->finished, id);
    if (!t)
        t = s_list_find(&self->requested, id);
    return t;
}

const char *
agg_task_process_id(const agg_task_t *task, uint32_t pid)
{
    if (task && task->process_ids)
        for (uint32_t i = 0; i < task->npids; i++)
            if (task->pids[i] == pid)
                return task->process_ids[i];
    return "";
}

static void
s_json_task(const agg_task_t *t, agg_buf_t *b)
{
    agg_buf_puts(b, "{\"task_id\":");
    agg_buf_json_str(b, t->task_id);
    agg_buf_printf(b,
                   ",\"target\":\"%s\",\"trigger\":\"%s\",\"source\":\"%s\""
                   ",\"state\":\"%s\",\"start_ms\":%llu,\"duration_ms\":%llu"
                   ",\"update_ms\":%llu,\"pids\":[",
                   agg_target_name(t->target),
                   t->trigger <= WIRE_TRIGGER_MAX ? s_triggers[t->trigger]
                                                  : "UNKNOWN",
                   t->source <= WIRE_SRC_MAX ? s_sources[t->source]
                                             : "UNKNOWN",
                   s_states[t->state], (unsigned long long)t->start_ms,
                   (unsigned long long)t->duration_ms,
                   (unsigned long long)t->update_ms);
    for (uint32_t i = 0; i < t->npids; i++)
        agg_buf_printf(b, "%s%u", i ? "," : "", t->pids[i]);
    agg_buf_puts(b, "]}");
}

void
agg_tasks_json(const agg_tasks_t *self, agg_buf_t *b)
{
    const list_t *lists[] = { &self->active, &self->requested,
                              &self->finished };
    int first = 1;
    agg_buf_puts(b, "{\"tasks\":[");
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < lists[l]->n; i++) {
            if (!first)
                agg_buf_puts(b, ",");
            first = 0;
            s_json_task(&lists[l]->v[i], b);
        }
    agg_buf_puts(b, "]}");
}
