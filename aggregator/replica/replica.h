/* The replica room of the aggregator (aggregator/README.md): this replica
 * as a member of the group, what it knows of the others and how a query
 * asks them. Its one public header; http_get.h is the room's own. */
#ifndef SKYPROF_AGG_REPLICA_H
#define SKYPROF_AGG_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/core/agg.h"
#include "stage.h"
#include "wire.h"

/* ------------------------------------------------------------ replicas.c
 * The other aggregator replicas as their ctl.agg.peer announcements tell:
 * where each one's HTTP API is, for query fan-out, and which ones left
 * recently, because their history left with them (a query over a range
 * they held is then reported partial). Bounded; written by the loop
 * thread, read by HTTP threads (own lock). */

#define AGG_REPLICAS_MAX 32
#define AGG_REPLICAS_TIMEOUT_MS 3500
#define AGG_REPLICAS_DEPARTED_MAX 16

typedef struct {
    char instance[WIRE_MAX_AGG_INSTANCE + 1];
    char addr[WIRE_MAX_AGG_ADDR + 1];
} agg_replica_t;

typedef struct agg_replicas agg_replicas_t;

/* self_instance: our own announcements are ignored. history_ms: how long
 * a departure is remembered. */
agg_replicas_t *agg_replicas_new(const char *self_instance,
                                 uint64_t history_ms);
void agg_replicas_destroy(agg_replicas_t **self_p);

/* Loop thread. wall_ms dates departures. -1 when the table is full. */
int agg_replicas_on_peer(agg_replicas_t *self, const wire_agg_peer_t *m,
                         uint64_t mono_ms, uint64_t wall_ms);
void agg_replicas_expire(agg_replicas_t *self, uint64_t mono_ms,
                         uint64_t wall_ms);
/* Some other replica was ever heard from. */
int agg_replicas_ever_seen(agg_replicas_t *self);

/* Any thread. Copies up to max live peers into out. */
size_t agg_replicas_live(agg_replicas_t *self, agg_replica_t *out,
                         size_t max);
/* Describes ("a2 left at 1700000000") the replicas that left after
 * since_wall_ms into text; returns how many. */
size_t agg_replicas_departed(agg_replicas_t *self, uint64_t since_wall_ms,
                             char *text, size_t len);

/* -------------------------------------------------------------- fanout.c
 * Query fan-out across aggregator replicas: each replica holds the flame
 * trees of its own pid buckets, so a query answered by any of them asks
 * every live peer for its local part (internal endpoints that never fan
 * out again, so there are no loops), merges and renders. Parts travel as
 * flame blobs (flame_blob.h: every node with both ns and counts, so the
 * merge loses nothing) or as process rows (agg_prows_text). Peers are
 * asked in parallel, each bounded in time and size; one that fails is
 * counted (fanout_errors) and the answer is marked partial. */

#define AGG_FANOUT_PATH_FLAME "/api/internal/flame"
#define AGG_FANOUT_PATH_PROCS "/api/internal/processes"
/* Longest app_service or task_id a part can be asked for (it travels
 * URL-encoded in the request line); a longer one asks no peer and the
 * answer says partial. */
#define AGG_FANOUT_MAX_NAME 512
/* Most process rows one peer's part may hold. A peer's parts are bounded
 * in what they expand to whatever their size on the wire: rows by this,
 * flame blobs by aggregator.max_nodes nodes of FLAME_BLOB_NODE_BYTES. */
#define AGG_FANOUT_MAX_ROWS (1u << 17)

typedef struct agg_fanout agg_fanout_t;

/* auth_token (NULL or "" = none) is sent to every peer as a bearer
 * token: replicas share aggregator.auth_token. */
agg_fanout_t *agg_fanout_new(agg_t *agg, agg_replicas_t *replicas,
                             uint64_t timeout_ms, size_t max_reply,
                             const char *auth_token);
void agg_fanout_destroy(agg_fanout_t **self_p);

/* The local tree merged with every peer's; partial gets a description of
 * what is missing ("" when nothing). NULL on allocation failure. */
flame_t *agg_fanout_query(agg_fanout_t *self, const agg_query_t *q,
                          char *partial, size_t plen);
/* Local rows plus every peer's, merged. 0 or -1. */
int agg_fanout_processes(agg_fanout_t *self, uint64_t start_ms,
                         uint64_t end_ms, agg_prows_t *rows, char *partial,
                         size_t plen);

/* Parts another room merges itself (the network view): every live peer's
 * answer to path (a public route asked with local=1) goes to fn, which
 * returns 0 when it took the part, -1 when the part is bad; a peer that
 * fails or sends a bad part is counted and named in partial. */
typedef int (*agg_fanout_part_fn)(void *arg, const char *body, size_t len);
void agg_fanout_each(agg_fanout_t *self, const char *path,
                     agg_fanout_part_fn fn, void *arg, char *partial,
                     size_t plen);

/* The internal request path for q (query string included). */
int agg_fanout_flame_path(const agg_query_t *q, char *out, size_t len);
/* Parses what agg_fanout_flame_path wrote back into q; strings point into
 * the caller's argument values. arg(ctx, name) returns a decoded query
 * argument or NULL. 0, or -1 with a reason. */
int agg_fanout_parse_query(const char *(*arg)(void *, const char *),
                           void *ctx, agg_query_t *q, char *err,
                           size_t errlen);

/* -------------------------------------------------------------- member.c
 * This replica as a member of the group (aggregator.sharding): the pid
 * buckets it owns (lib/shard.c) and their exact hand-over (core's
 * handover.h) over ctl.agg.claim, ctl.agg.release and ctl.agg.idle, the
 * roster of the other replicas heard on ctl.agg.peer and its own
 * announcement there, and the fan-out its HTTP API answers through. Loop thread, but for the
 * fan-out, which the HTTP threads use. */

typedef struct agg_member agg_member_t;

typedef struct {
    stage_t *stage;                /* its bus, loop, stats and instance */
    agg_t *agg;
    uint64_t history_ms;           /* how long a departure is remembered */
    /* Where peers reach this replica's HTTP API ("host:port"); NULL or ""
     * without one: nothing fans out then. */
    const char *advertise;
    uint64_t fanout_timeout_ms;    /* aggregator.fanout_timeout */
    size_t fanout_max_reply;
    const char *auth_token;        /* sent to the peers; NULL or "" none */
} agg_member_opts_t;

/* Subscribes to ctl.agg.*, joins the shard of sym.stacks, announces
 * itself and ticks on the stage's loop. NULL after logging why. */
agg_member_t *agg_member_new(const agg_member_opts_t *opts);
/* Detaches the hand-over from the core; destroy the HTTP API before. */
void agg_member_destroy(agg_member_t **self_p);
/* What the HTTP API fans out with; NULL without an API. */
agg_fanout_t *agg_member_fanout(agg_member_t *self);
/* Before every drain of the bus: the hand-over learns what the shard owns
 * now. NULL-safe. */
void agg_member_sync(agg_member_t *self);
/* Gives every bucket up at the end (announces, hands over, waits for the
 * releases within the grace period plus a second). */
void agg_member_leave(agg_member_t *self);

#endif
