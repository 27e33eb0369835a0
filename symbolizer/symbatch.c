/* Raw batch -> symbolized batch; see symbatch.h.
 *
 * Two per-batch tables keep the work proportional to distinct frames, not
 * to sample frames: a memo from (object, offset) or kernel address to the
 * frame-table index (deep stacks share most of their frames), and the
 * intern table from (name, type) to that index. */
#include "symbolizer/symbatch.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "hash.h"

#define TAG_KERNEL 0xfffffffeu      /* memo tag of kernel addresses */
#define MEMO_MAX_SLOTS (1u << 20)   /* past this, resolve without memo */
#define OVERFLOW_NAME "[frame table full]"

typedef struct {
    uint64_t offset;
    uint32_t tag;            /* object id, TAG_KERNEL or WIRE_NO_OBJECT */
    uint32_t frame_plus1;    /* 0 = empty slot */
} memo_slot_t;

typedef struct {
    uint32_t id;
    uint32_t index;
} id_index_t;

struct symbatch {
    arena_t *arena;

    wire_frame_t *frames;
    uint64_t *frame_hash;
    uint32_t nframes;
    uint32_t frames_cap;
    uint32_t *intern;        /* frame index + 1; 0 = empty */
    uint32_t intern_cap;     /* power of two */
    uint32_t overflow_frame; /* index + 1 of OVERFLOW_NAME, 0 = none yet */

    memo_slot_t *memo;
    uint32_t memo_cap;
    uint32_t memo_used;

    id_index_t *objects;     /* sorted by id */
    id_index_t *procs;       /* pid -> nspid, sorted by pid */
    uint32_t objects_cap, procs_cap;
};

symbatch_t *
symbatch_new(void)
{
    symbatch_t *self = calloc(1, sizeof(*self));
    if (!self)
        goto cleanup;
    self->arena = arena_new(0);
    if (!self->arena)
        symbatch_destroy(&self);
cleanup:
    return self;
}

