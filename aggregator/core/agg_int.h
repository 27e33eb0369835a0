/* Internals of the aggregator core shared by agg.c, query.c, publish.c and
 * intake.c. Nothing outside those files includes this. */
#ifndef SKYPROF_AGG_INT_H
#define SKYPROF_AGG_INT_H

#include <pthread.h>

#include "aggregator/core/agg.h"
#include "aggregator/core/dedup.h"
#include "aggregator/core/pods.h"
#include "aggregator/core/procs.h"
#include "aggregator/core/stagestats.h"
#include "aggregator/core/store.h"
#include "aggregator/core/tasks.h"
#include "aggregator/core/window.h"
#include "log.h"

#define AGG_QUEUE_MAX 64

typedef struct {
    char task_id[64];
    uint32_t pids[AGG_REQUEST_MAX_PIDS];
    uint32_t npids;
    uint8_t target;
    uint64_t duration_ms, start_ms, update_ms;
    char *extension_json;          /* malloc'ed, NULL: none */
} agg_request_t;

struct agg {
    agg_options_t o;
    char *store_path;

    /* lock guards: hist, procs, tasks, stagestats, queue, window refcounts.
     * The loop thread reads them without the lock (it is their only
     * writer) and takes it to write. */
    pthread_mutex_t lock;
    agg_window_t *current;          /* loop thread only */
    agg_window_t **hist;            /* closed windows, oldest first */
    size_t nhist, hist_cap;
    size_t hist_nodes;
    agg_store_t *store;             /* loop thread only */
    agg_procs_t *procs;
    agg_pods_t *pods;               /* loop thread only */
    agg_tasks_t *tasks;
    agg_stagestats_t *stagestats;
    agg_request_t queue[AGG_QUEUE_MAX];
    size_t nqueue;
    int wake_fd;

    arena_t *arena;                 /* decode arena, loop thread */
    log_ratelimit_t rl;

    stats_metric_t *m_batches, *m_samples, *m_windows, *m_nodes,
        *m_store_errors, *m_published, *m_invalid, *m_rejected,
        *m_truncated, *m_dropped_stacks, *m_evicted, *m_requests,
        *m_duplicates;
    origin_dedup_t *dedup;          /* loop thread */
    agg_handover_t *handover;       /* replicas only; not owned */
};

/* publish.c: agg.profile for a closed window. Returns profiles sent. */
long agg_publish_window(agg_t *self, const agg_window_t *w);

#endif
