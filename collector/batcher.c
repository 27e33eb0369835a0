/* Per-drain stack batching; see batcher.h. */
#include "collector/batcher.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "hashmap.h"

#define BATCHER_DEFAULT_MEMORY ((size_t)64 << 20)

typedef struct stack_entry {
    wire_raw_sample_t s;          /* tasks filled at flush */
    const char **task_names;      /* interned */
    struct stack_entry *next;     /* in its bucket, insertion order */
} stack_entry_t;

typedef struct {
    wire_object_t obj;
    uint32_t stamp;               /* chunk that last listed it */
} object_entry_t;

typedef struct {
    wire_proc_t proc;
    uint32_t stamp;
} proc_entry_t;

typedef struct {
    const char *name;
    uint32_t stamp;
    uint32_t index;               /* in the current chunk's table */
} task_entry_t;

struct batcher {
    uint32_t max_batch;
    arena_t *arena;
    hashmap_t *stacks;
    hashmap_t *objects;
    hashmap_t *procs;
    hashmap_t *task_names;
    stack_entry_t *head[WIRE_BUCKETS], *tail[WIRE_BUCKETS];
    size_t pending;
    uint32_t stamp;
};

static uint64_t s_stack_hash(const batcher_sample_t *s)
{
    uint64_t h = hash_split64(((uint64_t)s->pid << 32) | s->tid);

    h = hash_split64(h ^ ((uint64_t)s->kind << 56) ^
                      ((uint64_t)s->nk << 16) ^ s->nu);
    h = hash_bytes64(s->kframes, s->nk * sizeof(*s->kframes), h);
    for (uint32_t i = 0; i < s->nu; i++)
        h = hash_split64(h ^ s->uframes[i].offset ^
                          ((uint64_t)s->uframes[i].object << 40));
    for (uint32_t i = 0; i < s->ntasks; i++)
        h = hash_split64(h ^ (uint64_t)(uintptr_t)s->tasks[i]);
    return h;
}

/* Matching a stored entry against an incoming sample whose task names
 * are already interned (pointer equality). */
static int s_stack_match(const void *item, const void *key)
{
    const stack_entry_t *e = item;
    const batcher_sample_t *s = key;

    if (e->s.pid != s->pid || e->s.tid != s->tid || e->s.kind != s->kind ||
        e->s.nk != s->nk || e->s.nu != s->nu || e->s.ntasks != s->ntasks)
        return 0;
    if (s->nk && memcmp(e->s.kframes, s->kframes,
                        s->nk * sizeof(*s->kframes)) != 0)
        return 0;
    for (uint32_t i = 0; i < s->nu; i++)
        if (e->s.uframes[i].object != s->uframes[i].object ||
            e->s.uframes[i].offset != s->uframes[i].offset)
            return 0;
    for (uint32_t i = 0; i < s->ntasks; i++)
        if (e->task_names[i] != s->tasks[i])
            return 0;
    return 1;
}

static int s_object_match(const void *item, const void *key)
{
    return ((const object_entry_t *)item)->obj.id == *(const uint32_t *)key;
}

static int s_proc_match(const void *item, const void *key)
{
    return ((const proc_entry_t *)item)->proc.pid == *(const uint32_t *)key;
}

static int s_task_match(const void *item, const void *key)
{
    return strcmp(((const task_entry_t *)item)->name,
                  (const char *)key) == 0;
}

batcher_t *batcher_new(uint32_t max_batch_samples, size_t memory_limit)
{
    batcher_t *self = calloc(1, sizeof(*self));

    if (!self)
        return NULL;
    self->max_batch = max_batch_samples ? max_batch_samples : 4096;
    if (self->max_batch > WIRE_MAX_SAMPLES)
        self->max_batch = WIRE_MAX_SAMPLES;
    self->arena = arena_new(memory_limit ? memory_limit
                                         : BATCHER_DEFAULT_MEMORY);
    self->stacks = hashmap_new(s_stack_match);
    self->objects = hashmap_new(s_object_match);
    self->procs = hashmap_new(s_proc_match);
    self->task_names = hashmap_new(s_task_match);
    if (!self->arena || !self->stacks || !self->objects || !self->procs ||
        !self->task_names)
        batcher_destroy(&self);
    return self;
}

void batcher_destroy(batcher_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    batcher_t *self = *self_p;
    arena_destroy(&self->arena);
    hashmap_destroy(&self->stacks);
    hashmap_destroy(&self->objects);
    hashmap_destroy(&self->procs);
    hashmap_destroy(&self->task_names);
    free(self);
    *self_p = NULL;
}

