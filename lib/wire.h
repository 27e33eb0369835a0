/* The bus wire codec: the only place that packs or unpacks bus payloads.
 * lib/msg_table.h lists every message with its topic and its codec here;
 * stages do not call the codecs themselves but send and receive typed
 * messages through lib/bus.h (bus_send, bus_on).
 *
 * Every payload is one msgpack array whose first four elements are the
 * header [version, sender, seq, ts_ns] followed by the body of the message
 * type. docs/wire.md documents every topic and field. Decoders validate
 * every type, length and bound and never trust a count from the wire: a
 * malformed payload fails with a reason in `err` and nothing leaks.
 *
 * Decoded structures point into an arena owned by the caller; free them by
 * resetting or destroying the arena. Encoders append to a wire_buf_t. */
#ifndef SKYPROF_WIRE_H
#define SKYPROF_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

#define WIRE_VERSION 1

/* Bounds enforced by every decoder (and by encoders, which refuse to build
 * what a peer would reject). */
#define WIRE_MAX_FRAMES      256      /* kernel or user frames per stack */
#define WIRE_MAX_SAMPLES     65536    /* samples per batch */
#define WIRE_MAX_OBJECTS     65536    /* object table entries per batch */
#define WIRE_MAX_PROCS       65536    /* process entries per batch */
#define WIRE_MAX_STRINGS     262144   /* interned frame names per batch */
#define WIRE_MAX_TASKS       4096     /* tasks per set / per sample */
#define WIRE_MAX_PIDS        65536    /* pids per task */
#define WIRE_MAX_STR         4096     /* bytes in one string (paths, names) */
#define WIRE_MAX_LONG_STR    65536    /* bytes in cmdlines and JSON blobs */
#define WIRE_MAX_BUILD_ID    64
#define WIRE_MAX_METRICS     4096
#define WIRE_MAX_JSON        (1u << 20) /* policy documents */
#define WIRE_MAX_PAYLOAD     (64u << 20)
#define WIRE_COMM_LEN        16
#define WIRE_MAX_NODE        253      /* bytes in a node name (DNS name) */
#define WIRE_MAX_AGG_INSTANCE 64      /* aggregator replica names */
#define WIRE_MAX_AGG_ADDR    256      /* host:port of a replica's API */
#define WIRE_MAX_AGG_MARKS   4096     /* origin senders per released bucket */
#define WIRE_BUCKETS         64       /* pid buckets in sharded topics */
#define WIRE_NO_OBJECT       0xffffffffu

/* ------------------------------------------------------------- topics */
/* Sharded topics end in two decimal digits: the pid's bucket. */
#define TOPIC_RAW_STACKS     "raw.stacks."   /* + "BB" */
#define TOPIC_SYM_STACKS     "sym.stacks."   /* + "BB" */
#define TOPIC_PROC_EVENTS    "proc.events"
#define TOPIC_CTL_TASKS      "ctl.tasks"     /* desired active task set */
#define TOPIC_TASK_REQUEST   "task.request"  /* new tasks for policy-engine */
#define TOPIC_AGG_PROFILE    "agg.profile"   /* per-task flush for uplink */
#define TOPIC_PROC_IDS       "proc.ids"      /* OAP process ids (uplink) */
#define TOPIC_STATS          "stats."        /* + stage name */
#define TOPIC_HELLO          "ctl.hello."    /* + role: replica membership */
#define TOPIC_AGG_CTL        "ctl.agg."      /* aggregator replicas only: */
#define TOPIC_AGG_PEER       "ctl.agg.peer"    /* where a replica's API is */
#define TOPIC_AGG_CLAIM      "ctl.agg.claim"   /* "I own and hear bucket B" */
#define TOPIC_AGG_RELEASE    "ctl.agg.release" /* "I stopped counting B at" */
#define TOPIC_AGG_IDLE       "ctl.agg.idle"    /* "I do not count B" */
#define TOPIC_POLICY_UPDATE  "policy.update" /* OAP policies for policy-engine */
#define TOPIC_TRIGGER        "trigger.report"/* continuous trigger for uplink */
#define TOPIC_METERS         "metric.continuous" /* monitor meters for uplink */
#define TOPIC_K8S_CONTAINERS "k8s.containers" /* container id -> pod (uplink) */

