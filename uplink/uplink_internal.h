/* What the uplink's files share (not part of its interface, uplink.h):
 * the engine struct, its bounds, the OAP method names, the call
 * accounting of uplink.c and one entry point per protocol file. */
#ifndef SKYPROF_UPLINK_UPLINK_INTERNAL_H
#define SKYPROF_UPLINK_UPLINK_INTERNAL_H

#include "uplink.h"

#include <protobuf-c/protobuf-c.h>

#include "arena.h"
#include "databuf.h"
#include "log.h"
#include "oap_conn.h"
#include "policybook.h"
#include "proctable.h"
#include "seenprocs.h"

#define M_REPORT    "/skywalking.v3.EBPFProcessService/reportProcesses"
#define M_KEEPALIVE "/skywalking.v3.EBPFProcessService/keepAlive"
#define M_QUERY     "/skywalking.v3.EBPFProfilingService/queryTasks"
#define M_COLLECT   "/skywalking.v3.EBPFProfilingService/collectProfilingData"
#define M_POLICIES  "/skywalking.v3.ContinuousProfilingService/queryPolicies"
#define M_TRIGGER   "/skywalking.v3.ContinuousProfilingService/reportProfilingTask"
#define M_METERS    "/skywalking.v3.MeterReportService/collectBatch"
#define M_NET_LOGS  "/skywalking.v3.LogReportService/collect"
#define M_NET_EVENTS "/skywalking.v3.SpanAttachedEventReportService/collect"

/* Processes per reportProcesses/keepAlive call: keeps each request far
 * below the OAP's 4 MiB message limit on hosts with thousands of them. */
#define UPLINK_PROCS_PER_CALL 500
#define UPLINK_MAX_PROCS      65536
/* How long an exited process keeps its processId, so profiles flushed
 * after its exit are still attributed. */
#define UPLINK_EXIT_GRACE_MS  120000
/* New processes learnt from events are reported at most this often
 * between heartbeats. */
#define UPLINK_QUICK_REPORT_MS 1000
/* Decoded bus messages are bounded by the wire limits; this caps what one
 * agg.profile batch may make us allocate. */
#define UPLINK_ARENA_LIMIT    (64u << 20)
/* Services named in one queryPolicies call (one per finder-rendered
 * service name; far more than a host runs). */
#define UPLINK_MAX_SERVICES   4096
/* k8s.containers is republished this often even when unchanged. */
#define UPLINK_K8S_PUBLISH_MS 5000
/* A changed pod table rescans /proc at most this often. */
#define UPLINK_K8S_RESCAN_MS  1000

struct uplink {
    uplink_options_t opts;
    char *strings[8];              /* owned copies behind opts */
    stats_t *stats;
    finder_set_t *finders;
    finder_env_t env;
    char agent_id[256];
    char host_name[256];
    char host_ip[64];

    oap_conn_t *conn;              /* NULL when idle */
    seen_procs_t *seen;            /* proc.events facts of every process */
    proc_table_t *procs;
    databuf_t *buf;
    arena_t *arena;                /* uplink_handle's decoded messages */
    uint8_t *enc;                  /* encoding scratch */
    size_t enc_cap;
    uint8_t *msg;                  /* stream message scratch */
    size_t msg_cap;

    uint64_t now;
    bool started;
    uint64_t next_heartbeat, next_check, next_flush, next_quick_report;
    uint64_t next_policy, next_proc_ids;
    uint64_t round;
    bool full_report_due;
    uint64_t scan_gen;

    bool up;                       /* last call reached the OAP */
    bool ever_failed;              /* a failure happened since the last up */
    bool ever_up;
    uint64_t backoff_ms;
    uint64_t retry_at;
    bool auth_logged;
    int64_t latest_update_ms;

    k8s_disc_t *k8s;               /* NULL: no Kubernetes discovery */
    uint64_t k8s_gen_published, k8s_gen_scanned;
    uint64_t next_k8s_publish, next_k8s_rescan;
    stats_metric_t *m_k8s_published, *m_k8s_unknown;

