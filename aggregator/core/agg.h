/* The aggregator core, usable without the bus (tests feed it directly):
 * windows of flame trees, bounded history, the store, process and task
 * metadata, other stages' counters, and the queries the HTTP API serves.
 *
 * Threads: ingestion, flush and pump run on the stage's loop thread; the
 * query functions run on the HTTP thread. Closed windows are immutable and
 * reference counted, so a query holds the lock only to pick its windows,
 * not while it merges them.
 *
 * The core room's one public header (aggregator/README.md): it brings the
 * flame tree (flame.h), its lossless blob (flame_blob.h), the output buffer
 * (buf.h) and the bucket hand-over (handover.h) that other rooms and
 * main.c use; the core's other headers are its own. */
#ifndef SKYPROF_AGG_H
#define SKYPROF_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/core/buf.h"
#include "aggregator/core/flame.h"
#include "aggregator/core/flame_blob.h"
#include "aggregator/core/handover.h"
#include "bus.h"
#include "stats.h"
#include "wire.h"

typedef struct agg agg_t;

/* Sends one message of the table (lib/msg_table.h): body is the type's
 * structure, its header filled by the sender (bus_send). 0 or -1. */
typedef int (*agg_publish_fn)(void *arg, msg_id_t id, void *body);

typedef struct {
    uint64_t flush_ms;            /* profiling.flush_interval */
    uint64_t history_ms;          /* aggregator.history */
    size_t max_nodes;             /* aggregator.max_nodes, per tree */
    size_t history_max_nodes;     /* every window in memory; 0 = 8x max */
    const char *store_path;       /* NULL or "" = memory only */
    uint64_t store_retention_ms;
    uint64_t store_max_bytes;     /* 0 = AGG_STORE_MAX_BYTES */
    stats_t *stats;               /* required */
    agg_publish_fn publish;       /* may be NULL: nothing is published */
    void *publish_arg;
} agg_options_t;

#define AGG_STORE_MAX_BYTES (512ull << 20)
#define AGG_DEFAULT_RANGE_S 300   /* queries without start: last 5 min */
/* Stacks per wire_task_profile_t and per agg.profile message. */
#define AGG_PUBLISH_STACKS 4096

agg_t *agg_new(const agg_options_t *opts, uint64_t now_ms);
void agg_destroy(agg_t **self_p);

/* ------------------------------------------------------ loop thread */
/* The bus's handler for what the core receives (sym.stacks.BB,
 * proc.events, k8s.containers, ctl.tasks, stats.*), decoded: 0, or -1
 * when the message is invalid (logged here; the caller counts it, the bus
 * in bus_invalid_total and through agg_count_invalid). */
int agg_on_msg(agg_t *self, const msg_decoded_t *m);
/* Counts a rejected message in the core's invalid_messages. */
void agg_count_invalid(agg_t *self);
/* The same for a payload from elsewhere (tests, replayed batches):
 * decodes it by its topic (lib/msg.h), counts and logs what is malformed.
 * 0, or -1 when dropped. */
int agg_intake(agg_t *self, const char *topic, const void *payload,
               size_t len);

/* Replicas: sym batches go through the bucket hand-over (handover.h)
 * before they are counted. NULL (default) counts everything. */
void agg_set_handover(agg_t *self, agg_handover_t *handover);

int agg_ingest_sym(agg_t *self, const wire_sym_batch_t *batch);
void agg_ingest_proc_events(agg_t *self, const wire_proc_events_t *events);
void agg_ingest_k8s(agg_t *self, const wire_k8s_containers_t *m);
void agg_ingest_tasks(agg_t *self, const wire_task_set_t *set);
void agg_ingest_stats(agg_t *self, const wire_stats_t *stats);

/* Closes the current window at now_ms, publishes its agg.profile,
 * persists it, applies the history bounds and opens the next window. */
int agg_flush(agg_t *self, uint64_t now_ms);

/* Readable (eventfd) when API requests wait to be published; agg_pump
 * publishes them from the calling thread. */
int agg_wake_fd(agg_t *self);
int agg_pump(agg_t *self);

/* ------------------------------------------------------ any thread */
/* Longest namespace / pod / container filter (Kubernetes names are at
 * most 253 bytes). */
#define AGG_MAX_POD_FILTER 253

enum agg_select {
    /* host-wide: Total -> [p] name -> [t] -> frames, with a node layer
     * (Total -> [n] node -> [p] ...) when more than one node is present;
     * a pod's process sits under [ns] namespace -> [pod] -> [c] container
     * between the node and [p] */
    AGG_SEL_TOTAL,
    AGG_SEL_NAME,     /* every pid with this process name */
    AGG_SEL_PID,
    AGG_SEL_TASK,
};

typedef struct {
    int select;
    const char *name;          /* AGG_SEL_NAME */
    const char *task_id;       /* AGG_SEL_TASK */
    uint32_t pid;              /* AGG_SEL_PID, or a filter when has_pid */
    int has_pid;
    /* Only processes of this node (pids are per node); NULL = any. The
     * core merges a pid found on several nodes; the HTTP API refuses
     * such a pid without node= (docs/api.md). */
    const char *node;
    /* Only processes of this namespace / pod / container (Kubernetes
     * discovery); NULL = any. */
    const char *ns, *pod, *container;   /* each <= AGG_MAX_POD_FILTER */
    /* AGG_SEL_TOTAL: keep the node layer even with one node (replicas
     * exchange this form; the layer is dropped after merging). */
    int keep_nodes;
    int kind;                  /* WIRE_KIND_ON_CPU / OFF_CPU */
    uint64_t start_ms, end_ms; /* windows overlapping [start, end] */
    int threads;               /* keep the [t] layer in process views */
} agg_query_t;

