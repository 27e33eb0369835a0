/* Inside the network room: connections, traffics, endpoints, sampling and
 * the report builder, and the hooks protocol modules call. Not for other
 * rooms (they use net.h). */
#ifndef SKYPROF_AGG_NET_INT_H
#define SKYPROF_AGG_NET_INT_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/net/net.h"
#include "aggregator/net/protocol.h"
#include "arena.h"
#include "hashmap.h"

/* ------------------------------------------------ meters (traffic.c) */
/* The reference agent's bucket lists (its layer4 and http1 analyzers):
 * each value is a bucket's lower bound; a value counts in the last bucket
 * whose bound is <= it (the first bucket also takes smaller ones). */
#define NET_L4_BUCKETS 34
#define NET_SIZE_BUCKETS 25
#define NET_DUR_BUCKETS 45
extern const double net_l4_bounds_ns[NET_L4_BUCKETS];
extern const double net_l4_bounds_us[NET_L4_BUCKETS];
extern const double net_size_bounds[NET_SIZE_BUCKETS];
extern const double net_dur_bounds_ms[NET_DUR_BUCKETS];
/* Index of the bucket v counts in. */
size_t net_bucket(const double *bounds, size_t n, double v);

typedef struct { uint64_t count, bytes, exe; } net_counter_t;

/* L4 counters, in the reference's order of names. */
enum { NET_C_WRITE, NET_C_READ, NET_C_WRITE_RTT, NET_C_CONNECT, NET_C_CLOSE,
       NET_C_RETRANSMIT, NET_C_DROP, NET_C_COUNT };
/* L4 histograms. */
enum { NET_H_WRITE_RTT, NET_H_WRITE_EXE, NET_H_READ_EXE, NET_H_CONNECT_EXE,
       NET_H_CLOSE_EXE, NET_H_COUNT };

/* ------------------------------------------------- samples (sampling.c) */
#define NET_REASONS 3          /* status_5xx, status_4xx, slow */
#define NET_TOPN 10            /* kept per reason per traffic per report */
#define NET_SAMPLE_MAX 16384   /* bytes of a sampled request or response */
#define NET_TRACE_ID_MAX 128

typedef enum { NET_REASON_5XX = 0, NET_REASON_4XX, NET_REASON_SLOW } net_reason_t;
const char *net_reason_name(net_reason_t r);

typedef struct {
    const char *provider;      /* "skywalking", "zipkin", "w3c"; NULL none */
    char trace_id[NET_TRACE_ID_MAX];
    char segment_id[NET_TRACE_ID_MAX];
    char span_id[NET_TRACE_ID_MAX];
} net_trace_t;

/* A header field line ("name: value"): fills t when it carries a trace
 * context ranking above what t holds (sw8, then b3, then x-b3-traceid +
 * x-b3-spanid, then traceparent). A broken value is ignored. */
void net_trace_field(net_trace_t *t, const char *line, size_t len);
/* 1 when t holds a whole trace context (a lone x-b3 half does not). */
int net_trace_valid(const net_trace_t *t);

typedef struct {
    int has_re;
    regex_t re;
    int64_t min_duration_ms;   /* -1: no duration rule */
    int when4xx, when5xx;
    int want_req, want_resp;   /* settings.requireComplete* */
    uint32_t max_req, max_resp;
} net_rule_t;

typedef struct net_rules net_rules_t;
/* The task's ExtensionConfigJSON; NULL with a reason when refused. An
 * empty document gives rules that sample nothing. */
net_rules_t *net_rules_parse(const char *json, char *err, size_t errlen);
void net_rules_destroy(net_rules_t **self_p);
/* 1 when self holds a rule (NULL or an empty list: 0). */
int net_rules_any(const net_rules_t *self);
/* The rule for a URI: the first whose uriRegex matches, else the
 * default rule, else NULL. */
const net_rule_t *net_rules_match(const net_rules_t *self, const char *uri);
/* Why an exchange is sampled under rule r (5xx, then 4xx, then slow);
 * -1: it is not. */
int net_rule_reason(const net_rule_t *r, int status, double dur_ms);

typedef struct {
    uint32_t pid, peer_pid;
    uint8_t role, is_ssl;
    char peer[64];
    char method[16];
    char uri[512];
    uint32_t status;
    net_reason_t reason;
    double dur_ms;
    uint64_t start_ms, end_ms;
    net_trace_t trace;
    uint8_t *req, *resp;       /* malloc'ed, may be NULL */
    uint32_t req_len, resp_len;
} net_sample_t;
void net_sample_free(net_sample_t **s_p);

/* ------------------------------------------------ traffics (traffic.c) */
/* A local process and one peer, as the reference agent's ProcessTraffic:
 * the key of the meters. */
struct net_traffic {
    uint64_t hash;
    uint32_t pid, peer_pid;
    uint8_t role;              /* enum wire_net_role as reported */
    uint8_t is_ssl;
    const net_protocol_t *proto;   /* NULL: none detected ("unknown") */
    char peer[64];             /* "ip:port" ("" when peer_pid is set) */
    /* this interval */
    net_counter_t c[NET_C_COUNT];
    uint64_t h[NET_H_COUNT][NET_L4_BUCKETS];
    void *l7;                  /* proto->meters_new() */
    net_sample_t *top[NET_REASONS][NET_TOPN]; /* longest first */
    /* since the traffic appeared, for the local view */
    uint64_t bytes_out, bytes_in, rtt_us_sum, rtt_n;
    uint64_t requests, errors;
    uint64_t requests_prev, requests_last; /* totals at the last flush, and
                                            * the last interval's count */
    uint64_t last_ms;          /* wall clock of its last activity */
    uint32_t nconns;           /* connections pointing at it */
};

