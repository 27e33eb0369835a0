/* The route table of the HTTP API (see routes.h), and the --help text
 * made from it. mk/gen-api-doc.py parses the rows below for docs/api.md:
 * keep each row's fields literal (strings, or a replica.h path macro). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/core/agg.h"
#include "aggregator/http/routes.h"

const api_route_t api_routes[] = {
    /* method, path, handler, fans_out, open, args, help */
    { "POST", "/v1/profile/ProfileTracing", api_profile_tracing, 1, 0, "",
      "flame tree of a process name or Total in DeepFlow's shape" },
    { "GET", "/api/tree", api_tree, 1, 0,
      "task_id=|pid=&event=&start&end",
      "SkyWalking's analysed tree of a task or a process" },
    { "GET", "/api/folded", api_folded, 1, 0, "app_service=|pid=|task_id=&event=&unit=&start&end",
      "folded stacks, one line per leaf" },
    { "GET", "/api/pprof", api_pprof, 1, 0, "app_service=|pid=|task_id=&event=&start&end",
      "gzip'ed pprof profile" },
    { "GET", "/api/flamegraph.svg", api_svg, 1, 0, "app_service=|pid=|task_id=&event=&start&end",
      "interactive SVG flame graph" },
    { "GET", "/api/processes", api_processes, 1, 0,
      "start&end&namespace=&pod=&container=",
      "CPU and off-CPU totals per process, one row per (pid, node)" },
    { "GET", "/api/tasks", api_tasks_get, 0, 0, "",
      "profiling tasks: active, requested and finished" },
    { "POST", "/api/tasks", api_tasks_post, 0, 0, "",
      "asks the policy-engine for a fixed-time task" },
    { "GET", "/", api_index, 0, 1, "", "the HTML page" },
    { "GET", "/metrics", api_metrics, 0, 0, "",
      "Prometheus text: the aggregator's counters, then every other "
      "stage's" },
    { "GET", "/healthz", api_healthz, 0, 1, "", "answers ok while the server runs" },
    { "GET", AGG_FANOUT_PATH_FLAME, api_internal_flame, 0, 0,
      "sel&kind&start_ms&end_ms&threads&pid&has_pid&name&task&nodes&node=",
      "a replica's own part of a flame query, as a flame blob" },
    { "GET", AGG_FANOUT_PATH_PROCS, api_internal_processes, 0, 0,
      "start_ms&end_ms", "a replica's own process rows, tab-separated" },
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