uint32_t wire_pid_bucket(uint32_t pid);
/* Writes e.g. "raw.stacks.07" into out (size >= 32). */
void wire_sharded_topic(char *out, size_t size, const char *prefix,
                        uint32_t pid);

/* -------------------------------------------------------- output buffer */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} wire_buf_t;

void wire_buf_init(wire_buf_t *b);
void wire_buf_reset(wire_buf_t *b);
void wire_buf_release(wire_buf_t *b);

/* ------------------------------------------------------------- header */
typedef struct {
    uint32_t version;
    char sender[64];   /* "<stage>/<instance>" */
    uint64_t seq;      /* per (sender, topic), starts at 1 */
    uint64_t ts_ns;    /* CLOCK_REALTIME when built */
} wire_header_t;

/* --------------------------------------------------------- enumerations */
enum wire_sample_kind { WIRE_KIND_ON_CPU = 0, WIRE_KIND_OFF_CPU = 1 };

enum wire_object_type {
    WIRE_OBJ_EXE = 0,     /* the main executable */
    WIRE_OBJ_LIB = 1,     /* a shared object */
    WIRE_OBJ_VDSO = 2,
    WIRE_OBJ_JIT = 3,     /* anonymous code covered by /tmp/perf-PID.map */
    WIRE_OBJ_ANON = 4,    /* anonymous memory with no map: raw address */
    WIRE_OBJ_TYPE_MAX = 4
};

enum wire_frame_type {
    WIRE_FRAME_KERNEL = 0,
    WIRE_FRAME_USER = 1,  /* function of the main executable */
    WIRE_FRAME_LIB = 2,   /* function of a shared library */
    WIRE_FRAME_JIT = 3,
    WIRE_FRAME_UNKNOWN = 4, /* unresolved: name is "object+0xoffset" */
    WIRE_FRAME_TYPE_MAX = 4
};

enum wire_target { WIRE_TARGET_ON_CPU = 0, WIRE_TARGET_OFF_CPU = 1,
                   WIRE_TARGET_NETWORK = 2, WIRE_TARGET_MAX = 2 };
enum wire_trigger { WIRE_TRIGGER_FIXED_TIME = 0,
                    WIRE_TRIGGER_CONTINUOUS = 1, WIRE_TRIGGER_MAX = 1 };
enum wire_task_source { WIRE_SRC_OAP = 0, WIRE_SRC_LOCAL = 1,
                        WIRE_SRC_API = 2, WIRE_SRC_POLICY = 3,
                        WIRE_SRC_MAX = 3 };

/* ALIVE: a process still running, republished by the collector every
 * collector.proc_republish_interval with its facts as of now, so a
 * receiver that started late or lost messages learns the whole table. */
enum wire_proc_event_type { WIRE_PROC_START = 0, WIRE_PROC_EXEC = 1,
                            WIRE_PROC_EXIT = 2, WIRE_PROC_ALIVE = 3,
                            WIRE_PROC_EVENT_MAX = 3 };

/* ---------------------------------------------------- raw stack batch */
/* An object (file) some user frame of the batch lies in. */
typedef struct {
    uint32_t id;          /* collector-wide stable id; frames refer to it */
    uint8_t type;         /* enum wire_object_type */
    uint8_t build_id_len; /* 0 = none */
    uint8_t build_id[WIRE_MAX_BUILD_ID];
    uint64_t dev;         /* st_dev of the file as the kernel sees it */
    uint64_t ino;
    uint32_t pid;         /* a pid whose /proc/PID/root reaches `path`;
                             0 = the host root */
    const char *path;     /* as the process sees it (mapping path) */
} wire_object_t;

typedef struct {
    uint32_t object;      /* wire_object_t.id, or WIRE_NO_OBJECT */
    uint64_t offset;      /* file offset in the object; the raw address
                             when object == WIRE_NO_OBJECT */
} wire_uframe_t;

