/* Queries: merge the flame trees of the windows overlapping a time range
 * into one new tree shaped for the view asked for (see agg.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg_int.h"

/* Windows [start, end) overlapping the range [start_ms, end_ms],
 * referenced; the caller unrefs. */
static agg_window_t **
s_pick(agg_t *self, uint64_t start_ms, uint64_t end_ms, size_t *n)
{
    agg_window_t **picked = NULL;
    *n = 0;
    pthread_mutex_lock(&self->lock);
    size_t count = 0;
    for (size_t i = 0; i < self->nhist; i++)
        if (agg_window_end(self->hist[i]) > start_ms
            && agg_window_start(self->hist[i]) <= end_ms)
            count++;
    if (count && (picked = malloc(count * sizeof(*picked)))) {
        for (size_t i = 0; i < self->nhist; i++) {
            agg_window_t *w = self->hist[i];
            if (agg_window_end(w) > start_ms && agg_window_start(w) <= end_ms) {
                agg_window_ref(w);
                picked[(*n)++] = w;
            }
        }
    }
    pthread_mutex_unlock(&self->lock);
    return picked;
}

static void
s_release(agg_t *self, agg_window_t **picked, size_t n)
{
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < n; i++)
        agg_window_unref(&picked[i]);
    pthread_mutex_unlock(&self->lock);
    free(picked);
}

static uint32_t
s_pid_of(const flame_node_t *n)
{
    char *end;
    unsigned long v = strtoul(n->name, &end, 10);
    return *end || v > UINT32_MAX ? 0 : (uint32_t)v;
}

static const char *
s_proc_name(const agg_window_t *w, uint32_t pid, const char *fallback)
{
    const agg_wproc_t *p = agg_window_find_proc(w, pid);
    return p ? p->name : fallback;
}

/* Merges a pid node into `at`, dropping the thread layer when asked: the
 * threads' subtrees then merge straight into `at`. */
static int
s_merge_pid(flame_t *out, flame_node_t *at, const flame_node_t *pidnode,
            int threads)
{
    if (threads)
        return flame_merge_node(out, at, pidnode);
    int rc = 0;
    if (pidnode->self_ns || pidnode->self_count)
        flame_credit(out, at, pidnode->self_ns, pidnode->self_count);
    for (const flame_node_t *t = pidnode->first_child; t; t = t->next_sibling)
        if (flame_merge_node(out, at, t))
            rc = -1;
    return rc;
}

static int
s_merge_window(flame_t *out, const agg_window_t *w, const agg_query_t *q)
{
    int rc = 0;
    flame_node_t *root = flame_root(out);
    if (q->select == AGG_SEL_TASK) {
        const agg_wtask_t *t = agg_window_find_task(w, q->task_id);
        if (t && t->tree[q->kind])
            rc = flame_merge(out, t->tree[q->kind]);
        return rc;
    }
    flame_t *host = agg_window_host(w, q->kind);
    for (const flame_node_t *pn = flame_root(host)->first_child; pn;
         pn = pn->next_sibling) {
        uint32_t pid = s_pid_of(pn);
        if ((q->has_pid || q->select == AGG_SEL_PID) && pid != q->pid)
            continue;
        const char *name = s_proc_name(w, pid, pn->name);
        if (q->select == AGG_SEL_NAME && strcmp(name, q->name) != 0)
            continue;
        if (q->select == AGG_SEL_TOTAL) {
            flame_node_t *p = flame_child(out, root, name, FLAME_PROCESS);
            if (!p) {
                /* At the node bound the process folds into the root. */
                flame_credit(out, root, pn->total_ns, pn->total_count);
                continue;
            }
            if (flame_merge_node(out, p, pn))
                rc = -1;
        } else if (s_merge_pid(out, root, pn, q->threads)) {
            rc = -1;
        }
    }
    return rc;
}

flame_t *
agg_query(agg_t *self, const agg_query_t *q, size_t *nwindows)
{
    size_t n = 0;
    char root_name[64];
    flame_t *out = NULL;
    agg_window_t **picked = s_pick(self, q->start_ms, q->end_ms, &n);
    const char *root = "Total";

    if (q->select == AGG_SEL_NAME)
        root = q->name;
    else if (q->select == AGG_SEL_TASK)
        root = q->task_id;
    else if (q->select == AGG_SEL_PID) {
        snprintf(root_name, sizeof(root_name), "%u", q->pid);
        root = root_name;
        /* The newest name the pid had in the range. */
        for (size_t i = n; i-- > 0;) {
            const agg_wproc_t *p = agg_window_find_proc(picked[i], q->pid);
            if (p) {
                root = p->name;
                break;
            }
        }
    }
    out = flame_new(root, self->o.max_nodes);
    if (!out)
        goto cleanup;
    for (size_t i = 0; i < n; i++)
        if (s_merge_window(out, picked[i], q)) {
            flame_destroy(&out);
            goto cleanup;
        }
cleanup:
    if (nwindows)
        *nwindows = n;
    s_release(self, picked, n);
    return out;
}
