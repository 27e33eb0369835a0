/* The network room's state (net.c) and the local view's keeping of
 * samples (view.c): shared by those two files only. */
#ifndef SKYPROF_AGG_NET_ROOM_H
#define SKYPROF_AGG_NET_ROOM_H

#include <pthread.h>

#include "aggregator/net/endpoints.h"
#include "aggregator/net/net_int.h"

#define NET_VIEW_SAMPLES 50

/* An active NETWORK task: its processes and sampling rules. */
typedef struct {
    char *id;
    uint32_t *pids;
    uint32_t npids;
    net_rules_t *rules;        /* NULL: no sampling */
} net_task_t;

/* A traced process. */
typedef struct {
    uint32_t pid;
    net_task_t *task;          /* the first naming it with rules, else
                                * the first naming it */
} net_pid_t;

struct net {
    net_options_t o;
    pthread_mutex_t lock;      /* the API thread reads the view */
    net_conns_t *conns;
    net_traffics_t *traffics;
    net_endpoints_t *endpoints;
    hashmap_t *pids;           /* pid -> net_pid_t */
    net_task_t *tasks;
    size_t ntasks;
    /* the report: built in the arena, samples kept until the next one */
    arena_t *arena;
    wire_net_report_t last;
    net_sample_t **sent;
    size_t nsent;
    uint32_t flush_gen;        /* flushes so far (net_ledger_t.gen) */
    /* the latest samples for the view (without bodies), a ring */
    net_sample_t view[NET_VIEW_SAMPLES];
    size_t nview, view_next;
    stats_metric_t *c_batches, *c_rejected, *c_events, *c_untraced, *c_lost,
        *c_evictions, *c_unknown, *c_traffic_full, *c_endpoints_dropped,
        *c_reports, *c_report_failed, *c_rules_refused;
    stats_metric_t *g_conns, *g_memory;
};

/* Keeps a copy of s (without its bodies) for the view. */
void net_view_keep(net_t *self, const net_sample_t *s);
/* net_memory with the lock held. */
size_t net_memory_locked(const net_t *self);

#endif
