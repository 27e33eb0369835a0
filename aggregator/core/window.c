/* Aggregation window (see window.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/window.h"
#include "hash.h"

/* Longest path: node, pid and thread layers + every frame of a sample. */
#define PATH_MAX_FRAMES (2u * WIRE_MAX_FRAMES)
#define PATH_MAX (PATH_MAX_FRAMES + 3u)
/* First varint of a process table stored with node names (a count never
 * reaches it); older tables start with their count. */
#define PROCS_FORMAT_NODES ((uint64_t)AGG_WINDOW_MAX_PROCS + 1u)
/* Nodes, and after each name the pod: namespace, pod, container ("" for
 * a host process). Written only when some process ran in a pod. */
#define PROCS_FORMAT_PODS ((uint64_t)AGG_WINDOW_MAX_PROCS + 2u)
#define HOST_ROOT "Total"

struct agg_window {
    uint64_t start_ms, end_ms;
    size_t max_nodes;
    flame_t *host[AGG_KINDS];
    agg_wtask_t *tasks;
    size_t ntasks;
    agg_wproc_t *procs;
    size_t nprocs, procs_cap;
    uint32_t *proc_index;          /* pid hash -> procs index + 1 */
    size_t proc_index_cap;
    agg_wstack_t *stacks;
    size_t nstacks, stacks_cap;
    uint32_t *stack_index;         /* hash -> stacks index + 1 */
    size_t stack_index_cap;
    char **nodes;                  /* interned node names */
    size_t nnodes;
    uint64_t samples;
    uint64_t dropped;              /* stacks left out of publication */
    int refs;
};

agg_window_t *
agg_window_new(uint64_t start_ms, size_t max_nodes)
{
    agg_window_t *self = calloc(1, sizeof(*self));
    if (!self)
        goto fail;
    self->start_ms = start_ms;
    self->max_nodes = max_nodes;
    self->refs = 1;
    for (int k = 0; k < AGG_KINDS; k++)
        if (!(self->host[k] = flame_new(HOST_ROOT, max_nodes)))
            goto fail;
    self->tasks = calloc(AGG_WINDOW_MAX_TASKS, sizeof(*self->tasks));
    if (!self->tasks)
        goto fail;
    return self;
fail:
    agg_window_destroy(&self);
    return NULL;
}

void
agg_window_destroy(agg_window_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    agg_window_t *self = *self_p;
    for (int k = 0; k < AGG_KINDS; k++)
        flame_destroy(&self->host[k]);
    for (size_t i = 0; self->tasks && i < self->ntasks; i++) {
        free((char *)self->tasks[i].task_id);
        for (int k = 0; k < AGG_KINDS; k++)
            flame_destroy(&self->tasks[i].tree[k]);
    }
    free(self->tasks);
    for (size_t i = 0; i < self->nprocs; i++) {
        free((char *)self->procs[i].name);
        free((char *)self->procs[i].ns);
        free((char *)self->procs[i].pod);
        free((char *)self->procs[i].container);
    }
    free(self->procs);
    for (size_t i = 0; i < self->nnodes; i++)
        free(self->nodes[i]);
    free(self->nodes);
    free(self->proc_index);
    free(self->stacks);
    free(self->stack_index);
    free(self);
    *self_p = NULL;
}

/* -------------------------------------------------------------- nodes */
/* The window's copy of a node name: few distinct names, many pointers to
 * them (every process and publication stack). Past the bound, or out of
 * memory, the name folds into "" rather than losing the samples. */
static const char s_no_node[] = "";

static const char *
s_node_intern(agg_window_t *self, const char *node)
{
    if (!node || !*node)
        return s_no_node;
    for (size_t i = 0; i < self->nnodes; i++)
        if (strcmp(self->nodes[i], node) == 0)
            return self->nodes[i];
    if (self->nnodes >= AGG_WINDOW_MAX_NODES)
        return s_no_node;
    if (!self->nodes) {
        self->nodes = calloc(AGG_WINDOW_MAX_NODES, sizeof(*self->nodes));
        if (!self->nodes)
            return s_no_node;
    }
    char *copy = strndup(node, WIRE_MAX_NODE);
    if (!copy)
        return s_no_node;
    self->nodes[self->nnodes++] = copy;
    return copy;
}

