/* Off-CPU probe loading, pid filter and drain; see offcpu.h. */
#include "collector/offcpu.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/profile.h"
#include "collector/pidset.h"
#include "kallsyms.h"
#include "log.h"
#include "offcpu.skel.h"

#define OFFCPU_DEFAULT_STACKS 8192
#define OFFCPU_DEFAULT_AGG    16384
#define OFFCPU_DEFAULT_START  32768
#define OFFCPU_MAX_ENTRIES    (1u << 20)
#define OFFCPU_BATCH          512
/* A generation must have been idle this long before its stacks are
 * deleted: a program that read the old generation number just before the
 * flip runs with preemption off and is done within microseconds. */
#define OFFCPU_FLIP_GRACE_NS  (10ull * 1000000ull)

/* What a load produced: the programs, attached. */
typedef struct {
    struct offcpu_bpf *skel;
    struct bpf_link *link;
    int flavour;
} loaded_t;

/* A stack read from a stack map during one drain. */
typedef struct {
    uint32_t n;
    uint64_t frames[SKY_MAX_FRAMES];
} stack_copy_t;

struct offcpu {
    offcpu_options_t opts;
    offcpu_sample_fn on_sample;
    void *arg;
    struct offcpu_bpf *skel;
    struct bpf_link *link;
    int flavour;
    pidset_t *pids;            /* the targeted processes (off_pid_bits) */
    /* A load on the loader thread (opts.background_load): it fills staged
     * and sets load_done; until the loop joins it (s_poll_load) the loop
     * touches neither, and keeps the set asked for meanwhile in want. The
     * thread writes the fields only the loaded programs' drains read
     * (sched_*). */
    pthread_t loader;
    bool loading;
    atomic_int load_done;
    int staged_rc;
    loaded_t staged;
    uint32_t *want;
    size_t nwant;
    /* generations: gen is what new switch-outs use */
    uint32_t gen;
    uint64_t flip_ns;
    /* [start, end) of __schedule: kernel stacks are cut to begin there,
     * above the tracing frames (or finish_task_switch) that took them */
    uint64_t sched_start, sched_end;
    bool sched_looked_up;
    uint32_t nbits;            /* stack-map ids are < nbits (bucket count) */
    uint32_t nids;             /* all ids are < nids: walked user stacks
                                  (off_wstacks*) take [nbits, 2 nbits) */
    unwinder_maps_t unwind;    /* the on-CPU program's walker maps */
    uint32_t unwind_max_frames;
    bool unwind_on;
    uint64_t *pending[2];      /* ids consumed, not yet deleted */
    uint64_t *refs;            /* ids a sleeping thread still holds */
    uint32_t refs_gen;         /* the generation refs is about */
    /* per-drain stack cache, indexed [gen][id] */
    stack_copy_t **cache[2];
    uint32_t *touched;         /* gen << 31 | id of filled cache slots */
    size_t ntouched;
    /* drain buffers */
    struct sky_off_key *keys;
    struct sky_off_val *vals;
    uint32_t *start_keys;
    struct sky_off_start *start_vals;
    /* counters of earlier attachments, and ours */
    uint64_t base[SKY_OFF_CNT_MAX];
    uint64_t stacks_missing, stacks_deleted, samples, attaches;
    log_ratelimit_t rl;
};

void offcpu_options_default(offcpu_options_t *opts)
{
    *opts = (offcpu_options_t){
        .flavour = OFFCPU_AUTO,
        .stack_entries = OFFCPU_DEFAULT_STACKS,
        .agg_entries = OFFCPU_DEFAULT_AGG,
        .start_entries = OFFCPU_DEFAULT_START,
        .sample_every = OFFCPU_DEFAULT_SAMPLE_EVERY,
        .long_ns = OFFCPU_DEFAULT_LONG_NS,
        .background_load = true,
    };
}

const char *offcpu_flavour_name(int flavour)
{
    switch (flavour) {
    case OFFCPU_TP_BTF: return "tp_btf/sched_switch";
    case OFFCPU_KPROBE: return "kprobe/finish_task_switch";
    default: return "none";
    }
}

static uint32_t s_pow2(uint32_t n)
{
    uint32_t p = 1;

    while (p < n)
        p <<= 1;
    return p;
}

