/* The uplink's logic, independent of the bus and the clock so tests can
 * drive it in-process and simulate hours of flushes: processes in
 * (proc.events only: the uplink reads neither /proc nor binaries, so it
 * runs without the host PID namespace or capabilities), tasks out
 * (task.request), profiles in
 * (agg.profile), and the OAP conversation (report/keepAlive, queryTasks,
 * collectProfilingData, queryPolicies) paced by uplink_tick(). Continuous
 * profiling: process entities out (proc.ids), policies out
 * (policy.update), triggers in (trigger.report -> reportProfilingTask ->
 * task.request), meters in (metric.continuous -> collectBatch).
 *
 * Threading: everything runs on the caller's thread. gRPC calls block for
 * at most core.backend.upstream_timeout each; after a failure nothing is
 * attempted until the backoff expires, so an absent OAP costs one failed
 * call per backoff period (uplink/README.md). */
#ifndef SKYPROF_UPLINK_UPLINK_H
#define SKYPROF_UPLINK_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "finder.h"
#include "k8s_disc.h"
#include "bus.h"
#include "msg.h"
#include "stats.h"
#include "wire.h"

typedef struct uplink uplink_t;

/* Sends one message of the table (lib/msg_table.h): body is the type's
 * structure, its header filled by the sender (bus_send). 0 sent, -1
 * dropped, BUS_TOO_BIG when it breaks a wire bound. */
typedef int (*uplink_publish_fn)(void *arg, msg_id_t id, void *body);

typedef struct {
    /* OAP connection; addr "" = idle (local mode). */
    const char *addr;
    bool tls;
    const char *ca_path, *cert_path, *key_path;
    bool skip_verify;
    const char *auth_token;
    uint64_t timeout_ms;
    uint64_t buffer_size;          /* bytes of pending profiling data */

    uint64_t heartbeat_ms;         /* keepAlive period */
    uint32_t report_period;        /* full re-report every N heartbeats */
    uint64_t check_ms;             /* queryTasks period */
    uint64_t flush_ms;             /* collectProfilingData period */
    uint64_t max_backoff_ms;       /* reconnect backoff cap (30 s) */
    uint64_t auth_backoff_ms;      /* wait after UNAUTHENTICATED (5 min) */

    const char *agent_id;          /* "" = hostname-pid */
    /* A process no proc.events message named for this long is forgotten
     * (the collector republishes every live one each
     * collector.proc_republish_interval; 3 of them); 0 = never. */
    uint64_t proc_stale_ms;
    /* Kubernetes discovery (NULL: off); owned by the uplink once
     * uplink_new was called. */
    k8s_disc_t *k8s;
    const char *node_name;         /* for "k8s.containers" */
    /* profiling.task.network.meter_prefix: network meters are named
     * <prefix>_<name> (default rover_net_p). */
    const char *net_meter_prefix;

    uplink_publish_fn publish;
    void *cb_arg;
} uplink_options_t;

/* Defaults matching config_keys.h (no OAP, no finders). */
void uplink_options_defaults(uplink_options_t *opts);
/* Fills opts from the configuration (strings point into cfg) and adds the
 * configured process finders to finders. -1 with a message naming the key
 * in err. */
int uplink_options_from_config(uplink_options_t *opts, finder_set_t *finders,
                               const config_t *cfg, char *err,
                               size_t errlen);

/* Takes ownership of finders. stats is borrowed. NULL on failure. */
uplink_t *uplink_new(const uplink_options_t *opts, finder_set_t *finders,
                     stats_t *stats);
void uplink_destroy(uplink_t **self_p);

/* True when an OAP is configured. */
bool uplink_active(const uplink_t *self);

/* The bus's handler for what the uplink receives, decoded: "proc.events",
 * "agg.profile", "ctl.tasks" (watched to see the policy engine restart),
 * "trigger.report" (reported at once with reportProfilingTask),
 * "metric.continuous" (sent at once with collectBatch) or "net.report"
 * (network meters, sampled requests: sent at once, uplink_net.c).
 * Returns 0. */
int uplink_on_msg(uplink_t *self, const msg_decoded_t *m, uint64_t now_ms);
/* The same for a payload from elsewhere (tests): decodes it by its topic
 * (lib/msg.h). Returns 0, or -1 when the payload was malformed (logged). */
int uplink_handle(uplink_t *self, const char *topic, const void *payload,
                  size_t len, uint64_t now_ms);

/* Runs whatever is due at now_ms (monotonic ms): process report or
 * keepAlive, task query, data flush, reconnect. Call about every second. */
void uplink_tick(uplink_t *self, uint64_t now_ms);

/* Kubernetes discovery, every K8S tick (200 ms): moves API bytes,
 * publishes "k8s.containers" on change and every 5 s, and when the pod
 * table changed matches the known processes again. Works without an
 * OAP. */
void uplink_k8s_tick(uplink_t *self, uint64_t now_ms);

/* Forces the next tick to flush pending data and query tasks (tests and
 * shutdown). */
void uplink_flush_now(uplink_t *self);

/* Introspection for tests and the report. */
const char *uplink_agent_id(const uplink_t *self);
size_t uplink_buffer_bytes(const uplink_t *self);
/* OAP processId of pid, NULL when unknown. */
const char *uplink_process_id(const uplink_t *self, uint32_t pid);
size_t uplink_process_count(const uplink_t *self);
bool uplink_connected(const uplink_t *self);

#endif