/* -------------------------------------------------------------- procs */
static int
s_proc_index_grow(agg_window_t *self)
{
    size_t cap = self->proc_index_cap ? self->proc_index_cap * 2 : 64;
    uint32_t *idx = calloc(cap, sizeof(*idx));
    if (!idx)
        return -1;
    for (size_t i = 0; i < self->nprocs; i++) {
        size_t j = hash_mix64(self->procs[i].pid) & (cap - 1);
        while (idx[j])
            j = (j + 1) & (cap - 1);
        idx[j] = (uint32_t)i + 1;
    }
    free(self->proc_index);
    self->proc_index = idx;
    self->proc_index_cap = cap;
    return 0;
}

/* Indexed by pid alone; node NULL matches any node. */
static agg_wproc_t *
s_proc_find(const agg_window_t *self, const char *node, uint32_t pid)
{
    if (!self->proc_index_cap)
        return NULL;
    size_t mask = self->proc_index_cap - 1;
    for (size_t j = hash_mix64(pid) & mask; self->proc_index[j];
         j = (j + 1) & mask) {
        agg_wproc_t *p = &self->procs[self->proc_index[j] - 1];
        if (p->pid == pid && (!node || strcmp(p->node, node) == 0))
            return p;
    }
    return NULL;
}

/* Finds or adds; NULL when the table is full or memory runs out. node is
 * an interned name (s_node_intern). */