static inline void s_bit_set(uint64_t *bits, uint32_t i)
{
    bits[i / 64] |= 1ull << (i % 64);
}

offcpu_t *offcpu_new(const offcpu_options_t *opts, offcpu_sample_fn on_sample,
                     void *arg)
{
    offcpu_t *self = NULL;

    if (opts->flavour < OFFCPU_AUTO || opts->flavour > OFFCPU_KPROBE ||
        opts->stack_entries > OFFCPU_MAX_ENTRIES ||
        opts->agg_entries > OFFCPU_MAX_ENTRIES ||
        opts->start_entries > OFFCPU_MAX_ENTRIES)
        return NULL;
    self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->opts = *opts;
    if (!self->opts.stack_entries)
        self->opts.stack_entries = OFFCPU_DEFAULT_STACKS;
    if (!self->opts.agg_entries)
        self->opts.agg_entries = OFFCPU_DEFAULT_AGG;
    if (!self->opts.start_entries)
        self->opts.start_entries = OFFCPU_DEFAULT_START;
    if (!self->opts.sample_every)
        self->opts.sample_every = OFFCPU_DEFAULT_SAMPLE_EVERY;
    if (!self->opts.long_ns)
        self->opts.long_ns = OFFCPU_DEFAULT_LONG_NS;
    self->on_sample = on_sample;
    self->arg = arg;
    self->rl = (log_ratelimit_t)LOG_RATELIMIT_INIT(5, 10000);
    /* The kernel sizes a stack map's bucket array to the next power of
     * two above max_entries and an id is a bucket index; two different
     * stacks in one bucket cannot both be stored (the second is lost and
     * counted). One element more than a power of two doubles the buckets,
     * halving those collisions, for 8 bytes a bucket. */
    self->nbits = s_pow2(self->opts.stack_entries + 1);
    self->nids = 2 * self->nbits;
    size_t words = (self->nids + 63) / 64;
    self->pending[0] = calloc(words, sizeof(uint64_t));
    self->pending[1] = calloc(words, sizeof(uint64_t));
    self->refs = calloc(words, sizeof(uint64_t));
    self->cache[0] = calloc(self->nids, sizeof(stack_copy_t *));
    self->cache[1] = calloc(self->nids, sizeof(stack_copy_t *));
    self->touched = calloc(2 * (size_t)self->nids, sizeof(uint32_t));
    self->keys = calloc(OFFCPU_BATCH, sizeof(*self->keys));
    self->vals = calloc(OFFCPU_BATCH, sizeof(*self->vals));
    self->start_keys = calloc(OFFCPU_BATCH, sizeof(*self->start_keys));
    self->start_vals = calloc(OFFCPU_BATCH, sizeof(*self->start_vals));
    self->pids = pidset_new();
    if (!self->pids || !self->pending[0] || !self->pending[1] || !self->refs ||
        !self->cache[0] || !self->cache[1] || !self->touched ||
        !self->keys || !self->vals || !self->start_keys ||
        !self->start_vals)
        goto fail;
    return self;
fail:
    offcpu_destroy(&self);
    return NULL;
}

static void s_clear_cache(offcpu_t *self)
{
    for (size_t i = 0; i < self->ntouched; i++) {
        uint32_t t = self->touched[i];
        stack_copy_t **slot = &self->cache[t >> 31][t & 0x7fffffffu];
        free(*slot);
        *slot = NULL;
    }
    self->ntouched = 0;
}

/* Sums a per-CPU counter of the loaded programs. */
static uint64_t s_kernel_counter(const offcpu_t *self, uint32_t idx)
{
    int ncpu = libbpf_num_possible_cpus();
    uint64_t *values, sum = 0;

    if (!self->skel || ncpu <= 0)
        return 0;
    values = calloc((size_t)ncpu, sizeof(*values));
    if (!values)
        return 0;
    if (bpf_map_lookup_elem(bpf_map__fd(self->skel->maps.off_counters), &idx,
                            values) == 0)
        for (int i = 0; i < ncpu; i++)
            sum += values[i];
    free(values);
    return sum;
}

