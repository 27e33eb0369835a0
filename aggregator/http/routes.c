/* The route table of the HTTP API (rows in route_table.h, see routes.h)
 * and the --help text made from it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/agg.h"
#include "aggregator/http/routes.h"

const api_route_t api_routes[] = {
#define ROUTE(method, path, handler, fans_out, open, args, help) \
    { method, path, handler, fans_out, open, args, help },
#include "aggregator/http/route_table.h"
#undef ROUTE
};

const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

char *
agg_api_help(void)
{
    agg_buf_t b;
    agg_buf_init(&b, 0);
    agg_buf_puts(&b, "HTTP API on aggregator.http_addr (docs/api.md); "
                 "* = asks every replica:\n");
    for (size_t i = 0; i < api_nroutes; i++) {
        const api_route_t *rt = &api_routes[i];
        const char *body = strcmp(rt->method, "POST") == 0 ? " (JSON body)"
                                                           : "";
        agg_buf_printf(&b, "  %s %s%s%s%s%s\n      %s\n", rt->method,
                       rt->path, rt->args[0] ? "?" : "", rt->args, body,
                       rt->fans_out ? " *" : "", rt->help);
    }
    agg_buf_puts(&b, "With aggregator.sharding, replicas share the pid "
                 "buckets (rendezvous hashing,\nexact hand-over); local=1 "
                 "answers from one replica alone.");
    return agg_buf_take(&b, NULL);
}
