/* Per-drain batching of raw stacks: identical stacks (same pid, tid,
 * kind, frames and tasks) are merged, adding count and weight; at flush
 * the stacks are grouped by pid bucket and handed out as wire_raw_batch_t
 * messages of at most max_batch_samples distinct stacks, each carrying the
 * object, process and task-id tables its samples reference.
 *
 * Everything a drain adds is copied into the batcher (objects and process
 * names too), so a process or object freed before the flush cannot leave
 * a batch pointing at freed memory. */
#ifndef SKYPROF_COLLECTOR_BATCHER_H
#define SKYPROF_COLLECTOR_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "collector/objreg.h"
#include "collector/proctab.h"
#include "wire.h"

typedef struct batcher batcher_t;

typedef struct {
    uint32_t pid, tid, cpu;
    uint8_t kind;                 /* enum wire_sample_kind */
    uint64_t ts_ns;               /* realtime */
    const char *comm;             /* thread name, up to 15 chars used */
    uint32_t nk, nu;
    const uint64_t *kframes;
    const wire_uframe_t *uframes;
    uint32_t ntasks;
    const char *const *tasks;     /* task ids, in a stable order */
    uint64_t count, weight_ns;
} batcher_sample_t;

/* Receives one batch; topic is "raw.stacks.BB". The header is left zero
 * for the receiver to fill. Returns 0, or -1 when it could not publish. */
typedef int (*batcher_emit_fn)(void *arg, const char *topic,
                               wire_raw_batch_t *batch);

typedef struct {
    uint64_t batches;      /* batches handed to emit (0 returned) */
    uint64_t stacks;       /* distinct stacks in them */
    uint64_t on_cpu;       /* on-CPU samples (counts) in them */
    uint64_t on_cpu_unpublished; /* on-CPU samples in batches emit refused */
    uint64_t emit_errors;
} batcher_flush_stats_t;

/* memory_limit bounds what one drain may hold (0: 64 MiB). */
batcher_t *batcher_new(uint32_t max_batch_samples, size_t memory_limit);
void batcher_destroy(batcher_t **self_p);

/* Record the object and the process the next samples refer to (copied
 * once per drain). 0 ok, -1 out of memory. */
int batcher_note_object(batcher_t *self, const object_t *obj);
int batcher_note_proc(batcher_t *self, const proc_t *proc);

/* Adds (or merges) a sample. Frames with an object must have had the
 * object noted. 0 ok, -1 dropped (memory bound reached). */
int batcher_add(batcher_t *self, const batcher_sample_t *s);

size_t batcher_pending(const batcher_t *self);

/* Emits every pending stack and forgets the drain. */
void batcher_flush(batcher_t *self, batcher_emit_fn emit, void *arg,
                   batcher_flush_stats_t *stats);

#endif