/* Unloads the programs, folding their counters into the totals. */
static void s_unload(offcpu_t *self)
{
    bpf_link__destroy(self->link);
    self->link = NULL;
    if (self->skel)
        for (uint32_t i = 0; i < SKY_OFF_CNT_MAX; i++)
            self->base[i] += s_kernel_counter(self, i);
    offcpu_bpf__destroy(self->skel);
    self->skel = NULL;
    size_t words = (self->nids + 63) / 64;
    memset(self->pending[0], 0, words * sizeof(uint64_t));
    memset(self->pending[1], 0, words * sizeof(uint64_t));
    s_clear_cache(self);
    pidset_unbind(self->pids);
    self->gen = 0;
}

static void s_finish_load(offcpu_t *self, bool wait);

void offcpu_destroy(offcpu_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    offcpu_t *self = *self_p;
    s_finish_load(self, true);
    if (self->cache[0] && self->cache[1] && self->touched && self->pids)
        s_unload(self);
    free(self->want);
    free(self->pending[0]);
    free(self->pending[1]);
    free(self->refs);
    free(self->cache[0]);
    free(self->cache[1]);
    free(self->touched);
    free(self->keys);
    free(self->vals);
    free(self->start_keys);
    free(self->start_vals);
    pidset_destroy(&self->pids);
    free(self);
    *self_p = NULL;
}

/* ------------------------------------------------------------ attach */

/* The finish_task_switch symbol this kernel has: the plain name, else a
 * compiler clone such as finish_task_switch.isra.0. */
static int s_find_finish_task_switch(char *out, size_t size)
{
    FILE *f = fopen("/proc/kallsyms", "re");
    char line[512], name[256], clone[256] = "";
    int found = 0;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        char type;
        if (sscanf(line, "%*s %c %255s", &type, name) != 2)
            continue;
        if (type != 't' && type != 'T')
            continue;
        if (strcmp(name, "finish_task_switch") == 0) {
            found = 1;
            break;
        }
        if (!clone[0] && strncmp(name, "finish_task_switch.", 19) == 0)
            snprintf(clone, sizeof(clone), "%s", name);
    }
    fclose(f);
    if (found)
        snprintf(out, size, "finish_task_switch");
    else if (clone[0])
        snprintf(out, size, "%s", clone);
    else
        return -1;
    return 0;
}

/* Whether this kernel's sched_switch tracepoint passes prev_state (5.18+):
 * its btf_trace_ typedef's prototype has the hidden context argument and
 * four more. */
static bool s_sched_switch_has_prev_state(void)
{
    struct btf *btf = btf__load_vmlinux_btf();
    bool yes = false;

    if (!btf)
        return false;
    int id = btf__find_by_name_kind(btf, "btf_trace_sched_switch",
                                    BTF_KIND_TYPEDEF);
    const struct btf_type *t = id > 0 ? btf__type_by_id(btf, (uint32_t)id)
                                      : NULL;
    if (t)
        t = btf__type_by_id(btf, t->type);          /* pointer */
    if (t && btf_is_ptr(t))
        t = btf__type_by_id(btf, t->type);          /* prototype */
    yes = t && btf_is_func_proto(t) && btf_vlen(t) >= 5;
    btf__free(btf);
    return yes;
}

/* Points the skeleton's walker maps at the on-CPU program's. 0 or the
 * libbpf error. */
static int s_share_unwind_maps(offcpu_t *self, struct offcpu_bpf *skel)
{
    struct bpf_map *maps[] = { skel->maps.unw_pids, skel->maps.unw_procs,
                               skel->maps.unw_tables, skel->maps.unw_rows,
                               skel->maps.unw_files, skel->maps.unw_vmas,
                               skel->maps.unw_vmas_zero };
    int fds[] = { self->unwind.pids_fd, self->unwind.procs_fd,
                  self->unwind.tables_fd, self->unwind.rows_fd,
                  self->unwind.files_fd, self->unwind.vmas_fd,
                  self->unwind.vzero_fd };
    int rc = 0;

    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        if (self->unwind_on && fds[i] >= 0)
            rc = bpf_map__reuse_fd(maps[i], fds[i]);
        else
            rc = bpf_map__set_max_entries(maps[i],
                                          maps[i] == skel->maps.unw_vmas ? 8
                                                                         : 1);
        if (rc != 0)
            break;
    }
    return rc;
}