int batcher_note_object(batcher_t *self, const object_t *obj)
{
    uint64_t h = hash_split64(obj->id);
    object_entry_t *e = hashmap_find(self->objects, h, &obj->id);

    if (e) {
        /* Its process (whose root the symbolizer opens it through,
         * objreg.h) changed since it entered this batch: that one was gone
         * when another mapped the file. Name the live one, or a process
         * just started in a container is symbolized through the root of
         * one that exited, where nothing is found. */
        if (e->obj.pid != obj->pid) {
            const char *path = arena_strndup(self->arena, obj->path,
                                   strnlen(obj->path, WIRE_MAX_STR - 1));
            if (!path)
                return -1;
            e->obj.pid = obj->pid;
            e->obj.path = path;
        }
        return 0;
    }
    e = arena_calloc(self->arena, 1, sizeof(*e));
    if (!e)
        return -1;
    e->obj.id = obj->id;
    e->obj.type = obj->type;
    e->obj.build_id_len = obj->build_id_len;
    memcpy(e->obj.build_id, obj->build_id, obj->build_id_len);
    e->obj.dev = obj->dev;
    e->obj.ino = obj->ino;
    e->obj.pid = obj->pid;
    e->obj.path = arena_strndup(self->arena, obj->path,
                                strnlen(obj->path, WIRE_MAX_STR - 1));
    if (!e->obj.path || hashmap_insert(self->objects, h, e) < 0)
        return -1;
    return 0;
}

int batcher_note_proc(batcher_t *self, const proc_t *proc)
{
    uint64_t h = hash_split64(proc->pid);

    if (hashmap_find(self->procs, h, &proc->pid))
        return 0;
    proc_entry_t *e = arena_calloc(self->arena, 1, sizeof(*e));
    if (!e)
        return -1;
    e->proc.pid = proc->pid;
    e->proc.nspid = proc->nspid;
    e->proc.name = arena_strndup(self->arena, proc->comm,
                                 strnlen(proc->comm, sizeof(proc->comm)));
    e->proc.container_id = arena_strdup(self->arena, proc->container_id);
    if (!e->proc.name || !e->proc.container_id ||
        hashmap_insert(self->procs, h, e) < 0)
        return -1;
    return 0;
}

static const char *s_intern_task(batcher_t *self, const char *name)
{
    uint64_t h = hash_bytes64(name, strlen(name), 7);
    task_entry_t *e = hashmap_find(self->task_names, h, name);

    if (e)
        return e->name;
    e = arena_calloc(self->arena, 1, sizeof(*e));
    if (!e)
        return NULL;
    e->name = arena_strndup(self->arena, name,
                            strnlen(name, WIRE_MAX_STR - 1));
    if (!e->name || hashmap_insert(self->task_names, h, e) < 0)
        return NULL;
    return e->name;
}

int batcher_add(batcher_t *self, const batcher_sample_t *in)
{
    const char *names[WIRE_MAX_TASKS];
    batcher_sample_t s = *in;

    if (s.nk > WIRE_MAX_FRAMES)
        s.nk = WIRE_MAX_FRAMES;
    if (s.nu > WIRE_MAX_FRAMES)
        s.nu = WIRE_MAX_FRAMES;
    if (s.ntasks > WIRE_MAX_TASKS)
        s.ntasks = WIRE_MAX_TASKS;
    for (uint32_t i = 0; i < s.ntasks; i++) {
        names[i] = s_intern_task(self, s.tasks[i]);
        if (!names[i])
            return -1;
    }
    s.tasks = names;
    uint64_t h = s_stack_hash(&s);
    stack_entry_t *e = hashmap_find(self->stacks, h, &s);
    if (e) {
        e->s.count += s.count;
        e->s.weight_ns += s.weight_ns;
        return 0;
    }
    e = arena_calloc(self->arena, 1, sizeof(*e));
    if (!e)
        return -1;
    e->s.pid = s.pid;
    e->s.tid = s.tid;
    e->s.cpu = s.cpu;
    e->s.kind = s.kind;
    e->s.ts_ns = s.ts_ns;
    e->s.count = s.count;
    e->s.weight_ns = s.weight_ns;
    if (s.comm)
        memcpy(e->s.comm, s.comm, strnlen(s.comm, WIRE_COMM_LEN - 1));
    e->s.nk = s.nk;
    e->s.nu = s.nu;
    e->s.ntasks = s.ntasks;
    uint64_t *kf = NULL;
    wire_uframe_t *uf = NULL;
    if (s.nk) {
        kf = arena_alloc(self->arena, s.nk * sizeof(*kf));
        if (!kf)
            return -1;
        memcpy(kf, s.kframes, s.nk * sizeof(*kf));
    }
    if (s.nu) {
        uf = arena_alloc(self->arena, s.nu * sizeof(*uf));
        if (!uf)
            return -1;
        memcpy(uf, s.uframes, s.nu * sizeof(*uf));
    }
    if (s.ntasks) {
        e->task_names = arena_alloc(self->arena,
                                    s.ntasks * sizeof(*e->task_names));
        if (!e->task_names)
            return -1;
        memcpy(e->task_names, names, s.ntasks * sizeof(*names));
    }
    e->s.kframes = kf;
    e->s.uframes = uf;
    if (hashmap_insert(self->stacks, h, e) < 0)
        return -1;
    uint32_t b = wire_pid_bucket(s.pid) % WIRE_BUCKETS;
    if (self->tail[b])
        self->tail[b]->next = e;
    else
        self->head[b] = e;
    self->tail[b] = e;
    self->pending++;
    return 0;
}