static agg_wproc_t *
s_proc_get(agg_window_t *self, const char *node, uint32_t pid,
           const char *name)
{
    agg_wproc_t *p = s_proc_find(self, node, pid);
    if (p)
        return p;
    if (self->nprocs >= AGG_WINDOW_MAX_PROCS)
        return NULL;
    if ((self->nprocs + 1) * 2 >= self->proc_index_cap
        && s_proc_index_grow(self))
        return NULL;
    if (self->nprocs == self->procs_cap) {
        size_t cap = self->procs_cap ? self->procs_cap * 2 : 32;
        agg_wproc_t *procs = realloc(self->procs, cap * sizeof(*procs));
        if (!procs)
            return NULL;
        self->procs = procs;
        self->procs_cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return NULL;
    p = &self->procs[self->nprocs];
    memset(p, 0, sizeof(*p));
    p->pid = pid;
    p->node = node;
    p->name = copy;
    size_t mask = self->proc_index_cap - 1;
    size_t j = hash_mix64(pid) & mask;
    while (self->proc_index[j])
        j = (j + 1) & mask;
    self->proc_index[j] = (uint32_t)++self->nprocs;
    return p;
}

static void
s_proc_rename(agg_wproc_t *p, const char *name)
{
    if (!name || !*name || strcmp(p->name, name) == 0)
        return;
    char *copy = strdup(name);
    if (!copy)
        return;                 /* keep the old name rather than none */
    free((char *)p->name);
    p->name = copy;
}

/* Records the pod a process runs in (NULL: none); keeps the old one when
 * memory runs out. */
static void
s_proc_set_pod(agg_wproc_t *p, const char *ns, const char *pod,
               const char *container)
{
    if (!ns || !pod || !container) {
        if (!p->pod)
            return;
        ns = pod = container = NULL;
    } else if (p->pod && !strcmp(p->ns, ns) && !strcmp(p->pod, pod)
               && !strcmp(p->container, container)) {
        return;
    }
    char *n = ns ? strdup(ns) : NULL, *po = pod ? strdup(pod) : NULL,
         *c = container ? strdup(container) : NULL;
    if (ns && (!n || !po || !c)) {
        free(n);
        free(po);
        free(c);
        return;
    }
    free((char *)p->ns);
    free((char *)p->pod);
    free((char *)p->container);
    p->ns = n;
    p->pod = po;
    p->container = c;
}

/* -------------------------------------------------------------- tasks */
static int
s_task_find(const agg_window_t *self, const char *task_id)
{
    for (size_t i = 0; i < self->ntasks; i++)
        if (strcmp(self->tasks[i].task_id, task_id) == 0)
            return (int)i;
    return -1;
}

static int
s_task_get(agg_window_t *self, const char *task_id)
{
    int i = s_task_find(self, task_id);
    if (i >= 0 || self->ntasks >= AGG_WINDOW_MAX_TASKS)
        return i;
    char *copy = strdup(task_id);
    if (!copy)
        return -1;
    self->tasks[self->ntasks].task_id = copy;
    return (int)self->ntasks++;
}

static flame_t *
s_task_tree(agg_window_t *self, int task, int kind)
{
    agg_wtask_t *t = &self->tasks[task];
    if (!t->tree[kind])
        t->tree[kind] = flame_new(t->task_id, self->max_nodes);
    return t->tree[kind];
}

/* ------------------------------------------------------------- stacks */
static uint64_t
s_stack_hash(const flame_node_t *leaf, uint32_t pid, const char *node)
{
    /* Interned: the pointer names the node. */
    return hash_mix64((uint64_t)(uintptr_t)leaf ^ ((uint64_t)pid << 1)
                      ^ ((uint64_t)(uintptr_t)node << 17));
}

static int
s_stack_index_grow(agg_window_t *self)
{
    size_t cap = self->stack_index_cap ? self->stack_index_cap * 2 : 256;
    uint32_t *idx = calloc(cap, sizeof(*idx));
    if (!idx)
        return -1;
    for (size_t i = 0; i < self->nstacks; i++) {
        size_t j = s_stack_hash(self->stacks[i].leaf, self->stacks[i].pid,
                                self->stacks[i].node)
                   & (cap - 1);
        while (idx[j])
            j = (j + 1) & (cap - 1);
        idx[j] = (uint32_t)i + 1;
    }
    free(self->stack_index);
    self->stack_index = idx;
    self->stack_index_cap = cap;
    return 0;
}

static void
s_stack_add(agg_window_t *self, const flame_node_t *leaf, uint32_t task,
            const char *node, uint32_t pid, uint8_t kind, uint64_t count,
            uint64_t ns)
{
    if (self->stack_index_cap) {
        size_t mask = self->stack_index_cap - 1;
        for (size_t j = s_stack_hash(leaf, pid, node) & mask;
             self->stack_index[j]; j = (j + 1) & mask) {
            agg_wstack_t *s = &self->stacks[self->stack_index[j] - 1];
            if (s->leaf == leaf && s->pid == pid && s->node == node) {
                s->count += count;
                s->ns += ns;
                return;
            }
        }
    }
    if (self->nstacks >= AGG_WINDOW_MAX_STACKS) {
        self->dropped++;
        return;
    }
    if ((self->nstacks + 1) * 2 >= self->stack_index_cap
        && s_stack_index_grow(self)) {
        self->dropped++;
        return;
    }
    if (self->nstacks == self->stacks_cap) {
        size_t cap = self->stacks_cap ? self->stacks_cap * 2 : 64;
        agg_wstack_t *s = realloc(self->stacks, cap * sizeof(*s));
        if (!s) {
            self->dropped++;
            return;
        }
        self->stacks = s;
        self->stacks_cap = cap;
    }
    agg_wstack_t *s = &self->stacks[self->nstacks];
    s->leaf = leaf;
    s->task = task;
    s->pid = pid;
    s->node = node;
    s->kind = kind;
    s->count = count;
    s->ns = ns;
    size_t mask = self->stack_index_cap - 1;
    size_t j = s_stack_hash(leaf, pid, node) & mask;
    while (self->stack_index[j])
        j = (j + 1) & mask;
    self->stack_index[j] = (uint32_t)++self->nstacks;
}

/* -------------------------------------------------------------- batch */
static int
s_sample_valid(const wire_sym_batch_t *b, const wire_sym_sample_t *s)
{
    if (s->kind >= AGG_KINDS || s->nkernel > s->nframes
        || s->nframes > PATH_MAX_FRAMES || (s->nframes && !s->frames)
        || (s->ntasks && !s->tasks))
        return 0;
    for (uint32_t i = 0; i < s->nframes; i++)
        if (s->frames[i] >= b->nframes)
            return 0;
    for (uint32_t i = 0; i < s->ntasks; i++)
        if (s->tasks[i] >= b->ntask_ids)
            return 0;
    return 1;
}

long
agg_window_add_batch(agg_window_t *self, const wire_sym_batch_t *b,
                     agg_name_fn name_fn, agg_pod_fn pod_fn, void *name_arg)
{
    long rejected = 0;
    int *task_map = NULL;
    uint64_t *frame_hash = NULL;
    const char *names[PATH_MAX];
    uint64_t hashes[PATH_MAX];
    uint8_t types[PATH_MAX];
    char pidstr[16], comm[WIRE_COMM_LEN + 1];
    /* Every pid of the batch lives on the batch's node. */
    const char *node = s_node_intern(self, b->node);

    /* The batch's process table is the freshest name for each pid. */
    for (uint32_t i = 0; i < b->nprocs; i++) {
        const wire_proc_t *p = &b->procs[i];
        if (!p->name || !*p->name)
            continue;
        agg_wproc_t *wp = s_proc_get(self, node, p->pid, p->name);
        if (!wp)
            continue;
        s_proc_rename(wp, p->name);
        const agg_pod_t *pod = pod_fn && p->container_id && *p->container_id
                                   ? pod_fn(name_arg, node, p->container_id)
                                   : NULL;
        if (pod)
            s_proc_set_pod(wp, pod->ns, pod->pod, pod->container);
    }
    if (b->ntask_ids) {
        task_map = malloc(b->ntask_ids * sizeof(*task_map));
        if (!task_map) {
            rejected = -1;
            goto cleanup;
        }
        for (uint32_t i = 0; i < b->ntask_ids; i++)
            task_map[i] = b->task_ids[i] && *b->task_ids[i]
                              ? s_task_get(self, b->task_ids[i])
                              : -1;
    }

    /* Every tree hashes names to intern them; a batch's frame table is
     * hashed once here instead of once per frame of every sample. */
    if (b->nframes) {
        frame_hash = malloc(b->nframes * sizeof(*frame_hash));
        if (!frame_hash) {
            rejected = -1;
            goto cleanup;
        }
        for (uint32_t f = 0; f < b->nframes; f++)
            frame_hash[f] = hash_fnv1a(b->frames[f].name ? b->frames[f].name
                                                         : "[unknown]", 0);
    }

    for (uint32_t i = 0; i < b->nsamples; i++) {
        const wire_sym_sample_t *s = &b->samples[i];
        if (!s_sample_valid(b, s)) {
            rejected++;
            continue;
        }
        agg_wproc_t *wp = s_proc_find(self, node, s->pid);
        size_t clen = strnlen(s->comm, WIRE_COMM_LEN);
        memcpy(comm, s->comm, clen);
        comm[clen] = '\0';
        if (!wp) {
            const char *pname = name_fn ? name_fn(name_arg, node, s->pid)
                                        : NULL;
            if (!pname || !*pname)
                pname = clen ? comm : "[unknown]";
            wp = s_proc_get(self, node, s->pid, pname);
        }
        if (wp) {
            if (s->kind == WIRE_KIND_ON_CPU) {
                wp->cpu_ns += s->weight_ns;
                wp->samples += s->count;
            } else {
                wp->off_ns += s->weight_ns;
                wp->switches += s->count;
            }
        }

        snprintf(pidstr, sizeof(pidstr), "%u", s->pid);
        names[0] = node;
        hashes[0] = hash_fnv1a(node, 0);
        types[0] = FLAME_NODE;
        names[1] = pidstr;
        hashes[1] = hash_fnv1a(pidstr, 0);
        types[1] = FLAME_PROCESS;
        names[2] = clen ? comm : (wp ? wp->name : "[unknown]");
        hashes[2] = hash_fnv1a(names[2], 0);
        types[2] = FLAME_THREAD;
        /* Frames arrive leaf first (kernel part first); trees are root
         * first, so the whole sequence is reversed. */
        size_t n = 3;
        for (uint32_t f = s->nframes; f-- > 0;) {
            const wire_frame_t *fr = &b->frames[s->frames[f]];
            names[n] = fr->name ? fr->name : "[unknown]";
            hashes[n] = frame_hash[s->frames[f]];
            types[n] = fr->type <= WIRE_FRAME_TYPE_MAX ? fr->type
                                                       : FLAME_UNKNOWN;
            n++;
        }
        if (!flame_add_hashed(self->host[s->kind], names, hashes, types, n,
                              s->weight_ns, s->count)) {
            rejected = -1;
            goto cleanup;
        }
        self->samples += s->count;

        for (uint32_t t = 0; t < s->ntasks; t++) {
            int ti = task_map[s->tasks[t]];
            if (ti < 0)
                continue;
            flame_t *tree = s_task_tree(self, ti, s->kind);
            if (!tree) {
                rejected = -1;
                goto cleanup;
            }
            const flame_node_t *leaf = flame_add_hashed(tree, names + 3,
                                                        hashes + 3, types + 3,
                                                        n - 3, s->weight_ns,
                                                        s->count);
            if (!leaf) {
                rejected = -1;
                goto cleanup;
            }
            s_stack_add(self, leaf, (uint32_t)ti, node, s->pid, s->kind,
                        s->count, s->weight_ns);
        }
    }
cleanup:
    free(task_map);
    free(frame_hash);
    return rejected;
}

static int
s_stack_cmp(const void *a, const void *b)
{
    const agg_wstack_t *x = a, *y = b;
    if (x->task != y->task)
        return x->task < y->task ? -1 : 1;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    int c = strcmp(x->node, y->node);
    if (c)
        return c < 0 ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return 0;
}

void
agg_window_close(agg_window_t *self, uint64_t end_ms)
{
    self->end_ms = end_ms;
    /* The index is only needed while adding. */
    free(self->stack_index);
    self->stack_index = NULL;
    self->stack_index_cap = 0;
    if (self->nstacks)
        qsort(self->stacks, self->nstacks, sizeof(*self->stacks),
              s_stack_cmp);
    /* A closed window only answers queries (they walk its trees), so the
     * trees' lookup tables go: history holds many windows. */
    for (int k = 0; k < AGG_KINDS; k++)
        if (self->host[k])
            flame_compact(self->host[k]);
    for (size_t i = 0; i < self->ntasks; i++)
        for (int k = 0; k < AGG_KINDS; k++)
            if (self->tasks[i].tree[k])
                flame_compact(self->tasks[i].tree[k]);
}

/* ----------------------------------------------------------- accessors */
uint64_t agg_window_start(const agg_window_t *self) { return self->start_ms; }
uint64_t agg_window_end(const agg_window_t *self) { return self->end_ms; }
uint64_t agg_window_samples(const agg_window_t *self) { return self->samples; }
uint64_t agg_window_dropped(const agg_window_t *self) { return self->dropped; }

size_t
agg_window_nodes(const agg_window_t *self)
{
    size_t n = 0;
    for (int k = 0; k < AGG_KINDS; k++)
        n += flame_node_count(self->host[k]);
    for (size_t i = 0; i < self->ntasks; i++)
        for (int k = 0; k < AGG_KINDS; k++)
            if (self->tasks[i].tree[k])
                n += flame_node_count(self->tasks[i].tree[k]);
    return n;
}

flame_t *
agg_window_host(const agg_window_t *self, int kind)
{
    return self->host[kind == WIRE_KIND_OFF_CPU];
}

size_t agg_window_ntasks(const agg_window_t *self) { return self->ntasks; }

const agg_wtask_t *
agg_window_task(const agg_window_t *self, size_t i)
{
    return i < self->ntasks ? &self->tasks[i] : NULL;
}

const agg_wtask_t *
agg_window_find_task(const agg_window_t *self, const char *task_id)
{
    int i = s_task_find(self, task_id);
    return i < 0 ? NULL : &self->tasks[i];
}

size_t agg_window_nprocs(const agg_window_t *self) { return self->nprocs; }

const agg_wproc_t *
agg_window_proc(const agg_window_t *self, size_t i)
{
    return i < self->nprocs ? &self->procs[i] : NULL;
}

const agg_wproc_t *
agg_window_find_proc(const agg_window_t *self, const char *node,
                     uint32_t pid)
{
    return s_proc_find(self, node, pid);
}

size_t agg_window_nnodes(const agg_window_t *self) { return self->nnodes; }

const char *
agg_window_node(const agg_window_t *self, size_t i)
{
    return i < self->nnodes ? self->nodes[i] : NULL;
}

size_t agg_window_nstacks(const agg_window_t *self) { return self->nstacks; }

const agg_wstack_t *
agg_window_stacks(const agg_window_t *self)
{
    return self->stacks;
}

void
agg_window_drop_stacks(agg_window_t *self)
{
    free(self->stacks);
    self->stacks = NULL;
    self->nstacks = self->stacks_cap = 0;
    free(self->stack_index);
    self->stack_index = NULL;
    self->stack_index_cap = 0;
}

/* ---------------------------------------------------------- rebuilding */
int
agg_window_set_host(agg_window_t *self, int kind, flame_t *tree)
{
    if (kind < 0 || kind >= AGG_KINDS) {
        flame_destroy(&tree);
        return -1;
    }
    flame_destroy(&self->host[kind]);
    self->host[kind] = tree;
    return 0;
}

int
agg_window_set_task(agg_window_t *self, const char *task_id, int kind,
                    flame_t *tree)
{
    int i = kind >= 0 && kind < AGG_KINDS ? s_task_get(self, task_id) : -1;
    if (i < 0) {
        flame_destroy(&tree);
        return -1;
    }
    flame_destroy(&self->tasks[i].tree[kind]);
    self->tasks[i].tree[kind] = tree;
    return 0;
}

static int
s_put_varint(unsigned char **p, unsigned char *end, uint64_t v)
{
    do {
        if (*p >= end)
            return -1;
        **p = (v & 0x7f) | (v >= 0x80 ? 0x80 : 0);
        (*p)++;
        v >>= 7;
    } while (v);
    return 0;
}

static int
s_get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        unsigned char b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

int
agg_window_procs_encode(const agg_window_t *self, unsigned char **out,
                        size_t *len)
{
    /* Without node names the table keeps the older layout, so a single
     * node-less deployment writes what it always wrote. */
    int with_pods = 0;
    for (size_t i = 0; i < self->nprocs; i++)
        with_pods |= self->procs[i].pod != NULL;
    int with_nodes = self->nnodes > 0 || with_pods;
    size_t cap = 20;
    for (size_t i = 0; i < self->nprocs; i++) {
        const agg_wproc_t *w = &self->procs[i];
        cap += 10 * 10 + strlen(w->name) + strlen(w->node);
        if (w->pod)
            cap += strlen(w->ns) + strlen(w->pod) + strlen(w->container);
    }
    unsigned char *buf = malloc(cap), *p = buf, *end = buf + cap;
    if (!buf)
        return -1;
    if (with_nodes)
        s_put_varint(&p, end, with_pods ? PROCS_FORMAT_PODS
                                        : PROCS_FORMAT_NODES);
    s_put_varint(&p, end, self->nprocs);
    for (size_t i = 0; i < self->nprocs; i++) {
        const agg_wproc_t *w = &self->procs[i];
        if (with_nodes) {
            size_t node_len = strlen(w->node);
            s_put_varint(&p, end, node_len);
            memcpy(p, w->node, node_len);
            p += node_len;
        }
        size_t nlen = strlen(w->name);
        s_put_varint(&p, end, w->pid);
        s_put_varint(&p, end, w->cpu_ns);
        s_put_varint(&p, end, w->samples);
        s_put_varint(&p, end, w->off_ns);
        s_put_varint(&p, end, w->switches);
        s_put_varint(&p, end, nlen);
        memcpy(p, w->name, nlen);
        p += nlen;
        const char *pod[3] = { w->ns, w->pod, w->container };
        for (int k = 0; with_pods && k < 3; k++) {
            size_t l = pod[k] ? strlen(pod[k]) : 0;
            s_put_varint(&p, end, l);
            memcpy(p, pod[k] ? pod[k] : "", l);
            p += l;
        }
    }
    *out = buf;
    *len = (size_t)(p - buf);
    return 0;
}

int
agg_window_procs_decode(agg_window_t *self, const void *data, size_t len)
{
    const unsigned char *p = data, *end = p + len;
    char name[WIRE_MAX_STR + 1], node_name[WIRE_MAX_NODE + 1];
    uint64_t n, v[6];
    int with_nodes = 0, with_pods = 0;
    if (s_get_varint(&p, end, &n))
        return -1;
    if (n == PROCS_FORMAT_NODES || n == PROCS_FORMAT_PODS) {
        with_nodes = 1;
        with_pods = n == PROCS_FORMAT_PODS;
        if (s_get_varint(&p, end, &n))
            return -1;
    }
    if (n > AGG_WINDOW_MAX_PROCS)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        const char *node = "";
        if (with_nodes) {
            uint64_t node_len;
            if (s_get_varint(&p, end, &node_len) || node_len > WIRE_MAX_NODE
                || node_len > (uint64_t)(end - p))
                return -1;
            memcpy(node_name, p, node_len);
            node_name[node_len] = '\0';
            p += node_len;
            if (strlen(node_name) != node_len)
                return -1;
            node = s_node_intern(self, node_name);
        }
        for (int k = 0; k < 6; k++)
            if (s_get_varint(&p, end, &v[k]))
                return -1;
        if (v[0] > UINT32_MAX || v[5] > WIRE_MAX_STR
            || v[5] > (uint64_t)(end - p))
            return -1;
        memcpy(name, p, v[5]);
        name[v[5]] = '\0';
        p += v[5];
        agg_wproc_t *w = s_proc_get(self, node, (uint32_t)v[0], name);
        if (!w)
            return -1;
        char pod[3][WIRE_MAX_STR + 1];
        for (int k = 0; with_pods && k < 3; k++) {
            uint64_t l;
            if (s_get_varint(&p, end, &l) || l > WIRE_MAX_STR
                || l > (uint64_t)(end - p))
                return -1;
            memcpy(pod[k], p, l);
            pod[k][l] = '\0';
            p += l;
        }
        if (with_pods && pod[1][0])
            s_proc_set_pod(w, pod[0], pod[1], pod[2]);
        w->cpu_ns += v[1];
        w->samples += v[2];
        w->off_ns += v[3];
        w->switches += v[4];
    }
    return p == end ? 0 : -1;
}

/* ---------------------------------------------------------------- refs */
void
agg_window_ref(agg_window_t *self)
{
    self->refs++;
}

void
agg_window_unref(agg_window_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if (--(*self_p)->refs <= 0)
        agg_window_destroy(self_p);
    *self_p = NULL;
}