void offcpu_set_unwinder(offcpu_t *self, const unwinder_maps_t *maps,
                         uint32_t max_frames)
{
    self->unwind_on = maps != NULL;
    if (maps)
        self->unwind = *maps;
    self->unwind_max_frames = max_frames ? max_frames : SKY_MAX_FRAMES;
}

static int s_try_flavour(offcpu_t *self, int flavour, loaded_t *out,
                         char *why, size_t wlen)
{
    struct offcpu_bpf *skel = offcpu_bpf__open();
    struct bpf_link *link = NULL;
    uint32_t pid_max = pidset_pid_max();
    char sym[256];
    int rc;

    if (!skel) {
        snprintf(why, wlen, "open: %s", strerror(errno));
        return -1;
    }
    skel->rodata->count_preempted = self->opts.count_preempted ? 1 : 0;
    skel->rodata->sample_every = self->opts.sample_every;
    skel->rodata->long_ns = self->opts.long_ns;
    skel->rodata->prev_state_arg = flavour == OFFCPU_TP_BTF &&
                                   s_sched_switch_has_prev_state();
    /* The walker's maps are the on-CPU program's (filled by the
     * collector's unwinder); without them its code is pruned and the
     * walked-stack maps shrink to one entry. */
    skel->rodata->unw_enabled = self->unwind_on ? 1 : 0;
    skel->rodata->unw_vmas_on = self->unwind_on && self->unwind.vmas_on;
    skel->rodata->unw_max_frames = self->unwind_max_frames;
    skel->rodata->wstack_base = self->nbits;
    rc = s_share_unwind_maps(self, skel);
    if (rc == 0)
        rc = pidset_size_bitmap(skel->maps.off_pid_bits);
    /* A mode byte per tid below pid_max (else the map's default). */
    if (rc == 0 && pid_max > 0)
        rc = bpf_map__set_max_entries(skel->maps.off_mode, (pid_max + 7) / 8);
    if (rc == 0)
        rc = bpf_map__set_max_entries(skel->maps.off_start,
                                      self->opts.start_entries);
    if (rc == 0)
        rc = bpf_map__set_max_entries(skel->maps.off_wstacks0,
                                      self->unwind_on
                                          ? self->opts.stack_entries + 1 : 1);
    if (rc == 0)
        rc = bpf_map__set_max_entries(skel->maps.off_wstacks1,
                                      self->unwind_on
                                          ? self->opts.stack_entries + 1 : 1);
    if (rc == 0)
        rc = bpf_map__set_max_entries(skel->maps.off_agg,
                                      self->opts.agg_entries);
    if (rc == 0)
        rc = bpf_map__set_max_entries(skel->maps.off_stacks0,
                                      self->opts.stack_entries + 1);
    if (rc == 0)
        rc = bpf_map__set_max_entries(skel->maps.off_stacks1,
                                      self->opts.stack_entries + 1);
    if (rc == 0) {
        bpf_program__set_autoload(skel->progs.sky_off_switch,
                                  flavour == OFFCPU_TP_BTF);
        bpf_program__set_autoload(skel->progs.sky_off_finish,
                                  flavour == OFFCPU_KPROBE);
        rc = offcpu_bpf__load(skel);
    }
    if (rc != 0) {
        snprintf(why, wlen, "load: %s", strerror(rc < 0 ? -rc : rc));
        goto fail;
    }
    if (flavour == OFFCPU_TP_BTF) {
        link = bpf_program__attach(skel->progs.sky_off_switch);
    } else {
        if (s_find_finish_task_switch(sym, sizeof(sym)) < 0) {
            snprintf(why, wlen, "no finish_task_switch in /proc/kallsyms");
            goto fail;
        }
        link = bpf_program__attach_kprobe(skel->progs.sky_off_finish, false,
                                          sym);
    }
    if (!link) {
        snprintf(why, wlen, "attach: %s", strerror(errno));
        goto fail;
    }
    /* The kernel's text does not move: read kallsyms at the first attach
     * only. */
    if (!self->sched_looked_up &&
        kallsyms_range("__schedule", &self->sched_start,
                       &self->sched_end) < 0)
        self->sched_start = self->sched_end = 0;
    self->sched_looked_up = true;
    *out = (loaded_t){ skel, link, flavour };
    return 0;
fail:
    offcpu_bpf__destroy(skel);
    return -1;
}

