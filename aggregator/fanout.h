/* Query fan-out across aggregator replicas: each replica holds the flame
 * trees of its own pid buckets, so a query answered by any of them asks
 * every live peer for its local part (internal endpoints that never fan
 * out again, so there are no loops), merges and renders. Parts travel as
 * flame blobs (flame_blob.h: every node with both ns and counts, so the
 * merge loses nothing) or as process rows (agg_prows_text). Peers are
 * asked in parallel, each bounded in time and size; one that fails is
 * counted (fanout_errors) and the answer is marked partial. */
#ifndef SKYPROF_AGG_FANOUT_H
#define SKYPROF_AGG_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "replicas.h"

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

/* The internal request path for q (query string included). */
int agg_fanout_flame_path(const agg_query_t *q, char *out, size_t len);
/* Parses what agg_fanout_flame_path wrote back into q; strings point into
 * the caller's argument values. arg(ctx, name) returns a decoded query
 * argument or NULL. 0, or -1 with a reason. */
int agg_fanout_parse_query(const char *(*arg)(void *, const char *),
                           void *ctx, agg_query_t *q, char *err,
                           size_t errlen);

#endif
