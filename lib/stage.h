/* What every stage's main does first: parse --help/--config/-v, load and
 * validate the configuration, set up logging, the loop, the ZeroMQ context,
 * the bus, the counters, the periodic stats publication and, when
 * <stage>.http_addr is set, the per-stage HTTP endpoint (/metrics,
 * /healthz; lib/health_http.h) with its liveness beat. The aggregator is
 * the exception: it serves /metrics and /healthz on its own API port. */
#ifndef SKYPROF_STAGE_H
#define SKYPROF_STAGE_H

#include "bus.h"
#include "config.h"
#include "loop.h"
#include "stats.h"

typedef struct {
    const char *name;         /* "collector", used in topics and config */
    const char *summary;      /* one line for --help */
    const char *extra_help;   /* stage-specific options text, or NULL */
} stage_desc_t;

typedef struct stage {
    const stage_desc_t *desc;
    config_t *cfg;
    loop_t *loop;
    void *zmq_ctx;
    bus_t *bus;
    bus_curve_t *curve;       /* CURVE keys for tcp:// (enabled 0: off) */
    stats_t *stats;
    char instance[48];
    char sender[64];          /* "<name>/<instance>" */
    void *http;               /* per-stage health/metrics server */
    int verbose;
} stage_t;

/* Parses the command line and starts the common machinery. Returns NULL
 * and sets *exit_code (0 after --help or --print-config, 2 on usage or
 * config errors, 1 on other failures). */
stage_t *stage_new(const stage_desc_t *desc, int argc, char **argv,
                   int *exit_code);
void stage_destroy(stage_t **self_p);

/* The broker endpoints from bus.in / bus.out, defaulting to ipc:// sockets
 * in runtime_dir. */
void stage_endpoints(const config_t *cfg, char *in, size_t in_size, char *out,
                     size_t out_size);

/* The stage's messages go through its bus's typed edges: bus_on and
 * bus_dispatch to receive, bus_send to publish (lib/bus.h). */

#endif