/* Loads and attaches the programs into out (the loop's state untouched:
 * it may run on the loader thread). 0 or -1, logged. */
static int s_load(offcpu_t *self, loaded_t *out)
{
    static const int order[] = { OFFCPU_TP_BTF, OFFCPU_KPROBE };
    char why[2][256] = { "not tried", "not tried" };

    for (int i = 0; i < 2; i++) {
        if (self->opts.flavour != OFFCPU_AUTO &&
            self->opts.flavour != order[i])
            continue;
        if (s_try_flavour(self, order[i], out, why[i], sizeof(why[i])) == 0) {
            log_info("off-CPU probe attached (%s)",
                     offcpu_flavour_name(order[i]));
            return 0;
        }
        log_debug("off-CPU probe as %s: %s", offcpu_flavour_name(order[i]),
                  why[i]);
    }
    log_warn("cannot attach the off-CPU probe: tp_btf: %s; kprobe: %s",
             why[0], why[1]);
    return -1;
}

/* The loop takes what a load produced. */
static void s_adopt(offcpu_t *self, const loaded_t *l)
{
    pidset_bind(self->pids, bpf_map__fd(l->skel->maps.off_pid_bits),
                bpf_map__max_entries(l->skel->maps.off_pid_bits),
                bpf_map__fd(l->skel->maps.off_pids));
    self->skel = l->skel;
    self->link = l->link;
    self->flavour = l->flavour;
    self->gen = 0;
    self->flip_ns = now_mono_ns();
    self->attaches++;
}

static void *s_loader(void *arg)
{
    offcpu_t *self = arg;

    self->staged_rc = s_load(self, &self->staged);
    atomic_store(&self->load_done, 1);
    return NULL;
}

/* Remembers the set asked for while a load runs. 0 or -1 (no memory). */
static int s_want(offcpu_t *self, const uint32_t *pids, size_t n)
{
    uint32_t *copy = NULL;

    if (n && !(copy = malloc(n * sizeof(*copy))))
        return -1;
    if (n)
        memcpy(copy, pids, n * sizeof(*copy));
    free(self->want);
    self->want = copy;
    self->nwant = n;
    return 0;
}

/* A background load that is done (or any, with wait) is joined and its
 * programs adopted; the set asked for meanwhile is then applied (an empty
 * one unloads them again). */
static void s_finish_load(offcpu_t *self, bool wait)
{
    uint32_t *want;
    size_t n;

    if (!self->loading || (!wait && !atomic_load(&self->load_done)))
        return;
    pthread_join(self->loader, NULL);
    self->loading = false;
    if (self->staged_rc != 0)
        return;
    s_adopt(self, &self->staged);
    if (wait)
        return;                /* destroy: the caller unloads */
    want = self->want;
    n = self->nwant;
    self->want = NULL;
    self->nwant = 0;
    offcpu_set_pids(self, want, n);
    free(want);
}

/* Starts loading the programs on the loader thread for the set pids. 0,
 * or -1 (logged). */
static int s_start_load(offcpu_t *self, const uint32_t *pids, size_t n)
{
    int rc;

    if (s_want(self, pids, n) < 0)
        return -1;
    atomic_store(&self->load_done, 0);
    rc = pthread_create(&self->loader, NULL, s_loader, self);
    if (rc != 0) {
        log_warn("cannot start the off-CPU probe's loader: %s", strerror(rc));
        return -1;
    }
    self->loading = true;
    return 0;
}

bool offcpu_attached(const offcpu_t *self)
{
    return self->skel != NULL;
}

int offcpu_flavour(const offcpu_t *self)
{
    return self->flavour;
}

/* ------------------------------------------------------------- drain */

/* The frames of a stack id, read once per drain. NULL when the id names
 * no stack (a failed capture, or an entry that is gone). */
