/* Every endpoint of the aggregator's HTTP API, once: X-macro table.
 *
 *   ROUTE(method, path, handler, fans_out, open, args, help)
 *
 * method: "GET" (answers HEAD too) or "POST" (a JSON body). path: exact,
 * without the query string; a replica.h macro where the replica room's
 * client builds the same path. handler: an api_handler_fn (routes.h
 * declares it from this line). fans_out: 1 when the answer merges every
 * live replica's part (unless the request says local=1). open: 1 when it
 * is served without the token (it holds no data). args: the query
 * arguments as --help and docs/api.md show them ("" none). help: one line.
 *
 * routes.h declares the handlers from it, routes.c builds the table the
 * server dispatches from and --help prints, mk/gen-api-doc.py writes
 * docs/api.md's endpoint table from it. Adding an endpoint: a line here
 * and its handler. */
ROUTE("POST", "/v1/profile/ProfileTracing", api_profile_tracing, 1, 0, "",
      "flame tree of a process name or Total in DeepFlow's shape")
ROUTE("GET", "/api/tree", api_tree, 1, 0,
      "task_id=|pid=&event=&start&end",
      "SkyWalking's analysed tree of a task or a process")
ROUTE("GET", "/api/folded", api_folded, 1, 0,
      "app_service=|pid=|task_id=&event=&unit=&start&end",
      "folded stacks, one line per leaf")
ROUTE("GET", "/api/pprof", api_pprof, 1, 0,
      "app_service=|pid=|task_id=&event=&start&end",
      "gzip'ed pprof profile")
ROUTE("GET", "/api/flamegraph.svg", api_svg, 1, 0,
      "app_service=|pid=|task_id=&event=&start&end",
      "interactive SVG flame graph")
ROUTE("GET", "/api/processes", api_processes, 1, 0,
      "start&end&namespace=&pod=&container=",
      "CPU and off-CPU totals per process, one row per (pid, node)")
ROUTE("GET", "/api/network", api_network, 1, 0, "pid=",
      "network view: processes and their peers with bytes, RTT and "
      "request rates, endpoints with error rate and latency, samples")
ROUTE("GET", "/api/tasks", api_tasks_get, 0, 0, "",
      "profiling tasks: active, requested and finished")
ROUTE("POST", "/api/tasks", api_tasks_post, 0, 0, "",
      "asks the policy-engine for a fixed-time task")
ROUTE("GET", "/", api_index, 0, 1, "",
      "the HTML page")
ROUTE("GET", "/metrics", api_metrics, 0, 0, "",
      "Prometheus text: the aggregator's counters, then every other "
      "stage's")
ROUTE("GET", "/healthz", api_healthz, 0, 1, "",
      "answers ok while the server runs")
ROUTE("GET", AGG_FANOUT_PATH_FLAME, api_internal_flame, 0, 0,
      "sel&kind&start_ms&end_ms&threads&pid&has_pid&name&task&nodes&node=",
      "a replica's own part of a flame query, as a flame blob")
ROUTE("GET", AGG_FANOUT_PATH_PROCS, api_internal_processes, 0, 0,
      "start_ms&end_ms",
      "a replica's own process rows, tab-separated")
