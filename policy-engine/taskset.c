#include "taskset.h"

#include <stdlib.h>
#include <string.h>

/* Each task owns copies of its strings and pid arrays, so what the table
 * holds never points into a decoded message's arena. */
typedef struct {
    wire_task_t w;
    char *task_id;
    char *extension_json;
    uint32_t *pids;
    char **process_ids;
} task_entry_t;

struct taskset {
    task_entry_t entries[TASKS_MAX];
    wire_task_t view[TASKS_MAX];
    size_t n;
    uint64_t generation;
};

static void s_entry_free(task_entry_t *e)
{
    free(e->task_id);
    free(e->extension_json);
    if (e->process_ids)
        for (uint32_t i = 0; i < e->w.npids; i++)
            free(e->process_ids[i]);
    free(e->process_ids);
    free(e->pids);
    memset(e, 0, sizeof *e);
}

static void s_rebuild_view(taskset_t *self)
{
    for (size_t i = 0; i < self->n; i++)
        self->view[i] = self->entries[i].w;
    self->generation++;
}

static int s_entry_copy(task_entry_t *e, const wire_task_t *t,
                        uint64_t now_ms)
{
    memset(e, 0, sizeof *e);
    e->w = *t;
    e->task_id = strdup(t->task_id);
    e->extension_json = strdup(t->extension_json ? t->extension_json : "");
    e->pids = malloc((t->npids ? t->npids : 1) * sizeof *e->pids);
    if (!e->task_id || !e->extension_json || !e->pids)
        goto fail;
    memcpy(e->pids, t->pids, t->npids * sizeof *e->pids);
    if (t->process_ids) {
        e->process_ids = calloc(t->npids ? t->npids : 1, sizeof *e->process_ids);
        if (!e->process_ids)
            goto fail;
        for (uint32_t i = 0; i < t->npids; i++) {
            e->process_ids[i] = strdup(t->process_ids[i] ? t->process_ids[i] : "");
            if (!e->process_ids[i])
                goto fail;
        }
    }
    e->w.task_id = e->task_id;
    e->w.extension_json = e->extension_json;
    e->w.pids = e->pids;
    e->w.process_ids = (const char *const *)e->process_ids;
    if (!e->w.start_ms)
        e->w.start_ms = now_ms;
    if (!e->w.update_ms)
        e->w.update_ms = now_ms;
    return 0;
fail:
    s_entry_free(e);
    return -1;
}

/* A NETWORK task re-sent (the OAP's "keep": same start, a longer
 * FixedTriggerDuration, an empty ExtensionConfigJSON). This is the one
 * place of both rules: an empty extension keeps the sampling rules in
 * force (the network room reads extension_json from ctl.tasks), and the
 * window never shrinks. -1 when out of memory. */
static int s_network_resend(task_entry_t *fresh, const task_entry_t *old)
{
    if (fresh->w.target != WIRE_TARGET_NETWORK ||
        old->w.target != WIRE_TARGET_NETWORK)
        return 0;
    if (!fresh->extension_json[0] && old->extension_json[0]) {
        char *kept = strdup(old->extension_json);
        if (!kept)
            return -1;
        free(fresh->extension_json);
        fresh->extension_json = kept;
        fresh->w.extension_json = kept;
    }
    uint64_t old_end = old->w.start_ms + old->w.duration_ms;
    if (fresh->w.start_ms + fresh->w.duration_ms < old_end)
        fresh->w.duration_ms = old_end - fresh->w.start_ms;
    return 0;
}

taskset_t *taskset_new(void) { return calloc(1, sizeof(taskset_t)); }

void taskset_destroy(taskset_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    for (size_t i = 0; i < (*self_p)->n; i++)
        s_entry_free(&(*self_p)->entries[i]);
    free(*self_p);
    *self_p = NULL;
}

static task_entry_t *s_find(taskset_t *self, const char *id, size_t *index)
{
    for (size_t i = 0; i < self->n; i++)
        if (strcmp(self->entries[i].task_id, id) == 0) {
            if (index)
                *index = i;
            return &self->entries[i];
        }
    return NULL;
}

static void s_remove_at(taskset_t *self, size_t i)
{
    s_entry_free(&self->entries[i]);
    memmove(&self->entries[i], &self->entries[i + 1],
            (self->n - i - 1) * sizeof self->entries[0]);
    self->n--;
    memset(&self->entries[self->n], 0, sizeof self->entries[0]);
}