static const stack_copy_t *s_stack(offcpu_t *self, uint32_t gen, int32_t id)
{
    stack_copy_t **slot, *copy;
    int fd;

    if (id < 0)
        return NULL;
    if ((uint32_t)id >= self->nids) {
        self->stacks_missing++;
        return NULL;
    }
    slot = &self->cache[gen][id];
    if (*slot)
        return *slot;
    copy = malloc(sizeof(*copy));
    if (!copy)
        return NULL;
    if ((uint32_t)id >= self->nbits) {
        /* A user stack the walker stored. */
        struct sky_unw_frames walk;
        fd = bpf_map__fd(gen ? self->skel->maps.off_wstacks1
                             : self->skel->maps.off_wstacks0);
        if (bpf_map_lookup_elem(fd, &id, &walk) != 0) {
            self->stacks_missing++;
            free(copy);
            return NULL;
        }
        copy->n = walk.w.n < SKY_MAX_FRAMES ? walk.w.n : SKY_MAX_FRAMES;
        memcpy(copy->frames, walk.pc, copy->n * sizeof(uint64_t));
    } else {
        fd = bpf_map__fd(gen ? self->skel->maps.off_stacks1
                             : self->skel->maps.off_stacks0);
        if (bpf_map_lookup_elem(fd, &id, copy->frames) != 0) {
            self->stacks_missing++;
            free(copy);
            return NULL;
        }
        /* The kernel zero-fills past the end of the trace. */
        copy->n = 0;
        while (copy->n < SKY_MAX_FRAMES && copy->frames[copy->n])
            copy->n++;
    }
    *slot = copy;
    self->touched[self->ntouched++] = gen << 31 | (uint32_t)id;
    s_bit_set(self->pending[gen], (uint32_t)id);
    return copy;
}

static void s_emit(offcpu_t *self, const struct sky_off_key *k,
                   const struct sky_off_val *v)
{
    char comm[17];
    uint32_t gen = k->gen & 1;
    const stack_copy_t *ks = s_stack(self, gen, k->kstack);
    const stack_copy_t *us = s_stack(self, gen, k->ustack);

    if (v->count == 0)
        return;
    memcpy(comm, v->comm, 16);
    comm[16] = '\0';
    /* Start the kernel stack at __schedule: the frames above it are the
     * probe's own (bpf_trace_run4 and the program, or finish_task_switch)
     * and differ between flavours. */
    uint32_t skip = 0;
    for (uint32_t i = 0; ks && i < ks->n && i < 8; i++)
        if (ks->frames[i] >= self->sched_start &&
            ks->frames[i] < self->sched_end) {
            skip = i;
            break;
        }
    offcpu_sample_t s = {
        .pid = k->tgid,
        .tid = k->tid,
        .cpu = v->cpu,
        .count = v->count,
        .total_ns = v->total_ns,
        .first_ns = v->first_ns,
        .comm = comm,
        .nk = ks ? ks->n - skip : 0,
        .nu = us ? us->n : 0,
        .kframes = ks ? ks->frames + skip : NULL,
        .uaddrs = us ? us->frames : NULL,
    };
    self->samples++;
    if (self->on_sample)
        self->on_sample(self->arg, &s);
}

/* Batch iteration over a hash map, deleting what it returns or not.
 * Falls back to one key at a time where batch operations are missing.
 * fn gets each chunk. Returns 0, or -1 on an unexpected error. */
typedef void (*s_chunk_fn)(offcpu_t *self, const void *keys,
                           const void *vals, uint32_t n);