typedef struct {
    uint32_t pid, tid, cpu;
    uint8_t kind;          /* enum wire_sample_kind */
    uint64_t ts_ns;        /* first occurrence in the batch (realtime) */
    uint64_t count;        /* samples (on-CPU) or switches (off-CPU) */
    uint64_t weight_ns;    /* CPU ns represented, or ns spent off CPU */
    char comm[WIRE_COMM_LEN]; /* thread name, NUL terminated */
    uint32_t nk, nu;
    const uint64_t *kframes;      /* leaf first */
    const wire_uframe_t *uframes; /* leaf first */
    uint32_t ntasks;
    const uint32_t *tasks;        /* indices into the batch's task_ids */
} wire_raw_sample_t;

typedef struct {
    uint32_t pid;
    uint32_t nspid;        /* pid inside its namespace (0 = unknown) */
    const char *name;      /* process name (comm of the main thread) */
    const char *container_id; /* "" when on the host */
} wire_proc_t;

typedef struct {
    wire_header_t hdr;
    uint32_t nobjects;
    const wire_object_t *objects;
    uint32_t nprocs;
    const wire_proc_t *procs;
    uint32_t ntask_ids;
    const char *const *task_ids;
    uint32_t nsamples;
    const wire_raw_sample_t *samples;
    /* The node (host) the collector runs on: pids are only unique within
     * one node. Optional on the wire; NULL or "" = unknown. */
    const char *node;
} wire_raw_batch_t;

/* ---------------------------------------------- symbolized stack batch */
typedef struct {
    const char *name;     /* function, or "object+0xoffset" when unknown */
    uint8_t type;         /* enum wire_frame_type */
} wire_frame_t;

typedef struct {
    uint32_t pid, tid, cpu;
    uint8_t kind;
    uint64_t ts_ns;
    uint64_t count;
    uint64_t weight_ns;
    char comm[WIRE_COMM_LEN];
    uint32_t nframes;
    const uint32_t *frames; /* indices into the batch frame table, leaf
                               first: kernel frames, then user frames */
    uint32_t nkernel;       /* how many of frames are kernel frames */
    uint32_t ntasks;
    const uint32_t *tasks;
} wire_sym_sample_t;

typedef struct {
    wire_header_t hdr;
    uint32_t nframes;
    const wire_frame_t *frames;
    uint32_t nprocs;
    const wire_proc_t *procs;
    uint32_t ntask_ids;
    const char *const *task_ids;
    uint32_t nsamples;
    const wire_sym_sample_t *samples;
    /* The raw batch this was made from (its header's sender and seq), so
     * an aggregator can drop a batch two symbolizer replicas both handled
     * while they hand a bucket over. "" / 0 when unknown. */
    const char *origin_sender;
    uint64_t origin_seq;
    /* Copied from the raw batch (see wire_raw_batch_t.node). */
    const char *node;
} wire_sym_batch_t;

/* ----------------------------------------------------- process events */
typedef struct {
    uint8_t type;          /* enum wire_proc_event_type */
    uint32_t pid, ppid, nspid;
    uint64_t ts_ns;
    const char *comm;
    const char *exe;       /* path of the executable, "" if unknown */
    const char *cmdline;   /* arguments joined by spaces */
    const char *container_id;
    /* 1: the executable has function symbols (.symtab/.dynsym) or an
     * installed debug file, so a profile of it resolves: the OAP's
     * support_ebpf_profiling. 0: not, unknown (exit events) or an older
     * collector that did not send it. */
    uint8_t has_symbols;
} wire_proc_event_t;

typedef struct {
    wire_header_t hdr;
    uint32_t nevents;
    const wire_proc_event_t *events;
    const char *node;      /* as wire_raw_batch_t.node */
} wire_proc_events_t;

/* ------------------------------------------------------------- tasks */
typedef struct {
    const char *task_id;
    uint8_t target;        /* enum wire_target */
    uint8_t trigger;       /* enum wire_trigger */
    uint8_t source;        /* enum wire_task_source */
    uint64_t start_ms;     /* wall clock; 0 = as soon as received */
    uint64_t duration_ms;
    uint64_t update_ms;    /* TaskUpdateTime from the OAP, else creation */
    uint32_t npids;
    const uint32_t *pids;
    /* OAP process id per pid (same order), or NULL when local. */
    const char *const *process_ids;
    const char *extension_json; /* "" when none */
} wire_task_t;

/* Used for both ctl.tasks (desired state; generation increases on every
 * change) and task.request (generation unused, 0). */
