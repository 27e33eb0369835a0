/* The route table of the HTTP API (routes.c): every endpoint once, with
 * its method, path, handler, whether it asks the other replicas, and one
 * line of help. The server dispatches from it, --help lists it and
 * mk/gen-api-doc.py writes docs/api.md's endpoint table from its source,
 * so adding an endpoint is a row here and a handler. */
#ifndef SKYPROF_AGG_ROUTES_H
#define SKYPROF_AGG_ROUTES_H

#include <stddef.h>

#include "aggregator/http/request.h"

typedef void (api_handler_fn)(api_request_t *req, api_reply_t *r);

typedef struct {
    const char *method;        /* "GET" (answers HEAD too) or "POST" */
    const char *path;          /* exact; the query string is not part */
    api_handler_fn *handler;
    /* Asks every live replica for its part and merges (docs/api.md,
     * "Replicas"), unless the request says local=1. */
    int fans_out;
    /* Served without the token (guard.h): holds no data. */
    int open;
    const char *args;          /* query arguments, for the help; "" none */
    const char *help;          /* one line */
} api_route_t;

extern const api_route_t api_routes[];
extern const size_t api_nroutes;

/* The handlers, by the file that holds them. */
/* flames.c */
api_handler_fn api_profile_tracing, api_tree, api_folded, api_pprof,
    api_svg;
/* listings.c */
api_handler_fn api_processes, api_tasks_get, api_tasks_post,
    api_internal_flame, api_internal_processes, api_metrics, api_healthz;
/* page.c */
api_handler_fn api_index;

#endif