enum taskset_offer_result taskset_offer(taskset_t *self, const wire_task_t *task,
                                    uint64_t now_ms)
{
    if (!task->task_id || !task->task_id[0] || task->npids == 0 ||
        task->duration_ms == 0 || task->target > WIRE_TARGET_MAX)
        return TASKS_INVALID;
    size_t idx;
    task_entry_t *old = s_find(self, task->task_id, &idx);
    uint64_t start = task->start_ms ? task->start_ms : now_ms;
    uint64_t end = start + task->duration_ms;
    /* A re-sent NETWORK task keeps at least its window (s_network_resend). */
    if (old && task->target == WIRE_TARGET_NETWORK &&
        old->w.target == WIRE_TARGET_NETWORK &&
        old->w.start_ms + old->w.duration_ms > end)
        end = old->w.start_ms + old->w.duration_ms;
    if (end <= now_ms)
        return TASKS_EXPIRED;

    if (old) {
        uint64_t update = task->update_ms ? task->update_ms : now_ms;
        if (update == old->w.update_ms)
            return TASKS_DUPLICATE;
        if (update < old->w.update_ms)
            return TASKS_STALE;
        task_entry_t fresh;
        if (s_entry_copy(&fresh, task, now_ms) != 0)
            return TASKS_FULL;
        if (s_network_resend(&fresh, old) != 0) {
            s_entry_free(&fresh);
            return TASKS_FULL;
        }
        s_entry_free(old);
        *old = fresh;
        s_rebuild_view(self);
        return TASKS_REPLACED;
    }
    if (self->n >= TASKS_MAX)
        return TASKS_FULL;
    if (s_entry_copy(&self->entries[self->n], task, now_ms) != 0)
        return TASKS_FULL;
    self->n++;
    s_rebuild_view(self);
    return TASKS_ADDED;
}

const char *taskset_offer_result_name(enum taskset_offer_result r)
{
    static const char *const names[] = {"added", "duplicate", "replaced",
                                        "stale", "expired", "invalid", "full"};
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

size_t taskset_expire(taskset_t *self, uint64_t now_ms)
{
    size_t removed = 0;
    for (size_t i = 0; i < self->n;) {
        const wire_task_t *w = &self->entries[i].w;
        if (w->start_ms + w->duration_ms <= now_ms) {
            s_remove_at(self, i);
            removed++;
        } else {
            i++;
        }
    }
    if (removed)
        s_rebuild_view(self);
    return removed;
}

/* Drops pid from entry i; returns 1 if changed, and removes the task when
 * no pid is left (then *removed is set). */
static int s_drop_pid(taskset_t *self, size_t i, uint32_t pid, int *removed)
{
    task_entry_t *e = &self->entries[i];
    int changed = 0;
    for (uint32_t k = 0; k < e->w.npids;) {
        if (e->pids[k] != pid) {
            k++;
            continue;
        }
        uint32_t last = e->w.npids - 1;
        if (e->process_ids) {
            free(e->process_ids[k]);
            e->process_ids[k] = e->process_ids[last];
            e->process_ids[last] = NULL;
        }
        e->pids[k] = e->pids[last];
        e->w.npids--;
        changed = 1;
    }
    *removed = 0;
    if (changed && e->w.npids == 0) {
        s_remove_at(self, i);
        *removed = 1;
    }
    return changed;
}

size_t taskset_process_exited(taskset_t *self, uint32_t pid)
{
    size_t changed = 0;
    for (size_t i = 0; i < self->n;) {
        int removed;
        changed += (size_t)s_drop_pid(self, i, pid, &removed);
        if (!removed)
            i++;
    }
    if (changed)
        s_rebuild_view(self);
    return changed;
}

size_t taskset_prune(taskset_t *self, int (*alive)(uint32_t pid, void *arg),
                   void *arg)
{
    size_t changed = 0;
    for (size_t i = 0; i < self->n;) {
        int removed = 0;
        task_entry_t *e = &self->entries[i];
        for (uint32_t k = 0; k < e->w.npids && !removed;) {
            uint32_t pid = e->pids[k];
            if (alive(pid, arg)) {
                k++;
                continue;
            }
            changed += (size_t)s_drop_pid(self, i, pid, &removed);
        }
        if (!removed)
            i++;
    }
    if (changed)
        s_rebuild_view(self);
    return changed;
}

int taskset_cancel(taskset_t *self, const char *task_id)
{
    size_t idx;
    if (!s_find(self, task_id, &idx))
        return -1;
    s_remove_at(self, idx);
    s_rebuild_view(self);
    return 0;
}

uint64_t taskset_generation(const taskset_t *self) { return self->generation; }
size_t taskset_count(const taskset_t *self) { return self->n; }

size_t taskset_snapshot(const taskset_t *self, const wire_task_t **out)
{
    *out = self->view;
    return self->n;
}