/* A new tree merged over the matching windows (root only when nothing
 * matched); NULL on allocation failure. *nwindows gets windows merged. */
flame_t *agg_query(agg_t *self, const agg_query_t *q, size_t *nwindows);

/* Takes a Total tree with its node layer and drops that layer when it
 * holds at most one node (so one node looks as if there were no layer).
 * Returns the tree to use (tree itself, or a new one after destroying
 * tree); NULL on allocation failure (tree destroyed). */
flame_t *agg_collapse_nodes(flame_t *tree, size_t max_nodes);

/* Display name of a node in the node layer ("" = a sender without one). */
#define AGG_NO_NODE_LABEL "[unknown node]"

/* Per-process totals over a range (/api/processes), one row per
 * (pid, node) sorted by pid then node; rows from several replicas merge
 * (agg_prows_merge). */
typedef struct {
    uint32_t pid;
    char *node;                    /* "" = unknown; owned by the set */
    char *name, *cmdline;          /* owned by the set */
    /* The pod the process ran in, "" for a host process (owned). */
    char *ns, *pod, *container;
    uint64_t cpu_ns, samples, off_ns;
    uint64_t last_end_ms;          /* end of the newest window holding it */
    int alive;
} agg_prow_t;

/* The order of process rows: pid, then node, then newest window last
 * (qsort-style result). */
int agg_prow_order(uint32_t pid_a, const char *node_a, uint64_t end_a,
                   uint32_t pid_b, const char *node_b, uint64_t end_b);

typedef struct {
    agg_prow_t *rows;
    size_t n, cap;
} agg_prows_t;

void agg_prows_init(agg_prows_t *s);
void agg_prows_release(agg_prows_t *s);
/* Appends a copy of row (strings duplicated). 0 or -1. */
int agg_prows_add(agg_prows_t *s, const agg_prow_t *row);
/* Sorts by (pid, node) and sums rows of the same process (name, cmdline
 * and alive from the newest). 0 or -1. */
int agg_prows_merge(agg_prows_t *s);
/* Keeps the rows of processes in namespace ns, pod and container (NULL:
 * any); with any of them set, host processes go. */
void agg_prows_keep_pod(agg_prows_t *s, const char *ns, const char *pod,
                        const char *container);
/* {"processes":[...]} plus "partial" when partial is non-NULL. */
void agg_prows_json(const agg_prows_t *s, const char *partial,
                    agg_buf_t *out);
/* Lossless text form for replicas: one line per row, tab-separated. */
void agg_prows_text(const agg_prows_t *s, agg_buf_t *out);
/* Parses agg_prows_text output, appending to s. 0, or -1 on bad input:
 * more than max_rows rows, or a name, command line or node longer than
 * a replica keeps (WIRE_MAX_STR, WIRE_MAX_LONG_STR, WIRE_MAX_NODE), so
 * what a part costs is bounded whatever its size on the wire. */
int agg_prows_parse(agg_prows_t *s, const char *text, size_t len,
                    size_t max_rows);
/* Frees the rows from index n on and keeps the first n. */
void agg_prows_truncate(agg_prows_t *s, size_t n);

int agg_process_rows(agg_t *self, uint64_t start_ms, uint64_t end_ms,
                     agg_prows_t *out);

/* JSON bodies of /api/processes and /api/tasks. */
void agg_processes_json(agg_t *self, uint64_t start_ms, uint64_t end_ms,
                        agg_buf_t *out);
void agg_tasks_json_all(agg_t *self, agg_buf_t *out);

/* Queues a task request (published on task.request by agg_pump) and
 * writes the generated task id into id_out. 0, or -1 with a reason. */
int agg_request_task(agg_t *self, uint32_t pid, int target,
                     uint64_t duration_ms, uint64_t start_ms, char *id_out,
                     size_t id_len, char *err, size_t errlen);

/* A task of several processes (a NETWORK task names all the processes
 * whose traffic it wants), with the reference's ExtensionConfigJSON
 * (sampling rules; NULL or "" none). */
#define AGG_REQUEST_MAX_PIDS 64
#define AGG_REQUEST_MAX_EXTENSION (16u * 1024u)
typedef struct {
    const uint32_t *pids;          /* 1..AGG_REQUEST_MAX_PIDS, none 0 */
    uint32_t npids;
    int target;
    uint64_t duration_ms, start_ms;
    const char *extension_json;
} agg_task_spec_t;
int agg_request_tasks(agg_t *self, const agg_task_spec_t *spec,
                      char *id_out, size_t id_len, char *err, size_t errlen);

/* Prometheus text: own counters, then every other stage's. */
char *agg_metrics_text(agg_t *self, size_t *len);

stats_t *agg_stats(agg_t *self);
uint64_t agg_flush_ms(const agg_t *self);
size_t agg_max_nodes(const agg_t *self);
/* Windows in memory and whether the store is in use (for tests, logs). */
size_t agg_history_len(agg_t *self);
int agg_store_active(const agg_t *self);

#endif
