/* What the aggregator knows about processes from proc.events: names,
 * command lines and exit times, for the process listing and for naming
 * pids a batch did not name. Keyed by (node, pid): pids are unique only
 * within a node, and one aggregator may hear from many ("" = a sender
 * that named no node). Bounded: exited processes are forgotten first,
 * then the least recently seen. Not thread-safe: the caller locks. */
#ifndef SKYPROF_AGG_PROCS_H
#define SKYPROF_AGG_PROCS_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define AGG_PROCS_MAX 65536
#define AGG_PROCS_CMDLINE_MAX 1024    /* longer command lines are cut */

typedef struct {
    uint32_t pid;
    char *node;             /* never NULL once the entry is in use */
    char *name;
    char *cmdline;
    char *exe;
    uint64_t start_ms;
    uint64_t exit_ms;       /* 0 = alive as far as we know */
    uint64_t seen_ms;
} agg_proc_t;

typedef struct agg_procs agg_procs_t;

agg_procs_t *agg_procs_new(size_t max);
void agg_procs_destroy(agg_procs_t **self_p);

/* node NULL is taken as "". */
void agg_procs_event(agg_procs_t *self, const char *node,
                     const wire_proc_event_t *ev, uint64_t now_ms);
/* Records a name seen in a stack batch (no event needed). */
void agg_procs_seen(agg_procs_t *self, const char *node, uint32_t pid,
                    const char *name, uint64_t now_ms);
const agg_proc_t *agg_procs_get(const agg_procs_t *self, const char *node,
                                uint32_t pid);
/* Forgets processes that exited before cutoff_ms. */
void agg_procs_expire(agg_procs_t *self, uint64_t cutoff_ms);
size_t agg_procs_count(const agg_procs_t *self);

#endif