typedef struct {
    wire_header_t hdr;
    uint64_t generation;
    uint32_t ntasks;
    const wire_task_t *tasks;
} wire_task_set_t;

/* ------------------------------------------------ aggregated profiles */
typedef struct {
    uint32_t nk;
    const char *const *kframes;   /* leaf first */
    uint32_t nu;
    const char *const *uframes;   /* leaf first */
    uint64_t count;               /* dumpCount or switchCount */
    uint64_t duration_ns;         /* off-CPU time; on-CPU: CPU ns */
} wire_prof_stack_t;

typedef struct {
    const char *task_id;
    uint32_t pid;
    const char *process_id;       /* OAP process id, "" when unknown */
    uint8_t target;
    uint64_t start_ms;            /* when this task started profiling */
    uint64_t window_start_ms, window_end_ms;
    uint32_t nstacks;
    const wire_prof_stack_t *stacks;
} wire_task_profile_t;

typedef struct {
    wire_header_t hdr;
    uint32_t nprofiles;
    const wire_task_profile_t *profiles;
} wire_profile_batch_t;

/* --------------------------------------------------------------- stats */
enum wire_metric_type { WIRE_METRIC_COUNTER = 0, WIRE_METRIC_GAUGE = 1 };

typedef struct {
    const char *name;     /* skyprof_<stage>_<what> */
    const char *labels;   /* Prometheus label body without braces, or "" */
    uint8_t type;
    double value;
} wire_metric_t;

typedef struct {
    wire_header_t hdr;
    const char *stage;
    const char *instance;
    uint32_t nmetrics;
    const wire_metric_t *metrics;
} wire_stats_t;

/* ------------------------------------------------- replica membership */
typedef struct {
    wire_header_t hdr;
    const char *role;      /* "symbolizer", "aggregator" */
    const char *instance;  /* unique per replica */
    uint64_t started_ms;
    uint8_t leaving;       /* 1 on clean shutdown */
} wire_hello_t;

/* ------------------------------------------ aggregator replicas (ctl.agg.*)
 * Exchanged by aggregator replicas only (the aggregator's hand-over and
 * replica modules): the address of each replica's HTTP API, and the exact
 * hand-over of a pid bucket: the new owner claims it, the old owner
 * releases it with, per origin sender, the highest origin seq it counted. */
typedef struct {
    wire_header_t hdr;
    const char *instance;
    const char *addr;      /* host:port of its HTTP API */
    uint8_t leaving;       /* 1 on clean shutdown */
} wire_agg_peer_t;

typedef struct {
    const char *sender;    /* origin sender (a collector) */
    uint64_t seq;          /* highest origin seq counted */
} wire_agg_mark_t;

/* A release; a claim is the same message with no marks. */
typedef struct {
    wire_header_t hdr;
    const char *instance;  /* the replica that claims or releases */
    uint32_t bucket;       /* < WIRE_BUCKETS */
    uint32_t nmarks;
    const wire_agg_mark_t *marks;
} wire_agg_release_t;

/* The answer to a claim from a replica that does not count the bucket
 * (and so has nothing to release). */
typedef struct {
    wire_header_t hdr;
    const char *instance;  /* the replica that answers */
    uint32_t bucket;       /* < WIRE_BUCKETS */
} wire_agg_idle_t;

/* ------------------------------------------- process entities (uplink) */
/* Full state of the processes the uplink reported to the OAP, republished
 * periodically on "proc.ids": the OAP process id and entity of each pid. */
typedef struct {
    uint32_t pid;
    const char *process_id;     /* assigned by the OAP, "" until known */
    const char *layer;
    const char *service;
    const char *instance;
    const char *process_name;
} wire_proc_entity_t;

typedef struct {
    wire_header_t hdr;
    uint32_t nentities;
    const wire_proc_entity_t *entities;
} wire_proc_ids_t;

/* ------------------------------------ Kubernetes containers (uplink) */
/* Full state of the containers of this node's pods, republished on change
 * and periodically on "k8s.containers" (docs/kubernetes.md): the pod
 * identity of every process whose container_id is one of these. */
#define WIRE_MAX_K8S_CONTAINERS 4096