size_t batcher_pending(const batcher_t *self)
{
    return self->pending;
}

/* Builds and emits one batch from up to max_batch entries starting at
 * *cursor; advances *cursor. Tables are gathered with per-chunk stamps so
 * each object, process and task id is listed once. */
static int s_emit_chunk(batcher_t *self, stack_entry_t **cursor,
                        const char *topic, batcher_emit_fn emit, void *arg,
                        batcher_flush_stats_t *stats)
{
    uint32_t n = 0, nobj = 0, nproc = 0, ntask = 0;
    wire_raw_sample_t *samples = NULL;
    wire_object_t *objs = NULL;
    wire_proc_t *procs = NULL;
    const char **task_ids = NULL;
    uint32_t *task_idx = NULL;
    size_t total_tasks = 0, total_uframes = 0;
    int rc = -1;

    stack_entry_t *e = *cursor;
    for (; e && n < self->max_batch; e = e->next, n++) {
        total_tasks += e->s.ntasks;
        total_uframes += e->s.nu;
    }
    stack_entry_t *end = e;
    self->stamp++;
    samples = calloc(n, sizeof(*samples));
    objs = calloc(total_uframes ? total_uframes : 1, sizeof(*objs));
    procs = calloc(n, sizeof(*procs));
    task_ids = calloc(total_tasks ? total_tasks : 1, sizeof(*task_ids));
    task_idx = calloc(total_tasks ? total_tasks : 1, sizeof(*task_idx));
    if (!samples || !objs || !procs || !task_ids || !task_idx)
        goto cleanup;
    uint32_t i = 0;
    size_t tpos = 0;
    for (e = *cursor; e != end; e = e->next, i++) {
        samples[i] = e->s;
        for (uint32_t f = 0; f < e->s.nu; f++) {
            uint32_t id = e->s.uframes[f].object;
            if (id == WIRE_NO_OBJECT)
                continue;
            object_entry_t *oe = hashmap_find(self->objects, hash_split64(id),
                                           &id);
            if (!oe || oe->stamp == self->stamp)
                continue;
            oe->stamp = self->stamp;
            objs[nobj++] = oe->obj;
        }
        proc_entry_t *pe = hashmap_find(self->procs, hash_split64(e->s.pid),
                                     &e->s.pid);
        if (pe && pe->stamp != self->stamp) {
            pe->stamp = self->stamp;
            procs[nproc++] = pe->proc;
        }
        samples[i].tasks = &task_idx[tpos];
        for (uint32_t t = 0; t < e->s.ntasks; t++) {
            const char *name = e->task_names[t];
            task_entry_t *te = hashmap_find(self->task_names,
                                         hash_bytes64(name, strlen(name),
                                                         7),
                                         name);
            if (te->stamp != self->stamp) {
                te->stamp = self->stamp;
                te->index = ntask;
                task_ids[ntask++] = te->name;
            }
            task_idx[tpos++] = te->index;
        }
    }
    wire_raw_batch_t batch = {
        .nobjects = nobj, .objects = objs,
        .nprocs = nproc, .procs = procs,
        .ntask_ids = ntask, .task_ids = task_ids,
        .nsamples = n, .samples = samples,
    };
    uint64_t on_cpu = 0;
    for (uint32_t k = 0; k < n; k++)
        if (samples[k].kind == WIRE_KIND_ON_CPU)
            on_cpu += samples[k].count;
    if (emit(arg, topic, &batch) == 0) {
        stats->batches++;
        stats->stacks += n;
        stats->on_cpu += on_cpu;
    } else {
        stats->emit_errors++;
        stats->on_cpu_unpublished += on_cpu;
    }
    rc = 0;
cleanup:
    *cursor = end;
    free(samples);
    free(objs);
    free(procs);
    free(task_ids);
    free(task_idx);
    return rc;
}

void batcher_flush(batcher_t *self, batcher_emit_fn emit, void *arg,
                   batcher_flush_stats_t *stats)
{
    for (uint32_t b = 0; b < WIRE_BUCKETS; b++) {
        stack_entry_t *cursor = self->head[b];
        if (!cursor)
            continue;
        char topic[32];
        wire_sharded_topic(topic, sizeof(topic), TOPIC_RAW_STACKS,
                           cursor->s.pid);
        while (cursor)
            if (s_emit_chunk(self, &cursor, topic, emit, arg, stats) < 0)
                stats->emit_errors++;
    }
    memset(self->head, 0, sizeof(self->head));
    memset(self->tail, 0, sizeof(self->tail));
    hashmap_clear(self->stacks);
    hashmap_clear(self->objects);
    hashmap_clear(self->procs);
    hashmap_clear(self->task_names);
    arena_reset(self->arena);
    self->pending = 0;
}