static int s_walk(offcpu_t *self, int fd, bool delete, void *keys, void *vals,
                  size_t key_size, size_t val_size, s_chunk_fn fn)
{
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    uint64_t token[8];          /* a bucket index for hash maps */
    void *in = NULL;
    int rc;

    for (;;) {
        uint32_t n = OFFCPU_BATCH;
        rc = delete ? bpf_map_lookup_and_delete_batch(fd, in, token, keys,
                                                      vals, &n, &opts)
                    : bpf_map_lookup_batch(fd, in, token, keys, vals, &n,
                                           &opts);
        int e = rc ? errno : 0;
        if (n > OFFCPU_BATCH)
            n = 0;
        if (n)
            fn(self, keys, vals, n);
        if (rc == 0) {
            in = token;
            continue;
        }
        if (e == ENOENT)
            return 0;
        /* 524 is the kernel's ENOTSUPP, which user space has no name for */
        if (e != EINVAL && e != EOPNOTSUPP && e != 524)
            break;
        /* No batch operations: walk the keys. Deleting the key we stand on
         * restarts the walk from the first key, which is what we want. */
        char *key = keys, *val = vals;
        char prev[64];
        bool have_prev = false;
        while (bpf_map_get_next_key(fd, have_prev ? prev : NULL, key) == 0) {
            if (bpf_map_lookup_elem(fd, key, val) == 0) {
                if (delete)
                    bpf_map_delete_elem(fd, key);
                fn(self, key, val, 1);
            }
            if (!delete) {
                memcpy(prev, key, key_size);
                have_prev = true;
            }
        }
        return 0;
    }
    log_warn_rl(&self->rl, "off-CPU map walk failed: %s", strerror(errno));
    return -1;
}

static void s_agg_chunk(offcpu_t *self, const void *keys, const void *vals,
                        uint32_t n)
{
    const struct sky_off_key *k = keys;
    const struct sky_off_val *v = vals;

    for (uint32_t i = 0; i < n; i++)
        s_emit(self, &k[i], &v[i]);
}

static void s_start_chunk(offcpu_t *self, const void *keys, const void *vals,
                          uint32_t n)
{
    const struct sky_off_start *st = vals;

    for (uint32_t i = 0; i < n; i++) {
        if ((st[i].gen & 1) != self->refs_gen)
            continue;
        if (st[i].kstack >= 0 && (uint32_t)st[i].kstack < self->nids)
            s_bit_set(self->refs, (uint32_t)st[i].kstack);
        if (st[i].ustack >= 0 && (uint32_t)st[i].ustack < self->nids)
            s_bit_set(self->refs, (uint32_t)st[i].ustack);
    }
}

/* Deletes the consumed stacks of generation gen no sleeping thread holds
 * (refs), and forgets them. */
static void s_retire(offcpu_t *self, uint32_t gen)
{
    int fd = bpf_map__fd(gen ? self->skel->maps.off_stacks1
                             : self->skel->maps.off_stacks0);
    int wfd = bpf_map__fd(gen ? self->skel->maps.off_wstacks1
                              : self->skel->maps.off_wstacks0);
    size_t words = (self->nids + 63) / 64;

    for (size_t w = 0; w < words; w++) {
        uint64_t bits = self->pending[gen][w] & ~self->refs[w];
        while (bits) {
            uint32_t id = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(bits));
            bits &= bits - 1;
            if (bpf_map_delete_elem(id < self->nbits ? fd : wfd, &id) == 0)
                self->stacks_deleted++;
        }
        self->pending[gen][w] &= self->refs[w];
    }
}

int offcpu_drain(offcpu_t *self)
{
    uint64_t before = self->samples;
    uint32_t idle = self->gen ^ 1;
    bool retire;

    s_finish_load(self, false);
    if (!self->skel)
        return 0;
    /* 1. Which stacks of the idle generation sleeping threads still hold.
     * No switch-out writes that generation any more, and a thread leaves
     * off_start only after its period is in off_agg, so whatever step 2
     * does not see is listed here. */
    retire = now_mono_ns() - self->flip_ns >= OFFCPU_FLIP_GRACE_NS;
    if (retire) {
        memset(self->refs, 0, (self->nids + 63) / 64 * sizeof(uint64_t));
        self->refs_gen = idle;
        if (s_walk(self, bpf_map__fd(self->skel->maps.off_start), false,
                   self->start_keys, self->start_vals,
                   sizeof(*self->start_keys), sizeof(*self->start_vals),
                   s_start_chunk) < 0)
            retire = false;
    }
    /* 2. Every aggregate, out of the kernel. */
    s_walk(self, bpf_map__fd(self->skel->maps.off_agg), true, self->keys,
           self->vals, sizeof(*self->keys), sizeof(*self->vals), s_agg_chunk);
    s_clear_cache(self);
    /* 3. Retire the idle generation's consumed stacks, then make it the
     * current one: the other one starts its grace period. */
    if (retire) {
        s_retire(self, idle);
        self->gen = idle;
        self->skel->bss->off_gen = idle;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        self->flip_ns = now_mono_ns();
    }
    return (int)(self->samples - before);
}