typedef struct {
    const char *container_id;   /* 64 hex digits, lower case */
    const char *ns;
    const char *pod;
    const char *container;
    const char *pod_ip;         /* "" when not assigned yet */
    const char *service;        /* "" when no Service selects the pod */
} wire_k8s_container_t;

typedef struct {
    wire_header_t hdr;
    const char *node;           /* the node these pods run on */
    uint32_t ncontainers;
    const wire_k8s_container_t *containers;
} wire_k8s_containers_t;

/* --------------------------------------- continuous profiling messages */
/* "policy.update": a ServiceWithPolicyJSON document from the OAP, passed
 * through unchanged; the policy engine validates it. */
typedef struct {
    wire_header_t hdr;
    const char *json;
} wire_policy_update_t;

typedef struct {
    uint8_t type;               /* enum monitor_type (lib/monitors.h) */
    double threshold;
    double current;
    const char *uri_regex;      /* HTTP causes, "" otherwise */
    const char *uri_path;
} wire_cause_t;

/* "trigger.report": a policy fired for a process; the uplink reports it
 * with reportProfilingTask and turns the OAP's TaskId into a task request. */
typedef struct {
    wire_header_t hdr;
    uint32_t pid;
    uint8_t target;             /* enum wire_target */
    uint64_t duration_ms;
    const char *service;        /* the entity the policy matched */
    uint32_t ncauses;
    const wire_cause_t *causes;
} wire_trigger_t;

/* "metric.continuous": monitor values for MeterReportService. */
typedef struct {
    const char *name;           /* <meter_prefix>_<monitor> */
    double value;
    uint32_t pid;
    const char *process_name;
    const char *layer;
    const char *uri;            /* "" unless an HTTP monitor */
} wire_meter_t;

typedef struct {
    wire_header_t hdr;
    uint64_t ts_ms;
    uint32_t nmeters;
    const wire_meter_t *meters;
} wire_meters_t;

/* --------------------------------------------- network profiling (14) */
/* "net.events.BB" (collector -> aggregator's network room, by pid bucket):
 * what the collector captured on the sockets of the processes of NETWORK
 * tasks. The collector only captures; parsing, pairing and metrics are the
 * network room's (docs/network.md). */
#define TOPIC_NET_EVENTS     "net.events."   /* + "BB" */
#define TOPIC_NET_REPORT     "net.report"    /* network meters, samples */
#define WIRE_MAX_NET_EVENTS  65536    /* events per batch */
#define WIRE_MAX_NET_PAYLOAD 4096     /* captured bytes per data event */
#define WIRE_MAX_NET_LABELS  16       /* extra labels per meter */
#define WIRE_MAX_NET_BUCKETS 64       /* histogram buckets per meter */
#define WIRE_MAX_NET_METERS  65536    /* meters per report */
#define WIRE_MAX_NET_SAMPLES 4096     /* sampled requests per report */

enum wire_net_kind {
    WIRE_NET_OPEN = 0,     /* connect/accept returned, or found at start */
    WIRE_NET_CLOSE = 1,    /* close of the socket, with the kernel's totals */
    WIRE_NET_DATA = 2,     /* one read/write-family syscall, or SSL_* call */
    WIRE_NET_RETRANS = 3,  /* TCP retransmits of the connection */
    WIRE_NET_DROP = 4,     /* packets of the connection dropped */
    WIRE_NET_KIND_MAX = 4
};
enum wire_net_proto { WIRE_NET_TCP = 0, WIRE_NET_UDP = 1, WIRE_NET_UNIX = 2,
                      WIRE_NET_PROTO_MAX = 2 };
/* The side of the local process on the connection. */
enum wire_net_role { WIRE_NET_ROLE_UNKNOWN = 0, WIRE_NET_ROLE_CLIENT = 1,
                     WIRE_NET_ROLE_SERVER = 2, WIRE_NET_ROLE_MAX = 2 };
enum wire_net_dir { WIRE_NET_OUT = 0, WIRE_NET_IN = 1, WIRE_NET_DIR_MAX = 1 };