typedef struct net_traffics net_traffics_t;
net_traffics_t *net_traffics_new(size_t max);
void net_traffics_destroy(net_traffics_t **self_p);
/* The traffic of a key, created on first use; NULL when the table is full
 * (the caller counts). */
net_traffic_t *net_traffics_get(net_traffics_t *self, uint32_t pid,
                                uint8_t role, uint32_t peer_pid,
                                const char *peer, uint8_t is_ssl,
                                const net_protocol_t *proto);
size_t net_traffics_count(const net_traffics_t *self);
/* Iteration, as hashmap_next. */
net_traffic_t *net_traffics_next(const net_traffics_t *self, size_t *cursor);
/* Drops traffics idle since before idle_before_ms with no connection. */
void net_traffics_expire(net_traffics_t *self, uint64_t idle_before_ms);
size_t net_traffics_memory(const net_traffics_t *self);

/* Keeps s among t's top N of its reason (longest first); takes it. */
void net_traffic_offer(net_traffic_t *t, net_sample_t *s);
/* Side of a traffic as the reference names it: "client" or "server"
 * (unknown counts as client there). */
const char *net_role_name(uint8_t role);

/* ---------------------------------------------- the report (report.c) */
struct net_report_builder {
    arena_t *arena;
    wire_net_meter_t *meters;
    uint32_t nmeters, cap;
    wire_net_sample_t *samples;
    uint32_t nsamples, scap;
    int failed;                /* a bound or the arena refused */
};
void net_rb_init(net_report_builder_t *b, arena_t *arena);
/* A single value meter of traffic t: "side", "protocol", "is_ssl" labels,
 * and code when code_label is set. */
void net_rb_value(net_report_builder_t *b, const net_traffic_t *t,
                  const char *name, double value, const char *code_label);
/* A histogram meter; skipped when every count is 0 (as the reference). */
void net_rb_hist(net_report_builder_t *b, const net_traffic_t *t,
                 const char *name, const double *bounds,
                 const uint64_t *counts, size_t n);
void net_rb_sample(net_report_builder_t *b, const net_sample_t *s);
/* "<role>_<what>" style names, in the arena. */
const char *net_rb_name(net_report_builder_t *b, const char *fmt,
                        const char *a, const char *c);

/* ------------------------------------------- connections (conns.c) */
/* What a connection added to its traffic in this interval, so that it
 * follows the connection when its traffic's key changes: its protocol is
 * detected after its connect, its TLS after its handshake's syscalls.
 * One connection stays one traffic. Kept for its first NET_LEDGER_HIST
 * histogram entries of the interval (gen: the room's flush count); past
 * them it is given up (over) and later moves leave the figures where they
 * were counted. */
#define NET_LEDGER_HIST 48   /* a TLS handshake: ~15 syscalls */
typedef struct {
    net_counter_t c[NET_C_COUNT];
    struct { uint8_t h, bucket; } hist[NET_LEDGER_HIST];
    uint8_t nhist, over;
    uint32_t gen;
    uint64_t bytes_out, bytes_in, rtt_us_sum, rtt_n;
} net_ledger_t;

struct net_conn {
    uint64_t node_hash, conn_id;       /* the key */
    uint32_t pid, peer_pid;
    uint8_t role, l4, is_ssl;
    uint8_t detect;            /* NET_CONN_DETECT_* */
    uint8_t detect_tries;
    char peer[64];             /* "ip:port" of raddr, rport */
    uint8_t raddr[16];
    uint16_t rport;
    int64_t wall_off_ns;       /* wall clock - collector's monotonic */
    const net_protocol_t *proto;
    void *pst;                 /* proto's state */
    net_traffic_t *traffic;
    net_ledger_t ledger;       /* its first L4 figures, see net_ledger_t */
    net_t *room;
    net_conn_t *lru_prev, *lru_next; /* most recent first */
};
enum { NET_CONN_DETECT_PENDING = 0, NET_CONN_DETECT_DONE = 1 };

typedef struct net_conns net_conns_t;
/* evict: called with a connection the table drops to make room. */
typedef void (net_conn_evict_fn)(net_conn_t *c, void *arg);
net_conns_t *net_conns_new(size_t max, net_conn_evict_fn *evict, void *arg);
void net_conns_destroy(net_conns_t **self_p);
net_conn_t *net_conns_find(net_conns_t *self, uint64_t node_hash,
                           uint64_t conn_id);
/* A new zeroed connection with the key, most recent; the least recently
 * used one is evicted first when full. NULL without memory. */
net_conn_t *net_conns_add(net_conns_t *self, uint64_t node_hash,
                          uint64_t conn_id);
void net_conns_touch(net_conns_t *self, net_conn_t *c);
/* Unlinks and frees c (the caller closed its protocol state). */
void net_conns_remove(net_conns_t *self, net_conn_t *c);
size_t net_conns_count(const net_conns_t *self);
net_conn_t *net_conns_next(const net_conns_t *self, size_t *cursor);

/* ------------------------------------------- hooks for the modules */
stats_t *net_stats(net_t *room);
/* Wall-clock milliseconds of a collector monotonic time on conn. */
uint64_t net_conn_wall_ms(const net_conn_t *c, uint64_t ts_ns);
/* 1 when the connection's process has sampling rules. */
int net_sampling_on(net_t *room, uint32_t pid);
const net_rule_t *net_rule_for(net_t *room, uint32_t pid, const char *uri);
/* One paired request of a process: the (pid, URI) row for the monitors
 * and the local view. */
void net_endpoint_record(net_t *room, uint32_t pid, const char *uri,
                         int status, double dur_ms);

#endif
