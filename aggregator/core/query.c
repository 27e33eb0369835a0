/* Queries: merge the flame trees of the windows overlapping a time range
 * into one new tree shaped for the view asked for (see agg.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/agg_int.h"

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

/* The query's namespace / pod / container filters pass p (NULL: a
 * process the window has no record of). */
static int
s_pod_filters_pass(const agg_query_t *q, const agg_wproc_t *p)
{
    if (!q->ns && !q->pod && !q->container)
        return 1;
    if (!p || !p->pod)
        return 0;
    return (!q->ns || !strcmp(q->ns, p->ns))
           && (!q->pod || !strcmp(q->pod, p->pod))
           && (!q->container || !strcmp(q->container, p->container));
}

/* Under `at`, the [ns] -> [pod] -> [c] layers of a pod's process (at
 * itself for a host process); NULL at the node bound. */
static flame_node_t *
s_pod_layers(flame_t *out, flame_node_t *at, const agg_wproc_t *p)
{
    if (!p || !p->pod)
        return at;
    flame_node_t *ns = at ? flame_child(out, at, p->ns, FLAME_NAMESPACE)
                          : NULL;
    flame_node_t *pod = ns ? flame_child(out, ns, p->pod, FLAME_POD) : NULL;
    return pod ? flame_child(out, pod, p->container, FLAME_CONTAINER) : NULL;
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

/* One process subtree (pn, of `node`) of a window's host tree. */
static int
s_merge_proc(flame_t *out, const agg_window_t *w, const agg_query_t *q,
             const char *node, const flame_node_t *pn)
{
    flame_node_t *root = flame_root(out);
    uint32_t pid = s_pid_of(pn);
    if ((q->has_pid || q->select == AGG_SEL_PID) && pid != q->pid)
        return 0;
    if (q->node && strcmp(q->node, node) != 0)
        return 0;
    const agg_wproc_t *wp = agg_window_find_proc(w, node, pid);
    if (!s_pod_filters_pass(q, wp))
        return 0;
    const char *name = wp ? wp->name : pn->name;
    if (q->select == AGG_SEL_NAME && strcmp(name, q->name) != 0)
        return 0;
    if (q->select != AGG_SEL_TOTAL)
        return s_merge_pid(out, root, pn, q->threads);
    /* Total: every node gets its layer here; agg_collapse_nodes drops it
     * once the whole answer (every replica's part) is known. */
    flame_node_t *at = flame_child(out, root, *node ? node : AGG_NO_NODE_LABEL,
                                   FLAME_NODE);
    flame_node_t *parent = s_pod_layers(out, at, wp);
    flame_node_t *p = parent ? flame_child(out, parent, name, FLAME_PROCESS)
                             : NULL;
    if (!p) {
        /* At the node bound the process folds into its parent. */
        flame_credit(out, parent ? parent : at ? at : root, pn->total_ns,
                     pn->total_count);
        return 0;
    }
    return flame_merge_node(out, p, pn);
}

static int
s_merge_window(flame_t *out, const agg_window_t *w, const agg_query_t *q)
{
    int rc = 0;
    if (q->select == AGG_SEL_TASK) {
        const agg_wtask_t *t = agg_window_find_task(w, q->task_id);
        if (t && t->tree[q->kind])
            rc = flame_merge(out, t->tree[q->kind]);
        return rc;
    }
    flame_t *host = agg_window_host(w, q->kind);
    for (const flame_node_t *rn = flame_root(host)->first_child; rn;
         rn = rn->next_sibling) {
        if (rn->type != FLAME_NODE) {
            /* A window stored before the node layer: node "". */
            if (s_merge_proc(out, w, q, "", rn))
                rc = -1;
            continue;
        }
        for (const flame_node_t *pn = rn->first_child; pn;
             pn = pn->next_sibling)
            if (s_merge_proc(out, w, q, rn->name, pn))
                rc = -1;
    }
    return rc;
}

flame_t *
agg_collapse_nodes(flame_t *tree, size_t max_nodes)
{
    flame_t *out = NULL;
    if (!tree)
        goto cleanup;
    const flame_node_t *root = flame_root(tree);
    size_t nodes = 0;
    for (const flame_node_t *c = root->first_child; c; c = c->next_sibling)
        if (c->type == FLAME_NODE)
            nodes++;
    if (nodes == 0 || nodes > 1) {
        out = tree;
        tree = NULL;
        goto cleanup;
    }
    out = flame_new(flame_root_name(tree), max_nodes);
    if (!out)
        goto cleanup;
    flame_node_t *oroot = flame_root(out);
    if (root->self_ns || root->self_count)
        flame_credit(out, oroot, root->self_ns, root->self_count);
    for (const flame_node_t *c = root->first_child; c; c = c->next_sibling) {
        flame_node_t *at = c->type == FLAME_NODE
                               ? oroot
                               : flame_child(out, oroot, c->name, c->type);
        int rc = at ? flame_merge_node(out, at, c) : 0;
        if (!at)
            flame_credit(out, oroot, c->total_ns, c->total_count);
        if (rc) {
            flame_destroy(&out);
            goto cleanup;
        }
    }
cleanup:
    flame_destroy(&tree);
    return out;
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
            const agg_wproc_t *p = agg_window_find_proc(picked[i], q->node,
                                                        q->pid);
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
    if (q->select == AGG_SEL_TOTAL && !q->keep_nodes)
        out = agg_collapse_nodes(out, self->o.max_nodes);
cleanup:
    if (nwindows)
        *nwindows = n;
    s_release(self, picked, n);
    return out;
}