typedef struct {
    uint8_t kind;          /* enum wire_net_kind */
    uint32_t pid, tid;
    /* The connection: unique on this collector for the socket's life
     * (never reused by a later socket at the same kernel address). */
    uint64_t conn_id;
    uint64_t ts_ns;        /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
    /* OPEN (and repeated on CLOSE when known) */
    uint8_t proto;         /* enum wire_net_proto */
    uint8_t role;          /* enum wire_net_role */
    uint8_t pre_existing;  /* 1: open before the probes attached */
    uint8_t local_addr[16], remote_addr[16]; /* IPv6, IPv4 as ::ffff:a.b.c.d */
    uint16_t local_port, remote_port;
    uint32_t peer_pid;     /* the process at the other end on this host, 0:
                            * remote or not known */
    uint64_t dur_ns;       /* OPEN: connect()/accept() time; DATA: the
                            * syscall's (or SSL call's) time; CLOSE: close() */
    /* DATA */
    uint8_t dir;           /* enum wire_net_dir */
    uint8_t is_ssl;        /* plaintext of a TLS library call */
    uint64_t bytes;        /* bytes the call moved (its return value) */
    uint32_t rtt_us;       /* smoothed RTT at a TCP write, 0 otherwise */
    uint32_t ncaptured;    /* prefix of the data captured, <= bytes and
                            * <= WIRE_MAX_NET_PAYLOAD; the rest was not kept
                            * (http1_conn_skip) */
    const uint8_t *payload;
    /* CLOSE (kernel totals), RETRANS/DROP (count in `count`) */
    uint64_t bytes_sent, bytes_received;
    uint32_t count;        /* RETRANS, DROP: how many; CLOSE: retransmits */
} wire_net_event_t;

typedef struct {
    wire_header_t hdr;
    uint32_t nevents;
    const wire_net_event_t *events;
    uint64_t lost;         /* events the collector dropped since the last
                            * batch (ring buffer full, bounds) */
    const char *node;      /* as wire_raw_batch_t.node */
} wire_net_batch_t;

/* "net.report" (network room -> uplink, policy engine), every
 * profiling.task.network.report_interval: the meters of the reference
 * agent (rover_net_p_*), sampled requests and per-URI HTTP figures for the
 * continuous HTTP monitors. Processes are pids: the uplink turns them into
 * the OAP's process ids; the meter prefix is the uplink's. */
typedef struct {
    const char *key, *value;
} wire_label_t;

typedef struct {
    const char *name;      /* without prefix: "client_write_counts_counter",
                            * "http1_request_counter", ... */
    uint32_t pid;          /* the local process the meter is about */
    uint8_t role;          /* enum wire_net_role: its side */
    uint32_t peer_pid;     /* local peer process, 0 when remote/unknown */
    const char *peer_address; /* "ip:port" when peer_pid is 0, else "" */
    uint32_t nlabels;      /* further labels: side, protocol, is_ssl, code */
    const wire_label_t *labels;
    double value;          /* counters and averages */
    /* histograms when nbuckets > 0: upper bounds and counts */
    uint32_t nbuckets;
    const double *bounds;
    const uint64_t *counts;
} wire_net_meter_t;

typedef struct {
    uint32_t pid;          /* the process that saw the request */
    uint8_t role;          /* its side: client or server */
    uint32_t peer_pid;
    const char *peer_address;
    uint8_t is_ssl;
    const char *method, *uri;
    uint32_t status;
    const char *reason;    /* the reference's: "slow", "status_4xx",
                            * "status_5xx" */
    uint64_t start_ms, end_ms; /* wall clock */
    const char *trace_provider; /* "skywalking", "zipkin", "w3c" */
    const char *trace_id, *segment_id, *span_id; /* "" when absent */
    uint32_t req_len, resp_len; /* captured request/response (head+body),
                                 * cut at the rule's max sizes */
    const uint8_t *req, *resp;
} wire_net_sample_t;

typedef struct {
    uint32_t pid;
    const char *uri;       /* query stripped */
    uint64_t requests, errors; /* errors: status >= 500 */
    double duration_ms_sum;
} wire_net_http_t;

typedef struct {
    wire_header_t hdr;
    uint64_t ts_ms;        /* end of the interval, wall clock */
    uint32_t nmeters;
    const wire_net_meter_t *meters;
    uint32_t nsamples;
    const wire_net_sample_t *samples;
    uint32_t nhttp;
    const wire_net_http_t *http;
} wire_net_report_t;