    policy_book_t *book;           /* service -> policy UUID */
    uint64_t policy_round;
    uint64_t proc_ids_hash;        /* state last published on proc.ids */
    bool proc_ids_sent;
    char engine_sender[64];        /* policy engine seen on ctl.tasks */
    uint64_t engine_seq;
    log_ratelimit_t rl_input, rl_oap;
    uint32_t *net_pids;            /* sorted: pids of reported NETWORK
                                      tasks (ctl.tasks) */
    size_t net_npids;

    stats_metric_t *m_bytes, *m_messages, *m_buffer_bytes, *m_buffer_dropped,
        *m_reconnects, *m_reported, *m_tasks, *m_cmd_invalid,
        *m_replies_invalid, *m_procs_dropped, *m_no_process, *m_processes,
        *m_connected, *m_tasks_unmapped, *m_policies, *m_triggers,
        *m_meters_sent, *m_proc_ids, *m_net_meters, *m_net_logs,
        *m_net_events;
};

/* uplink.c: call accounting shared by every protocol. */
typedef enum {
    UPLINK_CALL_OK,
    UPLINK_CALL_REJECTED,   /* refused for good: do not resend */
    UPLINK_CALL_DOWN        /* the OAP went away: backoff started */
} uplink_call_t;

/* Counts the call, tracks up/down and the backoff. */
uplink_call_t uplink_account(uplink_t *self, const char *method,
                             const oap_result_t *r);
/* False while in backoff. */
bool uplink_may_call(const uplink_t *self);
/* Packs msg into self->enc; its length, 0 when out of memory. */
size_t uplink_pack(uplink_t *self, const ProtobufCMessage *msg);
/* Data per process goes to the OAP in one collection per entity (the OAP
 * takes service and instance from a collection's first element): sorts
 * order[0..n) (indices into entry) by entry's service and instance, then
 * index, so each entity is one run. */
void uplink_sort_by_entity(uint32_t *order, size_t n,
                           const proc_entry_t **entry);
/* How many of order[at..n) belong to the entity of order[at]. */
size_t uplink_entity_run(const uint32_t *order, size_t at, size_t n,
                         const proc_entry_t **entry);
/* Counted drops of continuous-profiling input, by what went wrong. */
void uplink_count_drop(uplink_t *self, const char *what,
                       const char *reason, uint64_t n);

/* uplink_processes.c */
/* Heartbeat (scan, report, keepAlive) or quick report, when due. 0, or
 * -1 when the OAP went away. */
int uplink_processes_call(uplink_t *self);
/* Matches every process proc.events told us of again (heartbeat, pod
 * table change); forgets stale facts; reported processes without facts
 * are marked exited. */
void uplink_processes_scan(uplink_t *self);
void uplink_processes_take_events(uplink_t *self,
                                  const wire_proc_events_t *m);

/* uplink_tasks.c */
int uplink_tasks_query(uplink_t *self);
int uplink_tasks_publish(uplink_t *self, const wire_task_t *tasks,
                         uint32_t ntasks);

/* uplink_data.c */
int uplink_data_flush(uplink_t *self);
void uplink_data_take_profiles(uplink_t *self,
                               const wire_profile_batch_t *batch);

/* uplink_continuous.c */
int uplink_continuous_query_policies(uplink_t *self);
void uplink_continuous_take_trigger(uplink_t *self, const wire_trigger_t *t);
void uplink_continuous_take_meters(uplink_t *self, const wire_meters_t *m);
void uplink_continuous_watch_engine(uplink_t *self,
                                    const wire_header_t *hdr);
void uplink_continuous_publish_proc_ids(uplink_t *self, bool force);

/* uplink_net.c */
/* ctl.tasks: which pids' network data goes to the OAP. */
void uplink_net_take_tasks(uplink_t *self, const wire_task_set_t *set);
/* net.report: meters, sampled-request logs and span events. */
void uplink_net_take_report(uplink_t *self, const wire_net_report_t *r);

#endif
