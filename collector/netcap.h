/* The collector's network capture (issue 14, docs/network.md): loads
 * bpf/net.bpf.c while at least one process is targeted by an active
 * NETWORK task (hosts without one pay nothing), keeps its pid filter in
 * step with the task set, finds the sockets a process already had when it
 * joined (iter/task_file), attaches the TLS uprobes to the libssl each
 * traced process maps (collector/netssl.h; rescanned every 2 s for
 * libraries mapped later), drains the event ring and publishes the events
 * as net.events.BB batches by pid bucket, with the local peer process of
 * each connection (collector/netpeer.h).
 *
 * The ring is consumed on the collector's drain timer and on its epoll fd,
 * registered with the loop while attached (the BPF side wakes it only when
 * the ring fills past a quarter). Events wait in a bounded buffer until
 * netcap_flush; events beyond it, and records the ring had no room for,
 * are counted and reported in the next batch's `lost`. */
#ifndef SKYPROF_COLLECTOR_NETCAP_H
#define SKYPROF_COLLECTOR_NETCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "wire.h"

typedef struct netcap netcap_t;

typedef struct {
    uint32_t capture_bytes;   /* payload prefix per call, <= WIRE_MAX_NET_PAYLOAD */
    uint64_t ring_bytes;      /* ring buffer size (power of two, >= 64 KiB) */
    uint32_t max_conns;       /* sockets followed at once (kernel and peers) */
    uint32_t max_pending;     /* events held between two flushes */
    uint32_t max_batch;       /* events per published batch */
} netcap_options_t;

#define NETCAP_DEFAULT_CAPTURE 1024u
#define NETCAP_DEFAULT_RING    (8u << 20)

void netcap_options_default(netcap_options_t *opts);

/* emit publishes one batch on topic (net.events.BB); 0, or -1 when it
 * could not (counted). The batch is valid during the call. */
typedef int (*netcap_emit_fn)(void *arg, const char *topic,
                              wire_net_batch_t *batch);

/* Loads nothing yet. NULL when out of memory or the options are out of
 * range. */
netcap_t *netcap_new(const netcap_options_t *opts, loop_t *loop,
                     netcap_emit_fn emit, void *arg);
/* Detaches (without publishing what is pending). */
void netcap_destroy(netcap_t **self_p);

/* Makes the filter hold exactly these pids (sorted, unique). The first
 * pid loads and attaches the programs; new pids get their open sockets
 * reported; an empty set drains, publishes and unloads. 0, or -1 when the
 * programs could not be attached (logged; retried at the next change). */
int netcap_set_pids(netcap_t *self, const uint32_t *pids, size_t n);

/* Consumes the ring into the pending events. Returns how many. */
int netcap_drain(netcap_t *self);
/* Publishes the pending events (after a drain). Returns batches sent. */
int netcap_flush(netcap_t *self);

bool netcap_attached(const netcap_t *self);

typedef struct {
    uint64_t events;          /* records written by the BPF side */
    uint64_t ring_lost;       /* records lost: ring full */
    uint64_t truncated;       /* DATA whose payload was cut */
    uint64_t captured_bytes;  /* payload bytes captured */
    uint64_t args_lost;       /* syscalls lost: per-thread map full */
    uint64_t conns_lost;      /* sockets not followed: map full */
    uint64_t read_errors;     /* payload reads that failed */
    uint64_t mmsg_calls;      /* sendmmsg/recvmmsg: counted, not parsed */
    uint64_t ssl_libraries;   /* (process, libssl) pairs with uprobes now */
    uint64_t ssl_attach_errors;
    uint64_t ssl_untied;      /* TLS calls on no known socket (not kept) */
    uint64_t received;        /* records read from the ring */
    uint64_t invalid;         /* malformed records */
    uint64_t dropped_user;    /* events over max_pending */
    uint64_t published;       /* events in published batches */
    uint64_t batches;
    uint64_t publish_errors;
    uint64_t attaches;
    uint64_t attach_errors;   /* programs that failed to load or attach */
    uint64_t peers_matched;   /* peer pids found among traced connections */
    uint64_t peers_proc;      /* ... found through /proc */
    uint32_t npids;
} netcap_stats_t;

void netcap_stats(const netcap_t *self, netcap_stats_t *out);

/* Sockets followed in the kernel now, and connections in the peer table
 * (walks the map; for tests). */
size_t netcap_conn_entries(const netcap_t *self, size_t *peers);

#endif