/* ------------------------------------------------------- functions */
/* Encoders return 0, or -1 when the message breaks a bound (nothing is
 * appended then). Decoders return 0, or -1 with a reason in err. */
int wire_encode_raw_batch(const wire_raw_batch_t *m, wire_buf_t *out);
int wire_decode_raw_batch(const void *data, size_t len, arena_t *arena,
                          wire_raw_batch_t *m, char *err, size_t errlen);

int wire_encode_sym_batch(const wire_sym_batch_t *m, wire_buf_t *out);
int wire_decode_sym_batch(const void *data, size_t len, arena_t *arena,
                          wire_sym_batch_t *m, char *err, size_t errlen);

int wire_encode_proc_events(const wire_proc_events_t *m, wire_buf_t *out);
int wire_decode_proc_events(const void *data, size_t len, arena_t *arena,
                            wire_proc_events_t *m, char *err, size_t errlen);

int wire_encode_net_batch(const wire_net_batch_t *m, wire_buf_t *out);
int wire_decode_net_batch(const void *data, size_t len, arena_t *arena,
                          wire_net_batch_t *m, char *err, size_t errlen);

int wire_encode_task_set(const wire_task_set_t *m, wire_buf_t *out);
int wire_decode_task_set(const void *data, size_t len, arena_t *arena,
                         wire_task_set_t *m, char *err, size_t errlen);

int wire_encode_profile_batch(const wire_profile_batch_t *m, wire_buf_t *out);
int wire_decode_profile_batch(const void *data, size_t len, arena_t *arena,
                              wire_profile_batch_t *m, char *err,
                              size_t errlen);

int wire_encode_stats(const wire_stats_t *m, wire_buf_t *out);
int wire_decode_stats(const void *data, size_t len, arena_t *arena,
                      wire_stats_t *m, char *err, size_t errlen);

int wire_encode_hello(const wire_hello_t *m, wire_buf_t *out);
int wire_decode_hello(const void *data, size_t len, arena_t *arena,
                      wire_hello_t *m, char *err, size_t errlen);
int wire_encode_agg_peer(const wire_agg_peer_t *m, wire_buf_t *out);
int wire_decode_agg_peer(const void *data, size_t len, arena_t *arena,
                         wire_agg_peer_t *m, char *err, size_t errlen);
int wire_encode_agg_release(const wire_agg_release_t *m, wire_buf_t *out);
int wire_decode_agg_release(const void *data, size_t len, arena_t *arena,
                            wire_agg_release_t *m, char *err, size_t errlen);
int wire_encode_agg_idle(const wire_agg_idle_t *m, wire_buf_t *out);
int wire_decode_agg_idle(const void *data, size_t len, arena_t *arena,
                         wire_agg_idle_t *m, char *err, size_t errlen);

int wire_encode_proc_ids(const wire_proc_ids_t *m, wire_buf_t *out);
int wire_decode_proc_ids(const void *data, size_t len, arena_t *arena,
                         wire_proc_ids_t *m, char *err, size_t errlen);

int wire_encode_k8s_containers(const wire_k8s_containers_t *m,
                               wire_buf_t *out);
int wire_decode_k8s_containers(const void *data, size_t len, arena_t *arena,
                               wire_k8s_containers_t *m, char *err,
                               size_t errlen);

int wire_encode_policy_update(const wire_policy_update_t *m, wire_buf_t *out);
int wire_decode_policy_update(const void *data, size_t len, arena_t *arena,
                              wire_policy_update_t *m, char *err,
                              size_t errlen);

int wire_encode_trigger(const wire_trigger_t *m, wire_buf_t *out);
int wire_decode_trigger(const void *data, size_t len, arena_t *arena,
                        wire_trigger_t *m, char *err, size_t errlen);

int wire_encode_meters(const wire_meters_t *m, wire_buf_t *out);
int wire_decode_meters(const void *data, size_t len, arena_t *arena,
                       wire_meters_t *m, char *err, size_t errlen);

int wire_encode_net_report(const wire_net_report_t *m, wire_buf_t *out);
int wire_decode_net_report(const void *data, size_t len, arena_t *arena,
                           wire_net_report_t *m, char *err, size_t errlen);

/* Fill a header: version, sender, seq, now. */
void wire_header_set(wire_header_t *h, const char *sender, uint64_t seq);

#endif
