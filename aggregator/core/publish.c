/* agg.profile: at every flush, one wire_task_profile_t per (task, pid)
 * active in the window, with its distinct stacks in SkyWalking's shape
 * (kernel and user parts leaf first, count, duration). The uplink turns
 * them into EBPFProfilingData for the OAP.
 *
 * Large windows are split: at most AGG_PUBLISH_STACKS stacks per profile
 * entry and per message, so no message breaks a wire bound and a slow
 * uplink is never handed one huge payload. */
#include <string.h>

#include "aggregator/core/agg_int.h"

typedef struct {
    agg_t *agg;
    const agg_window_t *w;
    arena_t *arena;
    wire_task_profile_t *profiles;
    uint32_t nprofiles, cap;
    size_t nstacks;               /* in the message being built */
    long sent;
} pub_t;

static int
s_send(pub_t *p)
{
    int rc = 0;
    if (!p->nprofiles)
        return 0;
    wire_profile_batch_t batch;
    memset(&batch, 0, sizeof(batch));
    batch.nprofiles = p->nprofiles;
    batch.profiles = p->profiles;
    if (p->agg->o.publish
        && p->agg->o.publish(p->agg->o.publish_arg, MSG_AGG_PROFILE,
                             &batch)) {
        rc = -1;
    } else {
        p->sent += p->nprofiles;
    }
    arena_reset(p->arena);
    p->profiles = NULL;
    p->nprofiles = p->cap = 0;
    p->nstacks = 0;
    return rc;
}

/* Fills one wire stack from a task-tree leaf: walking up from the leaf
 * yields frames leaf first, kernel frames (the innermost) before user
 * ones, which is the order SkyWalking wants for each part. */
static int
s_fill_stack(pub_t *p, wire_prof_stack_t *ws, const agg_wstack_t *s)
{
    uint32_t depth = 0, nk = 0, nu = 0;
    for (const flame_node_t *n = s->leaf; n && n->parent; n = n->parent)
        depth++;
    const char **k = arena_alloc(p->arena, (depth + 1) * sizeof(*k));
    const char **u = arena_alloc(p->arena, (depth + 1) * sizeof(*u));
    if (!k || !u)
        return -1;
    for (const flame_node_t *n = s->leaf; n && n->parent; n = n->parent) {
        if (n->type == FLAME_KERNEL) {
            if (nk < WIRE_MAX_FRAMES)
                k[nk++] = n->name;
        } else if (nu < WIRE_MAX_FRAMES) {
            u[nu++] = n->name;
        }
    }
    ws->nk = nk;
    ws->kframes = k;
    ws->nu = nu;
    ws->uframes = u;
    ws->count = s->count;
    ws->duration_ns = s->ns;
    return 0;
}

static wire_task_profile_t *
s_new_profile(pub_t *p, const agg_wstack_t *s, uint32_t nstacks)
{
    if (p->nprofiles == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 64;
        wire_task_profile_t *grown = arena_alloc(p->arena,
                                                 cap * sizeof(*grown));
        if (!grown)
            return NULL;
        if (p->nprofiles)
            memcpy(grown, p->profiles, p->nprofiles * sizeof(*grown));
        p->profiles = grown;
        p->cap = cap;
    }
    const agg_wtask_t *wt = agg_window_task(p->w, s->task);
    const agg_task_t *meta = agg_tasks_find(p->agg->tasks, wt->task_id);
    wire_task_profile_t *prof = &p->profiles[p->nprofiles];
    memset(prof, 0, sizeof(*prof));
    prof->task_id = wt->task_id;
    prof->pid = s->pid;
    prof->process_id = agg_task_process_id(meta, s->pid);
    prof->target = meta && meta->target <= WIRE_TARGET_MAX
                       ? meta->target
                       : (s->kind == WIRE_KIND_OFF_CPU ? WIRE_TARGET_OFF_CPU
                                                       : WIRE_TARGET_ON_CPU);
    prof->start_ms = meta && meta->start_ms ? meta->start_ms
                                            : agg_window_start(p->w);
    prof->window_start_ms = agg_window_start(p->w);
    prof->window_end_ms = agg_window_end(p->w);
    prof->stacks = arena_alloc(p->arena, nstacks * sizeof(*prof->stacks));
    if (!prof->stacks)
        return NULL;
    p->nprofiles++;
    return prof;
}

long
agg_publish_window(agg_t *self, const agg_window_t *w)
{
    pub_t p;
    memset(&p, 0, sizeof(p));
    p.agg = self;
    p.w = w;
    size_t n = agg_window_nstacks(w);
    const agg_wstack_t *stacks = agg_window_stacks(w);
    if (!n)
        return 0;
    p.arena = arena_new(0);
    if (!p.arena)
        return -1;

    /* Stacks are sorted by (task, pid, node, kind): each run is one
     * profile, cut into pieces of at most AGG_PUBLISH_STACKS. The same
     * pid on two nodes is two processes, so two profiles (agg.profile
     * carries no node: the uplink tells them apart by nothing yet). */
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && stacks[j].task == stacks[i].task
               && stacks[j].pid == stacks[i].pid
               && stacks[j].node == stacks[i].node
               && stacks[j].kind == stacks[i].kind
               && j - i < AGG_PUBLISH_STACKS)
            j++;
        uint32_t run = (uint32_t)(j - i);
        if (p.nstacks + run > AGG_PUBLISH_STACKS)
            s_send(&p);
        wire_task_profile_t *prof = s_new_profile(&p, &stacks[i], run);
        if (!prof) {
            log_warn_rl(&self->rl, "agg.profile: out of memory");
            break;
        }
        wire_prof_stack_t *ws = (wire_prof_stack_t *)prof->stacks;
        for (uint32_t k = 0; k < run; k++)
            if (s_fill_stack(&p, &ws[prof->nstacks], &stacks[i + k]) == 0)
                prof->nstacks++;
        p.nstacks += run;
        i = j;
    }
    s_send(&p);
    arena_destroy(&p.arena);
    return p.sent;
}