/* -------------------------------------------------------------- pids */

/* Threads of processes no longer targeted leave the start map: the probe
 * does not look at them any more. */
static void s_forget_threads(offcpu_t *self)
{
    int fd = bpf_map__fd(self->skel->maps.off_start);
    uint32_t key, next;
    struct sky_off_start st;
    bool have_key = false;

    while (bpf_map_get_next_key(fd, have_key ? &key : NULL, &next) == 0) {
        if (bpf_map_lookup_elem(fd, &next, &st) == 0 &&
            !pidset_has(self->pids, st.tgid) &&
            bpf_map_delete_elem(fd, &next) == 0) {
            /* the walk restarts from the first key */
            have_key = false;
            continue;
        }
        key = next;
        have_key = true;
    }
}

/* pidset_update's removed callback: some process left the set. */
static void s_note_removed(void *arg, uint32_t pid)
{
    *(bool *)arg = true;
}

int offcpu_set_pids(offcpu_t *self, const uint32_t *pids, size_t n)
{
    bool removed = false;
    loaded_t l;
    int rc = 0;

    s_finish_load(self, false);
    if (self->loading) {
        rc = s_want(self, pids, n);
        goto cleanup;
    }
    if (n == 0) {
        if (!self->skel)
            goto cleanup;
        /* Detach first: then nothing adds to the maps while the last
         * drain empties them. */
        bpf_link__destroy(self->link);
        self->link = NULL;
        offcpu_drain(self);
        s_unload(self);
        log_info("off-CPU probe detached: no off-CPU task is active");
        goto cleanup;
    }
    if (!self->skel && self->opts.background_load) {
        rc = s_start_load(self, pids, n);
        goto cleanup;
    }
    if (!self->skel) {
        if (s_load(self, &l) < 0) {
            rc = -1;
            goto cleanup;
        }
        s_adopt(self, &l);
    }
    if (pidset_update(self->pids, pids, n, NULL, s_note_removed,
                      &removed) != 0) {
        log_warn("off-CPU pid filter not fully updated: %s", strerror(errno));
        rc = -1;
    }
    if (removed)
        s_forget_threads(self);
cleanup:
    return rc;
}

/* ------------------------------------------------------------- stats */

void offcpu_stats(const offcpu_t *self, offcpu_stats_t *out)
{
    uint64_t c[SKY_OFF_CNT_MAX];

    for (uint32_t i = 0; i < SKY_OFF_CNT_MAX; i++)
        c[i] = self->base[i] + s_kernel_counter(self, i);
    *out = (offcpu_stats_t){
        .switches = c[SKY_OFF_CNT_SWITCHES],
        .dropped_start = c[SKY_OFF_CNT_START_FULL],
        .dropped_agg = c[SKY_OFF_CNT_AGG_FULL],
        .kstacks_lost = c[SKY_OFF_CNT_KSTACK_LOST],
        .ustacks_lost = c[SKY_OFF_CNT_USTACK_LOST],
        .preempted = c[SKY_OFF_CNT_PREEMPTED],
        .unsampled = c[SKY_OFF_CNT_UNSAMPLED],
        .stacks_missing = self->stacks_missing,
        .stacks_deleted = self->stacks_deleted,
        .samples = self->samples,
        .attaches = self->attaches,
        .npids = (uint32_t)pidset_count(self->pids),
    };
}

size_t offcpu_stack_entries(const offcpu_t *self)
{
    size_t count = 0;

    if (!self->skel)
        return 0;
    int fds[4] = { bpf_map__fd(self->skel->maps.off_stacks0),
                   bpf_map__fd(self->skel->maps.off_stacks1),
                   bpf_map__fd(self->skel->maps.off_wstacks0),
                   bpf_map__fd(self->skel->maps.off_wstacks1) };
    for (int i = 0; i < 4; i++) {
        uint32_t key, next;
        bool first = true;
        while (bpf_map_get_next_key(fds[i], first ? NULL : &key, &next) == 0) {
            count++;
            key = next;
            first = false;
        }
    }
    return count;
}