void
symbatch_destroy(symbatch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    symbatch_t *self = *self_p;
    arena_destroy(&self->arena);
    free(self->frames);
    free(self->frame_hash);
    free(self->intern);
    free(self->memo);
    free(self->objects);
    free(self->procs);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------- id -> index maps */

static int
s_cmp_id(const void *a, const void *b)
{
    uint32_t x = ((const id_index_t *)a)->id, y = ((const id_index_t *)b)->id;
    return x < y ? -1 : x > y;
}

static int
s_ensure(id_index_t **arr, uint32_t *cap, uint32_t n)
{
    if (n <= *cap)
        return 0;
    id_index_t *p = realloc(*arr, (size_t)n * sizeof(*p));
    if (!p)
        return -1;
    *arr = p;
    *cap = n;
    return 0;
}

static const id_index_t *
s_find_id(const id_index_t *arr, uint32_t n, uint32_t id)
{
    id_index_t key = { id, 0 };
    return n ? bsearch(&key, arr, n, sizeof(*arr), s_cmp_id) : NULL;
}

/* ------------------------------------------------------ frame table */

static int
s_intern_grow(symbatch_t *self)
{
    uint32_t cap = self->intern_cap ? self->intern_cap * 2 : 4096;
    uint32_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    for (uint32_t i = 0; i < self->nframes; i++) {
        uint32_t j = (uint32_t)self->frame_hash[i] & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = i + 1;
    }
    free(self->intern);
    self->intern = slots;
    self->intern_cap = cap;
    return 0;
}

/* Appends a frame (name copied into the arena); index or -1. */
static int64_t
s_append_frame(symbatch_t *self, const char *name, uint8_t type, uint64_t h)
{
    if (self->nframes == self->frames_cap) {
        uint32_t cap = self->frames_cap ? self->frames_cap * 2 : 1024;
        wire_frame_t *f = realloc(self->frames, cap * sizeof(*f));
        if (!f)
            return -1;
        self->frames = f;
        uint64_t *hs = realloc(self->frame_hash, cap * sizeof(*hs));
        if (!hs)
            return -1;
        self->frame_hash = hs;
        self->frames_cap = cap;
    }
    char *copy = arena_strdup(self->arena, name);
    if (!copy)
        return -1;
    self->frames[self->nframes].name = copy;
    self->frames[self->nframes].type = type;
    self->frame_hash[self->nframes] = h;
    return self->nframes++;
}

/* Index of (name, type) in the frame table, adding it when new. h is
 * hash_fnv1a(name, type), which the symbolizer hands over with the name
 * (its memo keeps it), so long names are not rehashed per batch. */
static int64_t
s_intern(symbatch_t *self, const char *name, uint8_t type, uint64_t h)
{
    if ((uint64_t)(self->nframes + 1) * 2 > self->intern_cap &&
        s_intern_grow(self) < 0)
        return -1;
    uint32_t mask = self->intern_cap - 1, j = (uint32_t)h & mask;
    while (self->intern[j]) {
        uint32_t i = self->intern[j] - 1;
        if (self->frame_hash[i] == h && self->frames[i].type == type &&
            strcmp(self->frames[i].name, name) == 0)
            return i;
        j = (j + 1) & mask;
    }
    /* The wire bounds the table; past it every new name shares one
     * marker frame so the samples still count. */
    if (self->nframes >= WIRE_MAX_STRINGS - 1) {
        if (!self->overflow_frame) {
            int64_t ov = s_append_frame(self, OVERFLOW_NAME,
                                        WIRE_FRAME_UNKNOWN, 0);
            if (ov < 0)
                return -1;
            self->overflow_frame = (uint32_t)ov + 1;
        }
        return self->overflow_frame - 1;
    }
    int64_t idx = s_append_frame(self, name, type, h);
    if (idx >= 0)
        self->intern[j] = (uint32_t)idx + 1;
    return idx;
}

/* --------------------------------------------------------------- memo */

static int
s_memo_reset(symbatch_t *self, uint64_t total_frames)
{
    uint64_t want = 1024;
    while (want < total_frames * 2 && want < MEMO_MAX_SLOTS)
        want *= 2;
    if (want > self->memo_cap) {
        memo_slot_t *m = malloc(want * sizeof(*m));
        if (!m)
            return -1;
        free(self->memo);
        self->memo = m;
        self->memo_cap = (uint32_t)want;
    }
    memset(self->memo, 0, (size_t)self->memo_cap * sizeof(*self->memo));
    self->memo_used = 0;
    return 0;
}

static memo_slot_t *
s_memo_slot(symbatch_t *self, uint32_t tag, uint64_t offset)
{
    uint32_t mask = self->memo_cap - 1;
    uint32_t j = (uint32_t)hash_mix64(offset ^ ((uint64_t)tag << 40)) & mask;
    while (self->memo[j].frame_plus1) {
        if (self->memo[j].tag == tag && self->memo[j].offset == offset)
            return &self->memo[j];
        j = (j + 1) & mask;
    }
    return &self->memo[j];   /* empty slot for this key */
}

/* ------------------------------------------------------------ frames */

static int64_t
s_frame(symbatch_t *self, symbolizer_t *sym, const wire_raw_batch_t *in,
        uint32_t tag, uint64_t offset, uint32_t nspid,
        symbatch_counts_t *counts)
{
    memo_slot_t *slot = s_memo_slot(self, tag, offset);
    if (slot->frame_plus1)
        return slot->frame_plus1 - 1;
    const char *name;
    uint8_t type;
    uint64_t h;
    const id_index_t *o = NULL;
    if (tag == TAG_KERNEL) {
        symbolizer_resolve_kernel_h(sym, offset, &name, &type, &h);
    } else {
        o = tag == WIRE_NO_OBJECT
            ? NULL : s_find_id(self->objects, in->nobjects, tag);
        symbolizer_resolve_user_h(sym, o ? &in->objects[o->index] : NULL,
                                  nspid, offset, &name, &type, &h);
    }
    counts->lookups++;
    int64_t idx = s_intern(self, name, type, h);
    /* Perf maps are per process: a JIT frame's name may differ between
     * two pids sharing the object id, so those are not memoized. */
    if (idx >= 0 && self->memo_used * 2 < self->memo_cap) {
        if (!o || in->objects[o->index].type != WIRE_OBJ_JIT) {
            slot->tag = tag;
            slot->offset = offset;
            slot->frame_plus1 = (uint32_t)idx + 1;
            self->memo_used++;
        }
    }
    return idx;
}

static int
s_index_tables(symbatch_t *self, const wire_raw_batch_t *in)
{
    if (s_ensure(&self->objects, &self->objects_cap, in->nobjects) < 0 ||
        s_ensure(&self->procs, &self->procs_cap, in->nprocs) < 0)
        return -1;
    for (uint32_t i = 0; i < in->nobjects; i++)
        self->objects[i] = (id_index_t){ in->objects[i].id, i };
    for (uint32_t i = 0; i < in->nprocs; i++)
        self->procs[i] = (id_index_t){ in->procs[i].pid, in->procs[i].nspid };
    if (in->nobjects > 1)
        qsort(self->objects, in->nobjects, sizeof(id_index_t), s_cmp_id);
    if (in->nprocs > 1)
        qsort(self->procs, in->nprocs, sizeof(id_index_t), s_cmp_id);
    return 0;
}

int
symbatch_build(symbatch_t *self, symbolizer_t *sym, const wire_raw_batch_t *in,
               wire_sym_batch_t *out, symbatch_counts_t *counts)
{
    int rc = -1;
    symbatch_counts_t local = { 0 };
    wire_sym_sample_t *samples = NULL;
    uint64_t total = 0;

    memset(out, 0, sizeof(*out));
    arena_reset(self->arena);
    self->nframes = 0;
    self->overflow_frame = 0;
    if (self->intern)
        memset(self->intern, 0, (size_t)self->intern_cap * sizeof(uint32_t));
    for (uint32_t i = 0; i < in->nsamples; i++)
        total += (uint64_t)in->samples[i].nk + in->samples[i].nu;
    if (s_memo_reset(self, total) < 0 || s_index_tables(self, in) < 0)
        goto cleanup;
    if (in->nsamples) {
        samples = arena_calloc(self->arena, in->nsamples, sizeof(*samples));
        if (!samples)
            goto cleanup;
    }
    for (uint32_t i = 0; i < in->nsamples; i++) {
        const wire_raw_sample_t *rs = &in->samples[i];
        wire_sym_sample_t *ss = &samples[i];
        uint32_t nf = rs->nk + rs->nu;
        uint32_t *frames = nf ? arena_alloc(self->arena, nf * sizeof(uint32_t))
                              : NULL;
        if (nf && !frames)
            goto cleanup;
        const id_index_t *p = s_find_id(self->procs, in->nprocs, rs->pid);
        uint32_t nspid = p ? p->index : 0;
        for (uint32_t k = 0; k < rs->nk; k++) {
            int64_t idx = s_frame(self, sym, in, TAG_KERNEL, rs->kframes[k], 0,
                                  &local);
            if (idx < 0)
                goto cleanup;
            frames[k] = (uint32_t)idx;
        }
        for (uint32_t u = 0; u < rs->nu; u++) {
            const wire_uframe_t *uf = &rs->uframes[u];
            int64_t idx = s_frame(self, sym, in, uf->object, uf->offset, nspid,
                                  &local);
            if (idx < 0)
                goto cleanup;
            frames[rs->nk + u] = (uint32_t)idx;
        }
        for (uint32_t f = 0; f < nf; f++) {
            if (self->frames[frames[f]].type == WIRE_FRAME_UNKNOWN)
                local.frames_unknown++;
            else
                local.frames_resolved++;
        }
        ss->pid = rs->pid;
        ss->tid = rs->tid;
        ss->cpu = rs->cpu;
        ss->kind = rs->kind;
        ss->ts_ns = rs->ts_ns;
        ss->count = rs->count;
        ss->weight_ns = rs->weight_ns;
        memcpy(ss->comm, rs->comm, sizeof(ss->comm));
        ss->comm[sizeof(ss->comm) - 1] = '\0';
        ss->nframes = nf;
        ss->frames = frames;
        ss->nkernel = rs->nk;
        ss->ntasks = rs->ntasks;
        ss->tasks = rs->tasks;
    }
    out->nframes = self->nframes;
    out->frames = self->frames;
    out->nprocs = in->nprocs;
    out->procs = in->procs;
    out->ntask_ids = in->ntask_ids;
    out->task_ids = in->task_ids;
    out->nsamples = in->nsamples;
    out->samples = samples;
    /* Pids are per node: the aggregator keys processes by both. */
    out->node = in->node;
    rc = 0;
cleanup:
    if (counts)
        *counts = local;
    return rc;
}
