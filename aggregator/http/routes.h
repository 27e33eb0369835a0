/* The route table of the HTTP API: every endpoint once (route_table.h),
 * with its method, path, handler, whether it asks the other replicas,
 * whether it needs the token, its arguments and one line of help. The
 * server dispatches from it, --help lists it and mk/gen-api-doc.py writes
 * docs/api.md's endpoint table from it. */
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

/* Every handler of route_table.h (flames.c, listings.c, page.c). */
#define ROUTE(method, path, handler, fans_out, open, args, help) \
    api_handler_fn handler;
#include "aggregator/http/route_table.h"
#undef ROUTE

#endif
