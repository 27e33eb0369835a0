/* The network room of the aggregator (issue 14): what the collector
 * captured on the sockets of the processes of NETWORK tasks (net.events.BB,
 * by pid bucket like sym.stacks) becomes connections, protocol exchanges
 * (the protocol table, protocols.c), the reference agent's L4 and HTTP/1.x
 * meters, sampled requests and per-(pid, URI) HTTP figures, published on
 * net.report every profiling.task.network.report_interval. The local HTTP
 * API reads its view (net_view_json).
 *
 * Bounded: connections (LRU, evictions counted), traffics (a process and
 * its peer), endpoints (pid, URI) and samples; every refusal is counted on
 * the stage's /metrics (net_*). Not thread-safe: the stage's loop thread
 * calls everything except net_view_json, which takes the room's lock. */
#ifndef SKYPROF_AGG_NET_H
#define SKYPROF_AGG_NET_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "stats.h"
#include "wire.h"

typedef struct net net_t;

/* Sends a decoded structure (bus_send); 0 or -1. */
typedef int (*net_publish_fn)(void *arg, msg_id_t id, void *body);

typedef struct {
    stats_t *stats;            /* counters net_* (required) */
    size_t max_conns;          /* aggregator.net_max_connections */
    size_t max_endpoints;      /* aggregator.net_max_endpoints */
    net_publish_fn publish;    /* NULL: reports are built, not sent */
    void *publish_arg;
} net_options_t;

/* NULL on a bad option or no memory. */
net_t *net_new(const net_options_t *o);
void net_destroy(net_t **self_p);

/* The desired task set (ctl.tasks): the pids of the active NETWORK tasks
 * are analysed, the others' events are counted and skipped; each task's
 * ExtensionConfigJSON gives its sampling rules (an empty or null one keeps
 * the rules the task had). 0, or -1 when a task's JSON is refused (its
 * previous rules stay; counted). */
int net_on_tasks(net_t *self, const wire_task_set_t *set);

/* One batch of socket events. Validated as a whole first: 0 taken, -1
 * refused (a bad event: counted in net_batches_rejected, nothing used). */
int net_on_batch(net_t *self, const wire_net_batch_t *batch);

/* Ends the interval at now_ms (wall clock): builds net.report from what
 * the interval gathered and publishes it when it holds anything. 0, or -1
 * when it could not be built or sent (counted). */
int net_flush(net_t *self, uint64_t now_ms);

/* The last report built (tests; valid until the next flush). */
const wire_net_report_t *net_last_report(const net_t *self);

/* The local view as a JSON document (malloc'ed, *len its length): the
 * traffic edges (process -> peer: bytes, RTT, request rate), the endpoint
 * table per process (requests, error rate, avg/p50/p99 latency) and the
 * latest sampled requests. pid 0: every process. NULL without memory. */
char *net_view_json(net_t *self, uint32_t pid, size_t *len);

/* Replicas: views of several replicas (net_view_json documents) merged
 * into one: counts summed, rows concatenated in the order given. NULL
 * when a document is not a view (*bad gets its index) or without
 * memory (*bad = -1). */
char *net_view_merge(const char *const *docs, const size_t *lens, size_t n,
                     size_t *len, long *bad);

/* Heap bytes the room holds (also the net_memory_bytes gauge). */
size_t net_memory(const net_t *self);

#endif
