/* One aggregation window (profiling.flush_interval): what was sampled
 * between start_ms and end_ms.
 *
 *   host[kind]   "Total" -> "<node>" (FLAME_NODE) -> "<pid>" (FLAME_PROCESS)
 *                -> thread (FLAME_THREAD) -> frames root first. Pids are
 *                unique only within a node, so the node layer comes first
 *                ("" for senders that name none). The pid layer is keyed
 *                by pid, not name, so one tree answers both the host-wide
 *                view (where query time relabels it "[p] <name>", and
 *                drops the node layer when only one node is present) and
 *                per-pid queries. Windows stored before the node layer
 *                have pid nodes straight under the root: node "".
 *   tasks        per task id and kind: task id -> frames root first.
 *   procs        per (node, pid): name and CPU / off-CPU totals.
 *   stacks       per (task, node, pid, distinct stack): for agg.profile;
 *                the stack is identified by its leaf in the task tree.
 *
 * A window is filled by one thread, then closed; after that it is
 * immutable and may be read by several threads. The reference count is
 * managed by the owner of the history under its lock. */
#ifndef SKYPROF_AGG_WINDOW_H
#define SKYPROF_AGG_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/core/flame.h"
#include "aggregator/core/pods.h"
#include "wire.h"

#define AGG_KINDS 2               /* WIRE_KIND_ON_CPU, WIRE_KIND_OFF_CPU */
#define AGG_WINDOW_MAX_TASKS 256
#define AGG_WINDOW_MAX_PROCS 65536
#define AGG_WINDOW_MAX_STACKS (1u << 20)
#define AGG_WINDOW_MAX_NODES 4096 /* distinct node names; more fold into "" */

typedef struct {
    uint32_t pid;
    const char *node;               /* interned in the window; "" = none */
    const char *name;
    uint64_t cpu_ns, samples;       /* on-CPU */
    uint64_t off_ns, switches;      /* off-CPU */
    /* The pod the process ran in (Kubernetes discovery); NULL for a host
     * process or a container no known pod runs. */
    const char *ns, *pod, *container;
} agg_wproc_t;

typedef struct {
    const char *task_id;
    flame_t *tree[AGG_KINDS];       /* NULL until the kind is seen */
} agg_wtask_t;

typedef struct {
    const flame_node_t *leaf;       /* in tasks[task].tree[kind] */
    uint32_t task;                  /* index into the window's tasks */
    uint32_t pid;
    const char *node;               /* interned in the window */
    uint8_t kind;
    uint64_t count, ns;
} agg_wstack_t;

typedef struct agg_window agg_window_t;

/* Resolves (node, pid) to a process name when the batch carries none. */
typedef const char *(*agg_name_fn)(void *arg, const char *node, uint32_t pid);
/* Resolves (node, container id) to its pod; NULL when unknown. */
typedef const agg_pod_t *(*agg_pod_fn)(void *arg, const char *node,
                                       const char *container_id);

agg_window_t *agg_window_new(uint64_t start_ms, size_t max_nodes);
void agg_window_destroy(agg_window_t **self_p);

/* Adds a decoded batch. Returns the number of samples rejected as
 * malformed (0 normally); -1 only on allocation failure. */
long agg_window_add_batch(agg_window_t *self, const wire_sym_batch_t *b,
                          agg_name_fn name_fn, agg_pod_fn pod_fn,
                          void *name_arg);

/* Seals the window: sorts the publication stacks by (task, pid, node). */
void agg_window_close(agg_window_t *self, uint64_t end_ms);

uint64_t agg_window_start(const agg_window_t *self);
uint64_t agg_window_end(const agg_window_t *self);
/* Nodes held by every tree of the window. */
size_t agg_window_nodes(const agg_window_t *self);
uint64_t agg_window_samples(const agg_window_t *self);

/* Host-wide tree of a kind; never NULL. */
flame_t *agg_window_host(const agg_window_t *self, int kind);

size_t agg_window_ntasks(const agg_window_t *self);
const agg_wtask_t *agg_window_task(const agg_window_t *self, size_t i);
const agg_wtask_t *agg_window_find_task(const agg_window_t *self,
                                        const char *task_id);

size_t agg_window_nprocs(const agg_window_t *self);
const agg_wproc_t *agg_window_proc(const agg_window_t *self, size_t i);
/* node NULL matches the pid on any node (the first found). */
const agg_wproc_t *agg_window_find_proc(const agg_window_t *self,
                                        const char *node, uint32_t pid);
/* Distinct node names the window's processes came from. */
size_t agg_window_nnodes(const agg_window_t *self);
const char *agg_window_node(const agg_window_t *self, size_t i);

size_t agg_window_nstacks(const agg_window_t *self);
const agg_wstack_t *agg_window_stacks(const agg_window_t *self);
/* Frees the publication stacks once published (they are not kept). */
void agg_window_drop_stacks(agg_window_t *self);
uint64_t agg_window_dropped(const agg_window_t *self);

/* Rebuilding a window from the store: each takes ownership of tree. */
int agg_window_set_host(agg_window_t *self, int kind, flame_t *tree);
int agg_window_set_task(agg_window_t *self, const char *task_id, int kind,
                        flame_t *tree);

/* The process table in a compact binary form (for the store). */
int agg_window_procs_encode(const agg_window_t *self, unsigned char **out,
                            size_t *len);
int agg_window_procs_decode(agg_window_t *self, const void *data, size_t len);

/* Reference count, used under the history owner's lock. */
void agg_window_ref(agg_window_t *self);
/* Drops a reference and destroys the window at zero. */
void agg_window_unref(agg_window_t **self_p);

#endif
