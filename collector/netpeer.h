/* Which process is at the other end of a connection, when that end is on
 * this host: the collector fills wire_net_event_t.peer_pid with it.
 *
 * Connections of traced processes are registered at their OPEN; a peer is
 * first looked for among them (the reversed 4-tuple: both ends traced).
 * When the remote address is local (loopback, or one of our own addresses
 * seen as a local end) and no traced connection matches, the socket is
 * looked up in /proc/net/tcp{,6} (its inode) and the inode among the
 * processes' open files (/proc/PID/fd). That walk costs, so it is bounded:
 * at most NETPEER_PROC_LOOKUPS_PER_S a second, the answer cached with the
 * connection (a miss after NETPEER_PROC_ATTEMPTS tries).
 *
 * It also gives a side to connections whose open the probes did not see
 * (pre-existing): server when the local port is one a TCP socket listens
 * on (/proc/net/tcp{,6}, read at most once a second), else client. The
 * side of every tracked connection is kept, for its later events. Bounded table: connections beyond
 * max_conns are not tracked (counted). */
#ifndef SKYPROF_COLLECTOR_NETPEER_H
#define SKYPROF_COLLECTOR_NETPEER_H

#include <stddef.h>
#include <stdint.h>

#define NETPEER_PROC_LOOKUPS_PER_S 20
#define NETPEER_PROC_ATTEMPTS      3

typedef struct netpeer netpeer_t;

typedef struct {
    uint8_t proto;              /* enum wire_net_proto */
    uint8_t laddr[16], raddr[16];
    uint16_t lport, rport;
} netpeer_tuple_t;

/* proc_root: where /proc is ("/proc"; tests may point elsewhere). */
netpeer_t *netpeer_new(size_t max_conns, const char *proc_root);
void netpeer_destroy(netpeer_t **self_p);

/* A connection of traced process pid opened (or was found); role as
 * enum wire_net_role, 0 when unknown. Returns the role kept for it: the
 * one given, or for an unknown one of TCP the one netpeer infers. */
uint8_t netpeer_open(netpeer_t *self, uint64_t conn_id, uint32_t pid,
                     const netpeer_tuple_t *t, uint8_t role, uint64_t now_ms);
/* The role kept for conn_id, 0 when unknown or not tracked. */
uint8_t netpeer_role(const netpeer_t *self, uint64_t conn_id);
void netpeer_close(netpeer_t *self, uint64_t conn_id);
/* Forgets connections no event mentioned for max_idle_ms (their close was
 * never seen: a UDP or unix socket, a killed process). Returns how many. */
size_t netpeer_expire(netpeer_t *self, uint64_t now_ms, uint64_t max_idle_ms);

/* The peer process of conn_id, 0 when remote, unknown or not tracked.
 * now_ms (monotonic) paces the /proc lookups. */
uint32_t netpeer_peer(netpeer_t *self, uint64_t conn_id, uint64_t now_ms);

typedef struct {
    uint64_t conns;             /* tracked now */
    uint64_t untracked;         /* not tracked: table full */
    uint64_t matched;           /* peers found among traced connections */
    uint64_t proc_lookups;      /* /proc walks done */
    uint64_t proc_found;        /* ... that found the process */
    uint64_t proc_deferred;     /* lookups put off by the rate bound */
    uint64_t expired;           /* forgotten after max_idle_ms unseen */
} netpeer_stats_t;

void netpeer_stats(const netpeer_t *self, netpeer_stats_t *out);

#endif
