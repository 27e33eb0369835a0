/* A request as the endpoint handlers see it, their reply, and the
 * helpers every handler shares (request.c): argument parsing and the
 * queries that fan out to the replicas. Handlers fill a reply; they never
 * touch MHD objects except to read arguments through api_arg(). The
 * server (server.c) builds requests and dispatches them through the route
 * table (routes.h); nothing here knows either. */
#ifndef SKYPROF_AGG_REQUEST_H
#define SKYPROF_AGG_REQUEST_H

#include "aggregator/core/agg.h"
#include "aggregator/http/api.h"
#include "aggregator/replica/replica.h"
#include "arena.h"
#include "json.h"

typedef struct {
    int status;
    const char *content_type;
    const char *disposition;   /* Content-Disposition, or NULL */
    char *body;                /* malloc'ed */
    size_t len;
    /* What the answer lacks (a replica that did not answer, or left
     * with its history): sent as X-Skyprof-Partial. "" = complete. */
    char partial[512];
} api_reply_t;

struct MHD_Connection;

typedef struct {
    agg_t *agg;
    /* The replicas the query asks as well: the server sets it for a route
     * that fans out unless the request says local=1; NULL answers from
     * this replica alone. */
    agg_fanout_t *fanout;
    /* The network room (GET /api/network); NULL when the stage has none. */
    net_t *net;
    const char *body;          /* len bytes (NUL after them), or NULL */
    size_t len;
    struct MHD_Connection *conn;
} api_request_t;

/* A query-string argument, or NULL. */
const char *api_arg(api_request_t *req, const char *name);

void api_reply_error(api_reply_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Takes b's data as the body (500 when it ran out of room). */
void api_reply_buf(api_reply_t *r, agg_buf_t *b, const char *content_type);
/* Takes body (malloc'ed, len bytes) as a 200 answer; NULL (allocation
 * failed) makes it a 500. */
void api_reply_take(api_reply_t *r, void *body, size_t len,
                    const char *content_type);
/* A copy of text as the body. */
void api_reply_text(api_reply_t *r, const char *text,
                    const char *content_type);

/* A decimal without sign. 0, or -1 when s is not one or overflows. */
int api_parse_u64(const char *s, uint64_t *out);

/* Request bodies are one JSON object (lib/json.c, trailing commas allowed:
 * some ProfileTracing clients write them) of at most API_MAX_BODY_FIELDS
 * members. The object, parsed into *arena (created here, the caller
 * destroys it, also on failure); NULL after a 400 (500 when out of
 * memory). */
#define API_MAX_BODY_FIELDS 32
const json_value_t *api_body_object(api_request_t *req, arena_t **arena,
                                    api_reply_t *r);
/* The member named key, the last one when it repeats; NULL when absent. */
const json_value_t *api_body_get(const json_value_t *obj, const char *key);

/* Common query arguments: start/end (unix seconds, default the last
 * AGG_DEFAULT_RANGE_S), event (on-cpu|off-cpu), and the view selector
 * (app_service | pid | task_id). 0, or -1 after filling a 400 reply. */
int api_parse_range(api_request_t *req, api_reply_t *r, uint64_t *start_ms,
                    uint64_t *end_ms);
int api_parse_query(api_request_t *req, api_reply_t *r, agg_query_t *q);
/* namespace=, pod=, container= (each 1 to AGG_MAX_POD_FILTER bytes) into
 * q's filters. 0, or -1 after filling a 400 reply. */
int api_parse_pod_filters(api_request_t *req, api_reply_t *r,
                          agg_query_t *q);

/* The query answered over req->fanout's replicas as well (when set),
 * r->partial filled; NULL after a 500 reply, or a 400 when a pid without
 * node= names processes on several nodes. */
flame_t *api_query(api_request_t *req, const agg_query_t *q, api_reply_t *r);
/* Process rows the same way. 0, or -1 after a 500 reply. */
int api_process_rows(api_request_t *req, uint64_t start_ms, uint64_t end_ms,
                     agg_prows_t *rows, api_reply_t *r);

/* Display label of a node: "[k] ", "[l] ", "[p] ", "[t] " prefixes as
 * DeepFlow shows them; other types keep their raw name. */
void api_label(agg_buf_t *b, const flame_node_t *n);

#endif
